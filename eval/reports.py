"""Evaluation reports: a JSON record, Markdown tables laid out like the paper's, and a recall@K plot.

A retrieval record is a list of entries ``{"model", "dataset", "metrics": {direction: {...}},
"recall_curves": {direction: [recall@1, recall@2, ...]}, ...}``; the Markdown table has one row per model
and, per dataset, the columns A->V R@1/5/10 and V->A R@1/5/10 in percent (LG-CAV-MAE Table 5).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DIRECTION_LABELS = {
    "audio_to_visual": "A→V",
    "visual_to_audio": "V→A",
    "text_to_audio": "T→A",
    "text_to_visual": "T→V",
}
AUDIO_VISUAL_DIRECTIONS = ("audio_to_visual", "visual_to_audio")
TEXT_DIRECTIONS = ("text_to_audio", "text_to_visual")


def write_json(record: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write atomically (temp file + rename) so a killed run never leaves half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _ordered_unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def retrieval_table(
    entries: Sequence[dict[str, Any]], directions: Sequence[str] = AUDIO_VISUAL_DIRECTIONS, ks=(1, 5, 10)
) -> str:
    """Markdown: rows = models; per dataset and direction, R@K columns in percent."""
    models = _ordered_unique([e["model"] for e in entries])
    datasets = _ordered_unique([e["dataset"] for e in entries])
    by_key = {(e["model"], e["dataset"]): e for e in entries}
    directions = [d for d in directions if any(d in e["metrics"] for e in entries)]
    if not directions:
        return ""
    header = ["Model"]
    for dataset in datasets:
        for direction in directions:
            header += [f"{dataset} {DIRECTION_LABELS[direction]} R@{k}" for k in ks]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for model in models:
        cells = [model]
        for dataset in datasets:
            metrics = by_key.get((model, dataset), {}).get("metrics", {})
            for direction in directions:
                values = metrics.get(direction, {})
                cells += [_percent(values.get(f"R@{k}")) for k in ks]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def retrieval_markdown(entries: Sequence[dict[str, Any]]) -> str:
    """Audio-visual table (Table 5 layout), the text retrieval table when present, and clip counts."""
    parts = ["## Audio-visual retrieval (recall@K, %)", "", retrieval_table(entries, AUDIO_VISUAL_DIRECTIONS)]
    text = retrieval_table(entries, TEXT_DIRECTIONS)
    if text:
        parts += [
            "",
            "## Text retrieval (recall@K, %; LG-CAV-MAE: CLAP caption embeddings, SLAVA: its CLIP text tower)",
            "",
            text,
        ]
    for e in entries:
        if e.get("omitted_ks"):
            omitted = ", ".join(f"R@{k}" for k in e["omitted_ks"])
            parts += [
                "",
                f"{e['model']} on {e['dataset']}: {omitted} not reported (only {e['num_clips']} clips).",
            ]
        for note in e.get("notes", []):
            parts += ["", f"{e['model']} on {e['dataset']}: {note}."]
    parts += ["", "| Model | Dataset | Clips | Skipped | A→V MR | V→A MR |", "|---|---|---:|---:|---:|---:|"]
    for e in entries:
        mr = [e["metrics"].get(d, {}).get("MR") for d in AUDIO_VISUAL_DIRECTIONS]
        mr_cells = ["–" if v is None else f"{v:g}" for v in mr]
        parts.append(
            f"| {e['model']} | {e['dataset']} | {e['num_clips']} | {e.get('num_skipped', 0)} | "
            + " | ".join(mr_cells)
            + " |"
        )
    return "\n".join(parts) + "\n"


def classification_markdown(entries: Sequence[dict[str, Any]]) -> str:
    """Rows = models; per dataset, the single-frame (middle) and multi-frame metric in percent."""
    models = _ordered_unique([e["model"] for e in entries])
    datasets = _ordered_unique([e["dataset"] for e in entries])
    by_key = {(e["model"], e["dataset"]): e for e in entries}
    header = ["Model"]
    for dataset in datasets:
        metric = next(e["metric"] for e in entries if e["dataset"] == dataset)
        header += [f"{dataset} {metric} (middle frame)", f"{dataset} {metric} (multi-frame)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for model in models:
        cells = [model]
        for dataset in datasets:
            entry = by_key.get((model, dataset))
            if entry is None:
                cells += ["–", "–"]
                continue
            metric = entry["metric"]
            cells += [
                _percent(entry["single_frame"].get(metric)),
                _percent(entry.get("multi_frame", {}).get(metric)),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "## Classification (%)\n\n" + "\n".join(lines) + "\n"


def plot_recall_curves(entries: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """One panel per direction; one recall@K line per (model, dataset)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directions = [d for d in DIRECTION_LABELS if any(d in e.get("recall_curves", {}) for e in entries)]
    if not directions:
        raise ValueError("no recall curves to plot")
    fig, axes = plt.subplots(1, len(directions), figsize=(4.5 * len(directions), 3.8), squeeze=False)
    for axis, direction in zip(axes[0], directions):
        for entry in entries:
            curve = entry.get("recall_curves", {}).get(direction)
            if curve is None:
                continue
            ks = range(1, len(curve) + 1)
            axis.plot(ks, [100 * v for v in curve], label=f"{entry['model']} / {entry['dataset']}")
        num_clips = min(e["num_clips"] for e in entries if direction in e.get("recall_curves", {}))
        max_k = max(len(e.get("recall_curves", {}).get(direction, [])) for e in entries)
        ks = range(1, max_k + 1)
        axis.plot(
            ks,
            [100 * min(k / num_clips, 1.0) for k in ks],
            "k:",
            linewidth=1,
            label=f"chance (N={num_clips})",
        )
        axis.set_xscale("log")
        axis.set_xticks([k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if k <= max_k])
        axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel("K")
        axis.set_ylabel("recall@K (%)")
        axis.set_ylim(0, 100)
        axis.set_title(DIRECTION_LABELS[direction])
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
