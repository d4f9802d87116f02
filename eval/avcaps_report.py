"""`avt evaluate retrieval --report avcaps`: a table in the layout of SLAVA's Table II.

Rows are retrieval tasks (target ← query), columns the models given, cells recall@10 in percent. The caption-column
rows appear when some entry has them (the dataset has `audio_caption` / `visual_caption` columns and the model can
embed caption strings, i.e. SLAVA); the audio-visual caption rows are the standard text->visual / text->audio
directions (LG-CAV-MAE answers them through its CLAP caption embeddings).

SLAVA's published recall@10 (its Table II, AVCaps test split) is printed beside ours, one column per model of the
paper, from ``slava_table2.json`` shipped with this package (the project's transcription; its ``source`` field
names the paper).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

TABLE_II_TASKS: tuple[tuple[str, str], ...] = (
    ("Visual ← visual captions", "visual_caption_to_visual"),
    ("Visual ← audio captions", "audio_caption_to_visual"),
    ("Visual ← audio-visual captions", "text_to_visual"),
    ("Audio ← audio captions", "audio_caption_to_audio"),
    ("Audio ← visual captions", "visual_caption_to_audio"),
    ("Audio ← audio-visual captions", "text_to_audio"),
    ("Visual ← audio", "audio_to_visual"),
)

# SLAVA's Table II rows (target retrieved, from what) -> our direction names.
_PUBLISHED_ROWS = {
    ("Visual", "Visual Captions"): "visual_caption_to_visual",
    ("Visual", "Audio Captions"): "audio_caption_to_visual",
    ("Visual", "Audio-Visual Captions"): "text_to_visual",
    ("Audio", "Audio Captions"): "audio_caption_to_audio",
    ("Audio", "Visual Captions"): "visual_caption_to_audio",
    ("Audio", "Audio-Visual Captions"): "text_to_audio",
    ("Visual", "Audio"): "audio_to_visual",
}


@cache
def slava_table_ii() -> dict[str, Any]:
    """SLAVA's Table II as transcribed: ``source``, ``metric``, ``columns`` and one row per retrieval task."""
    return json.loads(resources.files("eval").joinpath("slava_table2.json").read_text(encoding="utf-8"))


def published_recall_at_10(direction: str) -> dict[str, float]:
    """SLAVA's published recall@10 in percent for ``direction``, per model column of its Table II."""
    table = slava_table_ii()
    for row in table["rows"]:
        if _PUBLISHED_ROWS[(row["retrieve"], row["based_on"])] == direction:
            return {column: round(100 * row[column], 1) for column in table["columns"]}
    return {}


def _row(label: str, direction: str, by_model: dict[str, dict], models: list[str], k: int) -> str:
    cells = []
    for model in models:
        value = by_model.get(model, {}).get("metrics", {}).get(direction, {}).get(f"R@{k}")
        cells.append("–" if value is None else f"{100 * value:.1f}")
    if k == 10:
        published = published_recall_at_10(direction)
        cells += [f"{published[c]:.1f}" if c in published else "–" for c in slava_table_ii()["columns"]]
    return "| " + " | ".join([label, *cells]) + " |"


def avcaps_table(entries: Sequence[dict[str, Any]], k: int = 10) -> str:
    """One Markdown table per dataset: rows = Table II tasks present in some entry, columns = models."""
    models = list(dict.fromkeys(e["model"] for e in entries))
    parts = []
    for dataset in dict.fromkeys(e["dataset"] for e in entries):
        by_model = {e["model"]: e for e in entries if e["dataset"] == dataset}
        tasks = [
            (label, d) for label, d in TABLE_II_TASKS if any(d in e["metrics"] for e in by_model.values())
        ]
        published = [f"{c} (published)" for c in slava_table_ii()["columns"]] if k == 10 else []
        header = [f"Task (recall@{k}, %)", *models, *published]
        lines = [
            f"### {dataset}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(models) + len(published))) + "|",
            *(_row(label, direction, by_model, models, k) for label, direction in tasks),
        ]
        parts.append("\n".join(lines))
    source = f"\n\npublished: {slava_table_ii()['source']}, {slava_table_ii()['metric']}" if k == 10 else ""
    return "## Retrieval in the layout of SLAVA's Table II\n\n" + "\n\n".join(parts) + source + "\n"


__all__ = ["TABLE_II_TASKS", "avcaps_table", "published_recall_at_10", "slava_table_ii"]
