"""The published numbers the recipes print next to ours, each with where it comes from.

Only numbers read from a citable source are recorded. The LG-CAV-MAE paper (Ishikawa et al., Interspeech 2025,
arXiv 2507.11967) could only be read up to its abstract from this project's machines, so its table cells are not
transcribed yet: they print as ``–`` with a pointer to the table. To add one, put
``("table5", "LG-CAV-MAE", "VGGSound A→V R@10"): PaperValue(<value>, "<source>")`` in ``PAPER`` (keys: the recipe's
table key, row label and column label, exactly as printed).
"""

from __future__ import annotations

from dataclasses import dataclass

LG_CAV_MAE = "LG-CAV-MAE (Ishikawa et al., Interspeech 2025, arXiv 2507.11967)"
CAV_MAE_RELEASE = (
    "CAV-MAE (Gong et al., ICLR 2023): the official fine-tuned releases as-20k-42.0 and vgg_65.5 "
    "(github.com/YuanGongND/cav-mae, 'Pretrained Models'); pretrained on AudioSet-2M, not on VGGSound + Kinetics"
)


@dataclass(frozen=True)
class PaperValue:
    value: float  # percent, as printed in the source
    source: str


PAPER: dict[tuple[str, str, str], PaperValue] = {
    ("table6", "CAV-MAE", "VGGSound acc"): PaperValue(65.5, CAV_MAE_RELEASE),
    ("table6", "CAV-MAE", "AudioSet-20K mAP"): PaperValue(42.0, CAV_MAE_RELEASE),
    ("cavmae", "CAV-MAE", "VGGSound acc"): PaperValue(65.5, CAV_MAE_RELEASE),
    ("cavmae", "CAV-MAE", "AudioSet-20K mAP"): PaperValue(42.0, CAV_MAE_RELEASE),
}

# What the paper's abstract states about its main results (no per-cell numbers).
ABSTRACT_CLAIM = (
    f"{LG_CAV_MAE}, abstract: up to +5.6 points recall@10 in retrieval and +3.2 points in classification over "
    "existing approaches"
)

_PAPER_TABLES = {
    "table1": "Table 1",
    "table2": "Table 2",
    "table3": "Table 3",
    "table4": "Table 4",
    "table5": "Table 5",
    "table6": "Table 6",
    "cavmae": "Tables 5 and 6 (CAV-MAE row)",
}


def paper_value(table: str, row: str, column: str) -> PaperValue | None:
    return PAPER.get((table, row, column))


def table_source(table: str) -> str:
    """Where the missing paper numbers of ``table`` are to be read from."""
    return (
        f"not transcribed yet: {LG_CAV_MAE}, {_PAPER_TABLES[table]}; add them to recipes/paper.py "
        "(the paper could not be read past its abstract from this project's machines)"
    )


__all__ = ["ABSTRACT_CLAIM", "PAPER", "PaperValue", "paper_value", "table_source"]
