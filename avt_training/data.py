"""Triplet datasets for training: loading, seeded sampling and per-clip decoding.

The interface the loops use: ``load_triplet_datasets`` (specs -> one dataset of the needed columns),
``ClipDataset`` / ``FrameExpandedDataset`` (index or ``(index, epoch)`` key -> decoded example) and
``EpochShuffleSampler``. How rows are read stays behind it; decoding one row is ``avt_data.rows``.

Every random choice made for a sample (which frame, the fbank noise and shift, the MAE masks, the mixup
partner) is drawn from a generator seeded by ``(seed, epoch, index)``. The sampler yields ``(index, epoch)``
keys, so a sample's augmentation does not depend on which DataLoader worker decodes it or on how many
batches came before it: this is what lets ``--resume`` reproduce an uninterrupted run exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from avt_core.errors import UsageError
from avt_data.rows import DatasetSpec, decode_audio, decode_frame, frame_counts, undecoded_media

logger = logging.getLogger(__name__)

FrameSelection = Literal["random", "middle"]


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def load_triplet_datasets(
    specs: Sequence[str | DatasetSpec],
    columns: Sequence[str],
    split: str = "train",
    cache_dir: str | None = None,
    optional_columns: Sequence[str] = (),
):
    """The datasets (folders, Hub ids or fsspec URLs, each with an optional config) concatenated, keeping
    ``columns`` and the ``optional_columns`` every dataset has. Parquet is read in place
    (``avt_data.parquet_rows.ParquetTriplets``: nothing copied into the ``datasets`` cache); other formats go
    through the cache. A dataset missing a needed column (e.g. a metadata-only export without
    ``audio``/``frames``) is a clear error naming it."""
    from avt_data.parquet_rows import load_triplets

    return load_triplets(
        [str(s) for s in specs], columns, split=split, cache_dir=cache_dir, optional_columns=optional_columns
    )


# `avt pretrain --text-source`: the CLAP text embedding column each text term is contrasted with, (L_a2t, L_v2t).
# `caption` is the paper (the chosen frame caption for both); `modality` the audio caption for the audio-text term and
# the visual caption for the visual-text term (avt_triplets.schema.MODALITY_TEXT_EMBEDDINGS).
TEXT_SOURCES: dict[str, tuple[str, str]] = {
    "caption": ("text_embedding", "text_embedding"),
    "modality": ("audio_text_embedding", "visual_text_embedding"),
}


def text_columns(text_source: str = "caption") -> tuple[str, ...]:
    """The text embedding columns a pretraining run with this ``--text-source`` reads (each once)."""
    return tuple(dict.fromkeys(TEXT_SOURCES[text_source]))


def check_one_global_batch(num_clips: int, per_device_batch_size: int, num_processes: int) -> None:
    """The training loaders drop incomplete batches (every process needs equal ones for the all-gather; the
    official loaders drop them too), so fewer clips than one global batch would train nothing: pretrain and
    finetune refuse that before the model loads."""
    global_batch = per_device_batch_size * num_processes
    if num_clips < global_batch:
        raise UsageError(
            f"the training data has {num_clips} clips, fewer than one batch of {global_batch} "
            f"(--per-device-batch-size {per_device_batch_size} x {num_processes} process(es)): lower "
            "--per-device-batch-size or add clips"
        )


# --------------------------------------------------------------------------------------------------
# Seeded sampling
# --------------------------------------------------------------------------------------------------


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample's augmentation in one epoch: a pure function of its arguments."""
    return np.random.default_rng((seed, epoch, index))


