"""Training metrics: running means between log steps, a JSON-lines log and accelerate trackers."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from avt_core.run_config import SECRET_OPTIONS
from avt_training.options import require_trackers

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "train_summary.json"
LOSS_CURVE_FILE = "loss_curve.png"  # written by `avt pretrain` from metrics.jsonl at the end of the run


def tracker_names(report_to: str | list[str] | None) -> list[str]:
    """``--report-to`` values -> accelerate ``log_with`` names (checked: known and installed)."""
    return require_trackers(report_to)


def loggable_config(values: dict[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as scalars/strings, which TensorBoard's hparams accepts; secrets (tokens, storage options:
    the ones avt_config.yaml leaves out too) left out, since TensorBoard writes hparams to a file."""
    out = {}
    for key, value in values.items():
        if key in SECRET_OPTIONS:
            continue
        if isinstance(value, bool | int | float | str) or value is None:
            out[key] = "" if value is None else value
        else:
            out[key] = json.dumps(value, default=str)
    return out


class MetricWindow:
    """Sums of per-step scalars since the last log, reduced over processes when read."""

    def __init__(self):
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)  # per key: grad_norm exists on optimizer steps only
        self.samples = 0
        self.started = time.perf_counter()

    def add(self, values: dict[str, torch.Tensor | float], samples: int) -> None:
        for key, value in values.items():
            self.sums[key] += float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            self.counts[key] += 1
        self.samples += samples

    def read(self, accelerator) -> dict[str, float]:
        """Means over the window and over processes, plus global samples/s; then resets."""
        keys = sorted(self.sums)
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        local = torch.tensor(
            [self.sums[k] / self.counts[k] for k in keys] + [self.samples], dtype=torch.float64
        )
        local = local.to(accelerator.device)
        reduced = accelerator.reduce(local, reduction="sum") if accelerator.num_processes > 1 else local
        reduced = reduced.cpu().tolist()
        n = accelerator.num_processes
        metrics = {k: reduced[i] / n for i, k in enumerate(keys)}
        metrics["samples_per_second"] = reduced[-1] / elapsed
        self.__init__()
        return metrics


class JsonlLog:
    """Append-only ``metrics.jsonl`` (main process), easy to plot or to compare runs with."""

    def __init__(self, output_dir: Path, enabled: bool):
        self.path = output_dir / METRICS_FILE
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with self.path.open("a") as handle:
            handle.write(json.dumps(clean) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def plot_loss_curve(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """The training losses logged in a run's ``metrics.jsonl`` against the step: the total (left) and each term
    (right, log scale, since the reconstruction terms dwarf the weighted contrastive ones)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    logged = [r for r in rows if "loss" in r and "step" in r]
    if not logged:
        raise ValueError("no training loss was logged")
    steps = [r["step"] for r in logged]
    terms = sorted({k for r in logged for k in r if k.startswith("loss_")})
    fig, (total, parts) = plt.subplots(1, 2, figsize=(9, 3.5))
    total.plot(steps, [r["loss"] for r in logged], marker=".", color="#4C72B0")
    total.set_title("training loss")
    for term in terms:
        parts.plot(steps, [r.get(term, float("nan")) for r in logged], label=term.removeprefix("loss_"))
    parts.set_yscale("log")
    parts.set_title("loss terms (unweighted)")
    if terms:
        parts.legend(fontsize=7)
    for axis in (total, parts):
        axis.set_xlabel("optimizer step")
        axis.grid(True, alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
