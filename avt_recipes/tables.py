"""The tables the recipes print: the paper's rows and columns, our number next to the paper's in every cell.

A row is one model (its result files, ``Outcome``); a column reads one number from them (a recall@K of one
direction on one dataset, or a classification metric). Cells read ``ours (paper)``; ``–`` is a number that does
not exist (yet): ours before the step that makes it has run, the paper's where the paper reports no such cell
(avt_recipes/paper.py reads the paper's tables).
Every table is also written as Markdown and JSON under ``WORK/tables/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avt_recipes.paper import PaperValue, paper_value, setting_notes, table_source

MISSING = "–"


@dataclass(frozen=True)
class Outcome:
    """The result files of one model: retrieval (`avt evaluate retrieval`) and, per task, classification."""

    retrieval: Path | None = None
    classification: dict[str, Path] = field(default_factory=dict)

    def recall(self, dataset: str, direction: str, k: int) -> float | None:
        """Recall@k in percent, or None while the evaluation has not run."""
        if self.retrieval is None or not self.retrieval.exists():
            return None
        for entry in json.loads(self.retrieval.read_text())["entries"]:
            if entry["dataset"] == dataset:
                value = entry["metrics"].get(direction, {}).get(f"R@{k}")
                return None if value is None else 100 * value
        return None

    def classification_metric(self, task: str) -> float | None:
        """The official multi-frame accuracy / mAP in percent (middle frame when only one frame exists)."""
        path = self.classification.get(task)
        if path is None or not path.exists():
            return None
        entry = json.loads(path.read_text())["entries"][0]
        result = entry.get("multi_frame") or entry["single_frame"]
        return 100 * result[entry["metric"]]


@dataclass(frozen=True)
class Column:
    label: str
    read: Callable[[Outcome], float | None]


DIRECTIONS = {"A→V": "audio_to_visual", "V→A": "visual_to_audio"}
RETRIEVAL_SETS = ("VGGSound", "AudioSet")


def recall_columns(ks: Sequence[int], datasets: Sequence[str] = RETRIEVAL_SETS) -> list[Column]:
    """Per dataset and direction, recall@k for each k (Table 5: 1, 5, 10; the ablations: 10)."""
    return [
        Column(f"{dataset} {arrow} R@{k}", lambda o, d=dataset, r=direction, k=k: o.recall(d, r, k))
        for dataset in datasets
        for arrow, direction in DIRECTIONS.items()
        for k in ks
    ]


CLASSIFICATION_COLUMNS = [
    Column("VGGSound acc", lambda o: o.classification_metric("vggsound")),
    Column("AudioSet-20K mAP", lambda o: o.classification_metric("audioset")),
]


@dataclass(frozen=True)
class Table:
    """One table of the paper: ``key`` names it in avt_recipes/paper.py (e.g. ``table5``)."""

    key: str
    title: str
    columns: Sequence[Column]
    rows: Sequence[tuple[str, Outcome]]
    notes: Sequence[str] = ()

    def values(self) -> list[tuple[str, list[float | None], list[PaperValue | None]]]:
        return [
            (
                label,
                [column.read(outcome) for column in self.columns],
                [paper_value(self.key, label, column.label) for column in self.columns],
            )
            for label, outcome in self.rows
        ]


def _cell(ours: float | None, paper: PaperValue | None) -> str:
    mine = MISSING if ours is None else f"{ours:.1f}"
    return f"{mine} ({MISSING if paper is None else f'{paper.value:.1f}'})"


def render(table: Table) -> str:
    """Markdown: the paper's layout, ``ours (paper)`` per cell, then the sources of the paper's numbers."""
    values = table.values()
    header = ["", *(column.label for column in table.columns)]
    lines = [
        f"{table.title} — ours (paper)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(table.columns)) + "|",
    ]
    for label, ours, paper in values:
        lines.append("| " + " | ".join([label, *(_cell(o, p) for o, p in zip(ours, paper))]) + " |")
    sources = sorted({p.source for _, _, paper in values for p in paper if p is not None})
    lines += ["", *table.notes, *setting_notes(table.key)]
    lines += [f"paper numbers: {source}" for source in sources]
    if any(p is None for _, _, paper in values for p in paper):
        lines.append(f"paper ({MISSING}): {table_source(table.key)}")
    return "\n".join(lines).rstrip() + "\n"


def write(table: Table, folder: Path) -> Path:
    """``folder/<key>.md`` and ``<key>.json`` (ours and the paper's number with its source, per cell)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{table.key}.md").write_text(render(table))
    record = {
        "table": table.key,
        "title": table.title,
        "columns": [column.label for column in table.columns],
        "rows": [
            {
                "label": label,
                "ours": ours,
                "paper": [None if p is None else {"value": p.value, "source": p.source} for p in paper],
            }
            for label, ours, paper in table.values()
        ],
    }
    path = folder / f"{table.key}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


__all__ = [
    "CLASSIFICATION_COLUMNS",
    "MISSING",
    "Column",
    "Outcome",
    "Table",
    "recall_columns",
    "render",
    "write",
]
