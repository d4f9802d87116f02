"""The published numbers the recipes print next to ours, each with where it comes from.

The LG-CAV-MAE paper's Tables 1-6 ship with this package as ``lgcavmae_tables.json``: the project's transcription
of the paper (its ``source`` field names it; copied unchanged from the project's shared ``paper/`` folder, which a
user install cannot read). A recipe cell ``(table, row, column)`` is looked up there through the paper's own row
and column labels (``BLIP-2`` is the paper's ``BLIP2``, ``K top30`` its ``K (30%)``, ``AudioSet`` its
``AudioSet-20K``, ...); a cell the paper does not have (``λ2 = 0``, ``VS + K``) prints as ``–``. Where a recipe
row's setting differs from the paper's, the table's notes say so (:func:`setting_notes`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

LG_CAV_MAE = "LG-CAV-MAE (Ishikawa et al., Interspeech 2025, arXiv 2507.11967)"
CAV_MAE_RELEASE = (
    "CAV-MAE (Gong et al., ICLR 2023): the official fine-tuned releases as-20k-42.0 and vgg_65.5 "
    "(github.com/YuanGongND/cav-mae, 'Pretrained Models'); pretrained on AudioSet-2M, not on VGGSound + Kinetics"
)
TABLES_FILE = "lgcavmae_tables.json"


@dataclass(frozen=True)
class PaperValue:
    value: float  # percent, as printed in the source
    source: str


# What the paper's abstract states about its main results.
ABSTRACT_CLAIM = (
    f"{LG_CAV_MAE}, abstract: up to +5.6 points recall@10 in retrieval and +3.2 points in classification over "
    "existing approaches"
)

# Recipe row label -> the paper's, per table (tables 1 and 3 are translated by rule in _paper_row).
_ROWS = {
    "table2": {"BLIP-2": "BLIP2", "LLaVA-1.5": "LLaVa1.5"},
    "table4": {"VS + K random30": "+ K (rand. 30%)", "VS + K top30": "+ K (30%)"},
    "table5": {"CAV-MAE": "CAV-MAE", "LG-CAV-MAE": "Ours (+K 30%)"},
    "table6": {"CAV-MAE": "CAV-MAE", "LG-CAV-MAE": "LG-CAV-MAE (VS + K 30%)"},
    "cavmae": {"CAV-MAE": "CAV-MAE"},
}
_DIRECTIONS = {"A→V": "audio_to_visual", "V→A": "visual_to_audio"}
_DATASETS = {"VGGSound": "VGGSound", "AudioSet": "AudioSet-20K"}
_CLASSIFICATION = {"VGGSound acc": "VGGSound accuracy", "AudioSet-20K mAP": "AudioSet-20K mAP"}
_RECALL_COLUMN = re.compile(r"^(?P<dataset>\S+) (?P<arrow>A→V|V→A) (?P<k>R@\d+)$")

_SETTING_NOTES = {
    "table1": "the paper's Table 1 pretrains on VGGSound alone (VS); these rows on VS + K top30",
    "table2": "the paper's Table 2 pretrains on VGGSound alone (VS); these rows on VS + K top30",
    "table5": "the paper's CAV-MAE row is pretrained on VGGSound alone (VS); ours on VS + K top30",
    "table6": "the paper's CAV-MAE row is pretrained on VGGSound alone (VS); ours on VS + K top30",
    "cavmae": "the paper's CAV-MAE rows (Tables 5 and 6) are pretrained on VGGSound alone (VS); ours on VS + K top30",
}
_RELEASE_NOTE = f"for reference, VGGSound acc 65.5 and AudioSet-20K mAP 42.0: {CAV_MAE_RELEASE}"


@cache
def lgcavmae_tables() -> dict[str, Any]:
    """The paper's Tables 1-6 as transcribed (percent), read from the package data."""
    return json.loads(resources.files("avt_recipes").joinpath(TABLES_FILE).read_text(encoding="utf-8"))


def _paper_row(table: str, row: str) -> str:
    if table == "table1":
        return row.removeprefix("λ2 = ")  # "λ2 = 0.01" -> "0.01"; "0 (CAV-MAE)" is no row of the paper
    if table == "table3":
        return re.sub(r" top(\d+)$", r" (\1%)", row).removesuffix(
            " (all)"
        )  # "VS + K top30" -> "VS + K (30%)"
    return _ROWS.get(table, {}).get(row, row)


def _lookup(table: str, row: str, column: str) -> tuple[str, float | None]:
    """(the paper's table, its number or None) for a recipe cell."""
    tables = lgcavmae_tables()
    if column in _CLASSIFICATION:
        paper_table = "table6"
        return paper_table, tables[paper_table]["rows"].get(_paper_row(paper_table, row), {}).get(
            _CLASSIFICATION[column]
        )
    match = _RECALL_COLUMN.match(column)
    if match is None or match["dataset"] not in _DATASETS:
        return table, None
    paper_table = "table5" if table == "cavmae" else table
    block = tables.get(paper_table, {}).get(_DIRECTIONS[match["arrow"]], {})
    return paper_table, block.get(_paper_row(table, row), {}).get(
        f"{_DATASETS[match['dataset']]} {match['k']}"
    )


def paper_value(table: str, row: str, column: str) -> PaperValue | None:
    """The paper's number for the recipe cell ``(table, row, column)`` (labels as the recipe prints them)."""
    paper_table, value = _lookup(table, row, column)
    if value is None:
        return None
    return PaperValue(float(value), f"{LG_CAV_MAE}, Table {paper_table.removeprefix('table')}")


def setting_notes(table: str) -> list[str]:
    """What differs between the recipe's rows and the paper's for ``table`` (empty when nothing does)."""
    notes = [_SETTING_NOTES[table]] if table in _SETTING_NOTES else []
    return notes + ([_RELEASE_NOTE] if table in ("table6", "cavmae") else [])


def table_source(table: str) -> str:
    """Why a paper cell of ``table`` prints as ``–``."""
    return f"no such cell in {LG_CAV_MAE} (a row or column the paper does not report)"


__all__ = [
    "ABSTRACT_CLAIM",
    "CAV_MAE_RELEASE",
    "PaperValue",
    "lgcavmae_tables",
    "paper_value",
    "setting_notes",
    "table_source",
]
