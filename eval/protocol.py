"""The CAV-MAE retrieval protocol: which clips and which frame are evaluated.

The official script evaluates "5 samples per class" subsets of the AudioSet eval and VGGSound test sets
(JSON lists distributed only on Dropbox, so their exact membership cannot be reproduced here) with the middle
of the 10 stored frames (``frame_use = 5``). We rebuild such a subset from a dataset's ``labels`` column with
a seeded, documented rule, so the same seed always gives the same clips.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np


def middle_frame_index(num_frames: int) -> int:
    """``int(n / 2)`` as the official loader: frame 5 of 10."""
    if num_frames <= 0:
        raise ValueError("clip has no frames")
    return num_frames // 2


def per_class_subset(labels: Sequence[Sequence[str] | None], per_class: int = 5, seed: int = 0) -> list[int]:
    """Indices of a seeded subset with ``per_class`` clips for every label (fewer if the class has fewer).

    Rule: shuffle the clips with ``seed``; visit classes from the rarest to the most frequent (ties by name);
    a class takes clips carrying its label, in shuffled order, until ``per_class`` chosen clips carry it
    (clips already chosen for another class count). Single-label data (VGGSound) thus gets exactly
    ``min(per_class, class size)`` clips per class (309 x 5 = 1,545 on the VGGSound test set); multi-label
    data (AudioSet) gets at least ``per_class`` per class and no duplicated clip. Clips without labels are
    never chosen. Returns sorted indices.
    """
    if per_class < 1:
        raise ValueError("per_class must be >= 1")
    order = np.random.default_rng(seed).permutation(len(labels))
    clips_of_class: dict[str, list[int]] = defaultdict(list)
    for index in order:
        for label in set(labels[index] or ()):
            clips_of_class[label].append(int(index))
    chosen: set[int] = set()
    covered: dict[str, int] = defaultdict(int)
    for label in sorted(clips_of_class, key=lambda name: (len(clips_of_class[name]), name)):
        for index in clips_of_class[label]:
            if covered[label] >= per_class:
                break
            if index in chosen:
                continue
            chosen.add(index)
            for other in set(labels[index] or ()):
                covered[other] += 1
    return sorted(chosen)
