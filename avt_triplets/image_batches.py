"""Variable-size captioner inputs as one batch: what a processor does when it is given several images at once,
done on rows that decode workers preprocessed one image at a time.

A row is one image's processor output (``pixel_values``, its metadata such as ``image_grid_thw`` or
``pixel_attention_mask``, and the prompt's ``input_ids`` / ``attention_mask`` with that image's tokens), each
array with its leading batch (or patch) dimension. Rows are collated key by key: text keys are padded on the
left with the tokenizer's pad id (0 for masks), any other key is padded with zeros on every dimension but the
first to the largest row (Idefics3's tiles; padding tiles are all zero and the model drops them), then all rows
are concatenated along the first dimension (Qwen's patch rows and grid rows). Whether this equals the
processor's own batched output is checked on synthetic images before a model uses it
(:func:`avt_triplets.captioners.variable_layout_check`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

TEXT_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids"})


def _padded(array: np.ndarray, shape: tuple[int, ...], value: int | float, left: bool) -> np.ndarray:
    if array.shape[1:] == shape:
        return array
    widths = [(0, 0)] + [((s - n, 0) if left else (0, s - n)) for n, s in zip(array.shape[1:], shape)]
    return np.pad(array, widths, constant_values=value)


def padded_parts(key: str, parts: Sequence[np.ndarray], pad_id: int) -> list[np.ndarray]:
    """One key's rows padded to a common shape (see the module); rows already of that shape are not copied."""
    shape = tuple(max(part.shape[d] for part in parts) for d in range(1, parts[0].ndim))
    text = key in TEXT_KEYS
    value = pad_id if key == "input_ids" else 0
    return [_padded(np.asarray(part), shape, value, left=text) for part in parts]


def collate_key(key: str, parts: Sequence[np.ndarray], pad_id: int) -> np.ndarray:
    """One key of a batch: the rows' arrays padded to a common shape (see the module) and concatenated."""
    return np.concatenate(padded_parts(key, parts, pad_id))


def collate_rows(
    rows: Sequence[Mapping[str, np.ndarray]], pad_id: int, pin: bool = False
) -> dict[str, torch.Tensor]:
    """Rows of one-image processor outputs as one batch of host tensors (page-locked when ``pin``). Each key is
    copied once, from the rows straight into its host tensor: a Qwen batch at 224 px is ~2 MB of patch rows per
    frame, and a second copy cost the stacking thread as much as the first (bench/bench_family_inputs.py)."""
    from avt_triplets.devices import stack_on_host

    return {
        key: stack_on_host(padded_parts(key, [row[key] for row in rows], pad_id), concatenate=True, pin=pin)
        for key in rows[0]
    }


class CollatedBatch:
    """A batch of variable-size rows, collated once (in the stacking thread) into :attr:`tensors`. It slices like
    an array batch (:class:`~avt_triplets.batching.BackoffBatcher` halves a batch that ran out of memory): a slice
    is the collated batch of those rows."""

    def __init__(self, rows: Sequence[Mapping[str, np.ndarray]], pad_id: int, pin: bool = False):
        self.rows, self.pad_id, self.pin = list(rows), pad_id, pin
        self.tensors = collate_rows(self.rows, pad_id, pin) if self.rows else {}

    @property
    def shape(self) -> tuple[int]:
        return (len(self.rows),)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice) -> CollatedBatch:
        if not isinstance(index, slice):
            raise TypeError("a collated batch is sliced, not indexed")
        if index == slice(0, len(self.rows)) or index == slice(None):
            return self
        return CollatedBatch(self.rows[index], self.pad_id, self.pin)


__all__ = ["TEXT_KEYS", "CollatedBatch", "collate_key", "collate_rows", "padded_parts"]
