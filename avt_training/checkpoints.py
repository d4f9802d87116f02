"""Training-state checkpoints under ``OUTPUT/checkpoints/step-XXXXXXXX``, safe to resume from a stranger's copy.

A checkpoint folder holds:

* ``model.safetensors``, ``optimizer.bin``, ``random_states_<rank>.pkl`` (and ``scaler.pt`` under fp16), written by
  ``accelerator.save_state``. The pickles hold tensors, numbers and NumPy arrays only; they are read back with
  ``torch.load(weights_only=True)``, which refuses any pickle that would call a function;
* ``training_state.json``: the loop's own state (progress counters, lr scheduler, sampler) as plain JSON.

Nothing is registered with ``accelerator.register_for_checkpointing``: accelerate pickles such objects into
``custom_checkpoint_<n>.pkl`` and unpickles them with ``weights_only=False``, so a crafted folder (``--hub-strategy
every_save`` publishes checkpoints that others download) would run code on ``--resume``. A folder holding a pickle
that avt would not read with ``weights_only=True`` is refused before anything is loaded.

A checkpoint is written to a temporary folder and renamed once complete, so ``--resume latest`` never picks up a
half-written one from a killed run.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from avt_core.errors import UsageError
from avt_training.model_checks import require_same_architecture

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "training_state.json"
MODEL_FILE = "model.safetensors"  # accelerate's name for the (first) model's weights
_NAME = re.compile(r"^step-(\d+)$")
# Files accelerate's load_state reads with torch.load(weights_only=True); any other pickle is refused.
_WEIGHTS_ONLY_PICKLES = re.compile(
    r"^(optimizer(_\d+)?\.bin|scaler\.pt|random_states_\d+\.pkl|pytorch_model(_\d+)?\.bin|sampler(_\d+)?\.bin"
    r"|dl_state_dict(_\d+)?\.bin)$"
)
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth")


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainState:
    """Where a training loop is: saved in every checkpoint's ``training_state.json``, so a resumed run continues from
    exactly there.

    ``step_in_epoch`` counts optimizer steps already taken in ``epoch``: a resumed run skips
    ``step_in_epoch * gradient_accumulation_steps`` batches of that epoch's (seeded) order. The layout fields are
    what those counters refer to; a resume with another layout cannot replay the same batches. ``best_eval_loss`` and
    ``last_eval_step`` keep the best-model bookkeeping, and keep a resumed run from evaluating a step twice.
    """

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    samples_seen: int = 0
    decode_failures: int = 0
    per_device_batch_size: int = 0
    num_processes: int = 0
    gradient_accumulation_steps: int = 0
    best_eval_loss: float | None = None
    last_eval_step: int = -1

    def layout(self) -> tuple[int, int, int]:
        return (self.per_device_batch_size, self.num_processes, self.gradient_accumulation_steps)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for field in fields(self):
            if field.name in state:
                setattr(self, field.name, state[field.name])


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
    """``latest`` -> the newest complete checkpoint in ``output_dir``, or None (said in the log) when there is none
    yet, so a preemptible job can always pass ``--resume latest``; any other value must be a checkpoint folder."""
    if not resume:
        return None
    if resume == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            logger.warning(
                "--resume latest: no checkpoint in %s yet, starting fresh", Path(output_dir) / CHECKPOINTS_DIR
            )
        return found[-1] if found else None
    path = Path(resume)
    if not path.is_dir():
        raise UsageError(f"--resume {resume}: no such checkpoint folder")
    return path


# --------------------------------------------------------------------------------------------------
# The loop's own state as JSON
# --------------------------------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    """State dicts of our progress, samplers and torch's lr schedulers as JSON values (a ``Counter`` keeps its
    integer keys as a tagged list of pairs)."""
    if isinstance(value, Counter):
        return {"__counter__": [[_to_json(k), n] for k, n in value.items()]}
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"training state value of type {type(value).__name__} is not JSON")


def _from_json(value: dict[str, Any]) -> Any:
    if set(value) == {"__counter__"}:
        return Counter({k: n for k, n in value["__counter__"]})
    return value


def track_loop_state(accelerator, **objects: Stateful) -> None:
    """Make every ``accelerator.save_state`` also write ``objects``' state dicts to ``training_state.json``."""

    def write_state(models, weights, output_dir) -> None:
        if accelerator.is_main_process:
            record = {name: _to_json(obj.state_dict()) for name, obj in objects.items()}
            Path(output_dir, STATE_FILE).write_text(json.dumps(record, indent=2))

    accelerator.register_save_state_pre_hook(write_state)


