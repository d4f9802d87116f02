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


def batch_to_device(
    parts: Sequence[np.ndarray],
    device: str | torch.device,
    dtype: torch.dtype | None = None,
    *,
    concatenate=False,
) -> torch.Tensor:
    """Stack (or ``concatenate``) CPU arrays into one tensor on ``device``, cast to ``dtype``.

    The parts are copied once, into a page-locked buffer when the device is a GPU, which then goes over
    without blocking this thread; the cast happens on the device (rounding is the same there).
    """
    import torch

    device = torch.device(device)
    first = np.asarray(parts[0])
    rows = sum(len(part) for part in parts) if concatenate else len(parts)
    shape = (rows, *first.shape[1:]) if concatenate else (rows, *first.shape)
    host = torch.empty(
        shape, dtype=torch.from_numpy(np.empty(0, first.dtype)).dtype, pin_memory=device.type == "cuda"
    )
    (np.concatenate if concatenate else np.stack)(parts, out=host.numpy())
    batch = host.to(device, non_blocking=True)
    return batch if dtype is None else batch.to(dtype)


__all__ = ["batch_to_device", "default_device"]
