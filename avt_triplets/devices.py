"""Where models run (the one place that decides it) and how a batch gets there.

The default device (the GPU if there is one), this process's device among a launcher's processes (accelerate,
torchrun, a bare srun task), a Ray replica's granted GPU, ``--device`` checked before anything loads, and the
copy of a batch into page-locked memory and onto the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; None means CUDA when available, else CPU."""
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def process_state(device: str | None = None):
    """accelerate's ``PartialState`` for this process, on CPU when no GPU is used.

    ``PartialState(cpu=True)`` is what makes a CPU-only ``accelerate launch --multi_gpu`` /
    ``torchrun`` start gloo instead of silently treating every process as rank 0 of 1.
    """
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = (
        parse_flag_from_env("ACCELERATE_USE_CPU")
        or (device is not None and str(device).startswith("cpu"))
        or not torch.cuda.is_available()
    )
    return PartialState(cpu=cpu)


def process_device(device: Any = None) -> Any:
    """This process's device: ``device`` when given, else accelerate's; under srun without a launcher accelerate
    sees one process on ``cuda:0``, so each task takes the GPU its ``SLURM_LOCALID`` names among those it sees
    (with ``--gpus-per-task=1`` it sees one)."""
    if device:
        return device
    import torch

    from avt_core.launch import launched_process

    chosen = process_state(device).device
    launched = launched_process()
    if launched.launcher == "slurm" and chosen.type == "cuda" and torch.cuda.device_count() > 1:
        chosen = torch.device("cuda", launched.local_rank % torch.cuda.device_count())
    return chosen


def model_device(device: Any = None, granted_gpu: bool | None = None) -> Any:
    """Where a model loads: ``device`` when given; in a process a scheduler placed with a resource grant (a Ray
    actor or task: ``granted_gpu`` says whether it was given a GPU) that GPU, else the CPU; otherwise (``None``:
    a process of its own, launched or not) this process's device (:func:`process_device`)."""
    if device:
        return device
    if granted_gpu is None:
        return process_device(None)
    return "cuda" if granted_gpu else "cpu"


def check_device(device: str | None, what: str = "--device") -> None:
    """``device`` (None: not given) names a device this machine has: a typo (``gpu``), ``cuda`` without CUDA or a
    GPU index past the last one is one :class:`~avt_core.errors.UsageError` before any model loads, instead
    of the driver's traceback in the middle of loading."""
    import torch

    from avt_core.errors import UsageError

    if device is None:
        return
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"{what} {device}: not a device; use cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(
                f"{what} {device}: this machine has no usable CUDA GPU (or no driver); use --device cpu"
            )
        if parsed.index is not None and parsed.index >= count:
            raise UsageError(
                f"{what} {device}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{what} {device}: MPS is not available on this machine; use --device cpu")


def pins_memory(device: str | torch.device | None) -> bool:
    """Whether batches for ``device`` go through page-locked host memory (a CUDA device this process can use)."""
    import torch

    return device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available()


def stack_on_host(
    parts: Sequence[np.ndarray], *, concatenate: bool = False, pin: bool = False
) -> torch.Tensor:
    """Stack (or ``concatenate``) arrays into one CPU tensor with a single copy, page-locked when ``pin`` (the
    memory a GPU copies from without blocking the host)."""
    import torch

    first = np.asarray(parts[0])
    rows = sum(len(part) for part in parts) if concatenate else len(parts)
    shape = (rows, *first.shape[1:]) if concatenate else (rows, *first.shape)
    dtype = torch.from_numpy(np.empty(0, first.dtype)).dtype
    host = torch.empty(shape, dtype=dtype, pin_memory=pin)
    (np.concatenate if concatenate else np.stack)(parts, out=host.numpy())
    return host


def batch_to_device(
    parts: Sequence[np.ndarray] | torch.Tensor,
    device: str | torch.device,
    dtype: torch.dtype | None = None,
    *,
    concatenate: bool = False,
) -> torch.Tensor:
    """A batch on ``device``, cast to ``dtype``: ``parts`` stacked (or concatenated) on the host first
    unless it is one tensor already. The host copy goes over without blocking this thread (from page-locked
    memory on a GPU); the cast happens on the device, where rounding is the same."""
    import torch

    device = torch.device(device)
    host = (
        parts
        if isinstance(parts, torch.Tensor)
        else stack_on_host(parts, concatenate=concatenate, pin=pins_memory(device))
    )
    batch = host.to(device, non_blocking=True)
    return batch if dtype is None else batch.to(dtype)


__all__ = [
    "batch_to_device",
    "check_device",
    "default_device",
    "model_device",
    "pins_memory",
    "process_device",
    "process_state",
    "stack_on_host",
]