class EpochShuffleSampler(Sampler):
    """A seeded permutation per epoch that yields ``(index, epoch)`` keys.

    accelerate shards its batches across processes (every process builds the same permutation from the
    same seed), and ``skip_first_batches`` replays it to the resume point, so resumed data order is exact.
    """

    def __init__(self, num_samples: int, seed: int, shuffle: bool = True):
        self.num_samples = num_samples
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def state_dict(self) -> dict[str, Any]:
        return {
            "num_samples": self.num_samples,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take the checkpoint's epoch; another seed or dataset size cannot replay the interrupted run's order."""
        for key in ("num_samples", "seed", "shuffle"):
            if state.get(key) != getattr(self, key):
                logger.warning(
                    "resuming with sampler %s=%s instead of %s: the run continues, but not in the order an "
                    "uninterrupted run would have used",
                    key,
                    getattr(self, key),
                    state.get(key),
                )
        self.epoch = int(state["epoch"])

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator).tolist()
        else:
            order = range(self.num_samples)
        epoch = self.epoch
        for index in order:
            yield (index, epoch)


# --------------------------------------------------------------------------------------------------
# Decoding one clip
# --------------------------------------------------------------------------------------------------


def frame_index(num_frames: int, selection: FrameSelection | int, rng: np.random.Generator) -> int:
    """Official choice: a uniformly random frame in training, the middle one (``n // 2``) in evaluation."""
    if num_frames <= 0:
        raise ValueError("clip has no frames")
    if selection == "random":
        return int(rng.integers(num_frames))
    if selection == "middle":
        return num_frames // 2
    return min(int(selection), num_frames - 1)  # a fixed index; missing frames fall back to lower ones


class ClipDataset(Dataset):
    """Decodes rows of a triplet dataset into one example per clip (waveform, one frame, extras).

    Keys are ``(index, epoch)`` from :class:`EpochShuffleSampler` (deterministic augmentation) or plain
    indices (fresh randomness from the worker's seeded global RNG, e.g. under ``transformers.Trainer``).
    A clip whose audio or frame cannot be decoded is not a crash: it is returned with ``decode_error`` set,
    and the collator substitutes a constant input as the official loader does and counts it.
    """

    def __init__(
        self,
        hf_dataset,
        frame_selection: FrameSelection | int = "random",
        seed: int = 0,
        with_text: bool = True,
        with_labels: bool = False,
        mixup: float = 0.0,
        mixup_alpha: float = 10.0,
        text_source: str = "caption",
    ):
        self.data = undecoded_media(hf_dataset)
        self.text_columns = TEXT_SOURCES[text_source]
        self.mixup = mixup
        self.mixup_alpha = mixup_alpha
        self.frame_selection = frame_selection
        self.seed = seed
        self.with_text = with_text
        self.with_labels = with_labels

    def __len__(self) -> int:
        return len(self.data)

    def rng_for(self, key: int | tuple[int, int]) -> tuple[int, np.random.Generator]:
        if isinstance(key, tuple | list):
            index, epoch = int(key[0]), int(key[1])
            return index, sample_rng(self.seed, epoch, index)
        return int(key), np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))

    def decode_row(self, index: int, rng: np.random.Generator, frame: FrameSelection | int | None = None):
        row = self.data[index]
        example: dict[str, Any] = {"index": index, "decode_error": None}
        try:
            example["waveform"] = decode_audio(row["audio"])
        except Exception as error:  # noqa: BLE001 - a bad clip must not stop a long run
            example["waveform"] = None
            example["decode_error"] = f"audio: {type(error).__name__}: {error}"
        frames = row["frames"] or []
        try:
            chosen = frame_index(len(frames), self.frame_selection if frame is None else frame, rng)
            example["image"] = decode_frame(frames[chosen])
            example["frame_index"] = chosen
        except Exception as error:  # noqa: BLE001
            example["image"] = None
            example["frame_index"] = -1
            example["decode_error"] = (
                example["decode_error"] or ""
            ) + f" frame: {type(error).__name__}: {error}"
        if self.with_text:  # L_a2t's text; L_v2t's too unless the text source gives it its own
            audio_side, visual_side = self.text_columns
            example["text_embedding"] = np.asarray(row[audio_side], dtype=np.float32)
            if visual_side != audio_side:
                example["visual_text_embedding"] = np.asarray(row[visual_side], dtype=np.float32)
        if self.with_labels:
            example["labels"] = list(row["labels"] or [])
        return example

    def __getitems__(self, keys: list) -> list[dict[str, Any]]:
        """A batch (the DataLoader's batched fetch): rows read in place first fetch the batch's row groups
        together (``ParquetTriplets.prefetch``), mixup partners included, and start reading the next window."""
        prefetch = getattr(self.data, "prefetch", None)
        if prefetch is not None and keys:
            keyed = isinstance(keys[0], tuple | list)
            rows = [int(k[0]) if keyed else int(k) for k in keys]
            rows += [int(k[2]) for k in keys if keyed and len(k) > 2]
            prefetch(
                rows, epoch=int(keys[0][1]) if keyed else None
            )  # with the epoch: reads the next window ahead
        return [self[key] for key in keys]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, rng = self.rng_for(key)
        example = self.decode_row(index, rng)
        if self.mixup and rng.random() < self.mixup:
            # Official mixup: a uniformly random partner clip, lambda ~ Beta(10, 10) for audio, image and labels.
            # A block-shuffled order names the partner in the key (a clip of the same shuffle window).
            partner_index = int(rng.integers(len(self)))
            if isinstance(key, tuple | list) and len(key) > 2:
                partner_index = int(key[2])
            partner = self.decode_row(partner_index, rng)
            example["mix_lambda"] = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
            example["mix_waveform"] = partner["waveform"]
            example["mix_image"] = partner["image"]
            example["mix_labels"] = partner.get("labels", [])
        # One seed for everything the collator draws for this sample (noise, masks, SpecAugment).
        example["seed"] = int(rng.integers(0, 2**63 - 1))
        return example


class FrameExpandedDataset(Dataset):
    """Every frame of every clip as its own example, for the official multi-frame evaluation.

    ``clip_of_row[i]`` is the clip that example ``i`` came from; predictions are averaged per clip.
    """

    def __init__(self, clips: ClipDataset):
        self.clips = clips
        counts = frame_counts(clips.data)
        self.rows = [(clip, frame) for clip, count in enumerate(counts) for frame in range(max(count, 1))]
        self.clip_of_row = np.asarray([clip for clip, _ in self.rows], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int) -> dict[str, Any]:
        clip, frame = self.rows[int(key)]
        rng = np.random.default_rng((self.clips.seed, clip, frame))
        example = self.clips.decode_row(clip, rng, frame=frame)
        example["seed"] = int(rng.integers(0, 2**63 - 1))
        return example
