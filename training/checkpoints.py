"""Training-state checkpoints: ``accelerator.save_state`` folders under ``OUTPUT/checkpoints/step-XXXXXXXX``.

A checkpoint is written to a temporary folder and renamed once complete, so ``--resume latest`` never
picks up a half-written one from a killed run.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d+)$")


@dataclass
class TrainingProgress:
    """Where the loop is; registered with ``accelerator.register_for_checkpointing`` so it resumes too.

    ``step_in_epoch`` counts optimizer steps already taken in ``epoch``: a resumed run skips
    ``step_in_epoch * gradient_accumulation_steps`` batches of that epoch's (seeded) order.
    """

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    samples_seen: int = 0
    decode_failures: int = 0
    # the data layout the counters refer to; a resume with another one cannot replay the same batches
    per_device_batch_size: int = 0
    num_processes: int = 0
    gradient_accumulation_steps: int = 0

    def layout(self) -> tuple[int, int, int]:
        return (self.per_device_batch_size, self.num_processes, self.gradient_accumulation_steps)

    def state_dict(self) -> dict[str, int]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key, value in state.items():
            setattr(self, key, int(value))


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def resolve_resume(resume: str | None, output_dir: str | Path) -> Path | None:
    """``latest`` -> the newest complete checkpoint in ``output_dir`` (None if there is none yet, so a
    preemptible job can always pass ``--resume latest``); any other value must be a checkpoint folder."""
    if not resume:
        return None
    if resume == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not path.is_dir():
        raise FileNotFoundError(f"--resume {resume}: no such checkpoint folder")
    return path


def save_checkpoint(accelerator, output_dir: str | Path, step: int, total_limit: int | None = None) -> Path:
    """Save the full training state (model, optimizer, scheduler, progress, RNG) for ``step``."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    final = root / checkpoint_name(step)
    staging = root / f".{checkpoint_name(step)}.incomplete"
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
        if total_limit:
            for old in list_checkpoints(output_dir)[:-total_limit]:
                shutil.rmtree(old, ignore_errors=True)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final
