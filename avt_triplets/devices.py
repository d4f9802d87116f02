"""Where models run when the caller does not say (the GPU if there is one), and how a batch gets there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; None means CUDA when available, else CPU."""
    import torch

    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


__all__ = ["batch_to_device", "default_device", "pins_memory", "stack_on_host"]
