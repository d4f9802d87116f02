"""`avt evaluate retrieval --report avcaps`: a table in the layout of SLAVA's Table II.

Rows are retrieval tasks (target ← query), columns the models given, cells recall@10 in percent. The caption-column
rows appear when some entry has them (the dataset has `audio_caption` / `visual_caption` columns and the model can
embed caption strings, i.e. SLAVA); the audio-visual caption rows are the standard text->visual / text->audio
directions (LG-CAV-MAE answers them through its CLAP caption embeddings).
"""

from __future__ import annotations

from collections.abc import Sequence
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


def avcaps_table(entries: Sequence[dict[str, Any]], k: int = 10) -> str:
    """One Markdown table per dataset: rows = Table II tasks present in some entry, columns = models."""
    models = list(dict.fromkeys(e["model"] for e in entries))
    parts = []
    for dataset in dict.fromkeys(e["dataset"] for e in entries):
        by_model = {e["model"]: e for e in entries if e["dataset"] == dataset}
        tasks = [
            (label, d) for label, d in TABLE_II_TASKS if any(d in e["metrics"] for e in by_model.values())
        ]
        header = [f"Task (recall@{k}, %)", *models]
        lines = [
            f"### {dataset}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * len(models)) + "|",
        ]
        for label, direction in tasks:
            cells = []
            for model in models:
                value = by_model.get(model, {}).get("metrics", {}).get(direction, {}).get(f"R@{k}")
                cells.append("–" if value is None else f"{100 * value:.1f}")
            lines.append("| " + " | ".join([label, *cells]) + " |")
        parts.append("\n".join(lines))
    return "## Retrieval in the layout of SLAVA's Table II\n\n" + "\n\n".join(parts) + "\n"


__all__ = ["TABLE_II_TASKS", "avcaps_table"]
