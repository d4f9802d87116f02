"""What ``--dry-run`` of ``avt pretrain`` / ``avt finetune`` prints: the run's figures before anything trains.

The figures come from the commands' own steps (their folder rule, resume look-up, data loading and checks, and the
schedule's arithmetic), computed with nothing written and no weights loaded; this module only holds the arithmetic
both a run and its dry run share (batches per epoch) and the plan's two forms: a readable summary and one JSON
line.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avt_core.cost_model import CLIPS_PER_GPU_HOUR, gpu_hours

OUTPUT_STATES = {
    "new": "new folder (the run creates it)",
    "empty": "empty folder",
    "resumed": "an earlier run of this command: continued (--resume)",
    "overwritten": "an earlier run of this command: started over (--overwrite deletes what it wrote)",
}


def batches_per_epoch(num_clips: int, per_device_batch_size: int, num_processes: int) -> int:
    """Batches each process takes per epoch: the training loaders drop an incomplete batch (and the block sampler
    the clips that do not fill one), and accelerate deals the batches out to the processes in equal shares."""
    return (num_clips // per_device_batch_size) // num_processes


def dataset_rows(data: Any) -> list[dict[str, Any]]:
    """Rows read per ``--dataset`` (after its config's filter), when read in place; [] otherwise."""
    parts = getattr(getattr(data, "index", None), "parts", None) or []
    return [{"dataset": name, "rows": int(rows)} for name, rows in parts]


def checkpoint_step(folder: Path | None) -> int:
    """The optimizer step a checkpoint was saved at (``training_state.json`` of pretrain, ``trainer_state.json``
    of Trainer), 0 when it says none."""
    if folder is None:
        return 0
    for name, keys in (
        ("training_state.json", ("train_state", "global_step")),
        ("trainer_state.json", ("global_step",)),
    ):
        try:
            value: Any = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int):
            return value
    return 0


@dataclass
class TrainingPlan:
    """The figures of one training run, as its dry run reports them."""

    command: str
    output_dir: str
    output_state: str
    datasets: list[dict[str, Any]]
    train_clips: int
    eval_clips: int | None
    num_processes: int
    per_device_batch_size: int
    gradient_accumulation_steps: int
    steps_per_epoch: int
    num_epochs: float
    total_steps: int
    schedule: str
    model: str
    resume_from: str | None = None
    resume_step: int = 0
    resume_fresh: bool = False  # --resume latest found no checkpoint: the run starts from step 0
    cost_kind: str | None = "pretrain"  # None: the cost model has no figure for this command
    notes: list[str] = field(default_factory=list)

    @property
    def effective_batch(self) -> int:
        return self.per_device_batch_size * self.num_processes * self.gradient_accumulation_steps

    @property
    def gpu_hours(self) -> float | None:
        """Of the steps still to take (a resumed run has taken some)."""
        if self.cost_kind is None:
            return None
        return gpu_hours(self.cost_kind, max(self.total_steps - self.resume_step, 0) * self.effective_batch)

    def as_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "effective_batch": self.effective_batch,
            "gpu_hours": self.gpu_hours,
        }

    def format(self) -> str:
        """The readable summary (the JSON line follows it)."""
        data = ", ".join(f"{d['dataset']} {d['rows']}" for d in self.datasets)
        lines = [
            f"avt {self.command} --dry-run: nothing was written, no weights were loaded",
            f"data: {self.train_clips} training clips"
            + (f" ({data})" if data else "")
            + (f", {self.eval_clips} evaluation clips" if self.eval_clips is not None else ""),
            f"batch: {self.effective_batch} per optimizer step ({self.per_device_batch_size} per device x "
            f"{self.num_processes} process(es) x {self.gradient_accumulation_steps} accumulation step(s))",
            f"steps: {self.steps_per_epoch} per epoch, {_epochs(self.num_epochs)} epoch(s), {self.total_steps} "
            "optimizer steps in all",
            f"schedule: {self.schedule}",
            f"model: {self.model}",
            f"output: {self.output_dir}: {OUTPUT_STATES[self.output_state]}",
        ]
        if self.resume_from is not None:
            lines.append(f"resume: from {self.resume_from} (step {self.resume_step} of {self.total_steps})")
        elif self.resume_fresh:
            lines.append("resume: no checkpoint yet, the run starts fresh")
        if self.cost_kind is not None:
            rate = CLIPS_PER_GPU_HOUR[self.cost_kind]
            lines.append(
                f"estimate: {self.gpu_hours:.3g} GPU-hours (H100-class, {rate:,} clips per GPU-hour for "
                f"{self.cost_kind}; docs/reproduce.md)"
            )
        lines += [f"note: {note}" for note in self.notes]
        lines.append("a real run would start: the same command without --dry-run")
        return "\n".join(lines)


def _epochs(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def print_plan(plan: TrainingPlan) -> None:
    print(plan.format())
    print(json.dumps({"dry_run": plan.as_dict()}, default=str))


def trainer_steps(
    batches: int, accumulation: int, num_epochs: float, max_steps: int | None
) -> tuple[int, int, float]:
    """(steps per epoch, total steps, epochs) as ``transformers.Trainer`` counts them
    (``Trainer.set_initial_training_values``: an incomplete accumulation at an epoch's end still steps)."""
    per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
    if max_steps:
        return per_epoch, max_steps, math.ceil(max_steps / per_epoch)
    return per_epoch, math.ceil(num_epochs * per_epoch), num_epochs


__all__ = [
    "TrainingPlan",
    "batches_per_epoch",
    "checkpoint_step",
    "dataset_rows",
    "print_plan",
    "trainer_steps",
]
