"""Official CAV-MAE balanced sampling (``bal=bal``): rare classes are drawn as often as common ones.

The official AudioSet-2M and VGGSound fine-tuning recipes draw training clips with replacement from a
``WeightedRandomSampler`` whose per-clip weights come from ``src/gen_weight_file.py``: the sum, over the clip's
labels, of ``1000 / (class_count + 0.01)``; one epoch is as many draws as there are clips. AudioSet-20K
fine-tuning samples uniformly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

WEIGHT_NUMERATOR = 1000.0
COUNT_EPSILON = 0.01


def official_sample_weights(
    label_lists: Sequence[Sequence[str] | None], label_to_index: Mapping[str, int]
) -> np.ndarray:
    """Per-clip weights ``sum(1000 / (count[c] + 0.01) for c in labels)``, counts over the same clips.

    ``label_to_index`` maps every accepted label string (display name or mid) to its class index, so aliases of
    one class share one count. Unknown labels are ignored, as fine-tuning ignores them; a label repeated within
    a clip counts once (the target is multi-hot). A clip with no known label gets weight 0 (never drawn).
    """
    clip_classes = [
        sorted({label_to_index[name] for name in (labels or []) if name in label_to_index})
        for labels in label_lists
    ]
    num_classes = max(label_to_index.values(), default=-1) + 1
    counts = np.zeros(num_classes, dtype=np.float64)
    for classes in clip_classes:
        counts[classes] += 1
    class_weight = WEIGHT_NUMERATOR / (counts + COUNT_EPSILON)
    return np.array([class_weight[classes].sum() for classes in clip_classes], dtype=np.float64)


class EpochSeededWeightedSampler(WeightedRandomSampler):
    """``WeightedRandomSampler`` (with replacement) whose draws depend only on ``(seed, epoch)``.

    Every process builds the same sequence for an epoch, so accelerate's batch sharding hands each rank a
    disjoint part of one global draw (``num_samples`` clips per epoch over all ranks), and a resumed run
    replays the same order. ``transformers.Trainer`` calls ``set_epoch`` on the sampler each epoch.
    """

    def __init__(self, weights: Sequence[float] | np.ndarray, seed: int, num_samples: int | None = None):
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1 or not len(weights) or not (weights > 0).any() or (weights < 0).any():
            raise ValueError("balanced sampling needs non-negative weights with at least one positive")
        super().__init__(torch.as_tensor(weights), num_samples=num_samples or len(weights), replacement=True)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)
        yield from draws.tolist()