def track_model_config(accelerator, model) -> None:
    """Make every checkpoint carry the model's ``config.json``: its loss settings are what a resumed run keeps
    unless options are given (``avt_training.loss_options``), written before the folder is renamed complete."""

    def write_config(models, weights, output_dir) -> None:
        if accelerator.is_main_process:
            model.config.to_json_file(str(Path(output_dir, "config.json")))

    accelerator.register_save_state_pre_hook(write_config)


# --------------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------------


def save_checkpoint(accelerator, output_dir: str | Path, step: int, total_limit: int | None = None) -> Path:
    """Save the full training state (model, optimizer, RNG, and what ``track_loop_state`` names) for ``step``."""
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


def _load_weights_only(path: Path) -> Any:
    """``torch.load(weights_only=True)`` (with accelerate's NumPy allow-list); a refused pickle is a UsageError."""
    from accelerate.utils import load

    try:
        return load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UsageError(
            f"checkpoint file {path} is not plain tensors and numbers (torch.load weights_only=True refused it: "
            f"{str(error).splitlines()[0]}); avt never writes such a file, so it refuses to resume from this folder"
        ) from None


def _refuse_foreign_pickles(folder: Path) -> None:
    """Checkpoints of avt 0.1.0 kept the loop state in ``custom_checkpoint_*.pkl``: they are refused too."""
    foreign = sorted(
        p.name
        for p in folder.iterdir()
        if p.suffix in _PICKLE_SUFFIXES and not _WEIGHTS_ONLY_PICKLES.match(p.name)
    )
    if foreign:
        raise UsageError(
            f"checkpoint {folder} holds pickle file(s) that avt does not read: {', '.join(foreign)} (unpickling them "
            "could run code), so it refuses to resume from this folder"
        )
    if not (folder / STATE_FILE).is_file():
        raise UsageError(f"{folder} is not a complete avt checkpoint: it has no {STATE_FILE}")


def load_checkpoint(accelerator, folder: str | Path, model: Any = None, **objects: Stateful) -> None:
    """Restore a checkpoint written by ``save_checkpoint``: model, optimizer and RNG through accelerate (weights-only
    pickles), then ``objects`` from ``training_state.json``. Foreign pickles, and weights of another architecture
    than ``model`` (the unwrapped model), are refused before anything loads."""
    folder = Path(folder)
    _refuse_foreign_pickles(folder)
    if model is not None and (folder / MODEL_FILE).is_file():
        require_same_architecture(folder / MODEL_FILE, model, "--resume checkpoint")
    loop_state = json.loads((folder / STATE_FILE).read_text(), object_hook=_from_json)
    missing = sorted(set(objects) - set(loop_state))
    if missing:
        raise UsageError(f"checkpoint {folder} has no saved state for {', '.join(missing)} in {STATE_FILE}")
    # accelerate swallows a failure to read the RNG states (the resumed run would silently differ): check first.
    rng_file = folder / f"random_states_{accelerator.process_index}.pkl"
    if rng_file.exists():
        _load_weights_only(rng_file)
    try:
        accelerator.load_state(str(folder), load_kwargs={"weights_only": True})
    except pickle.UnpicklingError as error:
        raise UsageError(
            f"checkpoint {folder}: torch.load(weights_only=True) refused a file ({str(error).splitlines()[0]}); "
            "avt refuses to resume from this folder"
        ) from None
    for name, obj in objects.items():
        obj.load_state_dict(loop_state[name])
