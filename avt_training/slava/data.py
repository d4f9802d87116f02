"""Cached tower features as training tensors, with seeded caption sampling and global-batch index slices.

Every process holds every clip's features (a few KB per clip) and the same seeded permutation per epoch; the global
batch `b` is positions `[b * G, (b + 1) * G)` of it and process `r` takes its `r`-th `per_device` slice, so one
process with batch `G` sees exactly the batches of `G / per_device` processes. A clip with several captions of a
kind gets one of them per epoch, drawn from a generator seeded by `(seed, epoch)` (identical on every process).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from avt_data.captions import CAPTION_KINDS
from avt_training.slava.cache import FeatureTable


def _concatenate(tables: list[FeatureTable]):
    audio = np.concatenate([t.audio for t in tables])
    visual = np.concatenate([t.visual for t in tables])
    errors = [e for t in tables for e in t.errors]
    texts = {}
    for kind in CAPTION_KINDS:
        flats, counts = [], []
        for table in tables:
            flat, offsets = table.texts[kind]
            flats.append(flat)
            counts.append(np.diff(offsets))
        texts[kind] = (np.concatenate(flats), np.concatenate(counts))
    return audio, visual, errors, texts


class TrainingFeatures:
    """The clips a variant can train on: decoded, with at least one caption of every kind it uses."""

    def __init__(self, tables: list[FeatureTable], kinds: Iterable[str], device: torch.device | str = "cpu"):
        audio, visual, errors, texts = _concatenate(tables)
        kinds = sorted(set(kinds))
        keep = np.asarray([e is None for e in errors])
        for kind in kinds:
            keep &= texts[kind][1] > 0
        self.num_clips_total = len(errors)
        self.num_excluded = int((~keep).sum())
        self.audio = torch.from_numpy(audio[keep]).to(device)
        self.visual = torch.from_numpy(visual[keep]).to(device)
        self.texts: dict[str, torch.Tensor] = {}
        self.caption_starts: dict[str, torch.Tensor] = {}
        self.caption_counts: dict[str, torch.Tensor] = {}
        for kind in kinds:
            flat, counts = texts[kind]
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            self.texts[kind] = torch.from_numpy(flat).to(device)
            self.caption_starts[kind] = torch.from_numpy(starts[keep]).to(device)
            self.caption_counts[kind] = torch.from_numpy(counts[keep].astype(np.int64)).to(device)

    def __len__(self) -> int:
        return self.audio.shape[0]

    def caption_rows(self, kind: str, seed: int, epoch: int, first: bool = False) -> torch.Tensor:
        """Row of `texts[kind]` each clip uses this epoch (its first caption with `first`)."""
        starts, counts = self.caption_starts[kind], self.caption_counts[kind]
        if first:
            return starts
        generator = torch.Generator().manual_seed(hash_seed(seed, epoch))
        draw = torch.rand(len(self), generator=generator).to(starts.device)
        return starts + (draw * counts).long().clamp_max(counts - 1)

    def batch(self, indices: torch.Tensor, kind: str, caption_rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "audio_tower_features": self.audio[indices],
            "visual_tower_features": self.visual[indices],
            "text_tower_features": self.texts[kind][caption_rows[indices]],
        }


def hash_seed(*parts: int) -> int:
    """A 63-bit seed from integers (numpy's SeedSequence), so (seed, epoch) pairs never collide."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def epoch_permutation(num_clips: int, seed: int, stage: int, epoch: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(hash_seed(seed, stage, epoch))
    return torch.randperm(num_clips, generator=generator)


def local_slice(
    permutation: torch.Tensor, step_in_epoch: int, per_device: int, rank: int, world: int
) -> torch.Tensor:
    """This process's rows of global batch `step_in_epoch`."""
    start = step_in_epoch * per_device * world + rank * per_device
    return permutation[start : start + per_device]


__all__ = ["TrainingFeatures", "epoch_permutation", "hash_seed", "local_slice"]
