"""Triplet datasets for training: loading, seeded sampling and per-clip decoding.

Every random choice made for a sample (which frame, the fbank noise and shift, the MAE masks, the mixup
partner) is drawn from a generator seeded by ``(seed, epoch, index)``. The sampler yields ``(index, epoch)``
keys, so a sample's augmentation does not depend on which DataLoader worker decodes it or on how many
batches came before it: this is what lets ``--resume`` reproduce an uninterrupted run exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from avt_triplets.errors import UsageError

logger = logging.getLogger(__name__)

AUDIO_SAMPLING_RATE = 16_000
FrameSelection = Literal["random", "middle"]


# --------------------------------------------------------------------------------------------------
# Dataset specs and loading
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """One ``--dataset DIR_OR_ID[:config]`` argument."""

    path: str
    config: str | None = None

    @classmethod
    def parse(cls, text: str) -> DatasetSpec:
        """Split ``DIR_OR_ID[:config]``; the config is the part after the last ``:`` when it has no ``/``."""
        head, sep, tail = text.rpartition(":")
        if sep and head and tail and "/" not in tail and "\\" not in tail:
            return cls(path=head, config=tail)
        return cls(path=text, config=None)

    def __str__(self) -> str:
        return f"{self.path}:{self.config}" if self.config else self.path


def load_triplet_datasets(
    specs: Sequence[str | DatasetSpec],
    columns: Sequence[str],
    split: str = "train",
    cache_dir: str | None = None,
):
    """Load each dataset (local generation output or Hub repo id) and concatenate them.

    Only ``columns`` are kept, so datasets that differ in optional columns still concatenate; a dataset
    missing a needed column (for example a metadata-only export without ``audio``/``frames``) is a clear
    error naming it.
    """
    import datasets

    parts = []
    for raw in specs:
        spec = raw if isinstance(raw, DatasetSpec) else DatasetSpec.parse(raw)
        try:
            ds = datasets.load_dataset(spec.path, spec.config, split=split, cache_dir=cache_dir)
        except FileNotFoundError as error:  # also the Hub's DatasetNotFoundError
            raise UsageError(f"dataset {spec}: {error}") from None
        missing = [c for c in columns if c not in ds.column_names]
        if missing:
            hint = (
                " (a metadata-only export has no media: training needs the audio and frames)"
                if {"audio", "frames"} & set(missing)
                else ""
            )
            raise UsageError(f"dataset {spec} split {split!r} lacks column(s) {missing}{hint}")
        parts.append(ds.select_columns(list(columns)))
        logger.info("dataset %s split %s: %d clips", spec, split, len(ds))
    if not parts:
        raise UsageError("no dataset given")
    if "text_embedding" in columns:
        dims = {len(p[0]["text_embedding"]) for p in parts if len(p)}
        if len(dims) > 1:
            raise UsageError(
                f"datasets have text embeddings of different sizes {sorted(dims)}: mix one scorer only"
            )
    if len(parts) == 1:
        return parts[0]
    # Features can differ in irrelevant details (e.g. a List vs Sequence of float32): align them to the first.
    parts = [parts[0]] + [p.cast(parts[0].features) for p in parts[1:]]
    return datasets.concatenate_datasets(parts)


def undecoded_frames(dataset):
    """Cast ``frames`` so rows carry encoded JPEGs: a training sample decodes only the one frame it uses."""
    import datasets

    if "frames" not in dataset.column_names:
        return dataset
    return dataset.cast_column("frames", datasets.List(datasets.Image(decode=False)))


def undecoded_media(dataset):
    """Frames and audio left encoded in rows: decoding happens in ``ClipDataset``, where a broken file
    becomes a recorded substitution instead of an exception while reading the row."""
    import datasets

    dataset = undecoded_frames(dataset)
    if "audio" in dataset.column_names:
        dataset = dataset.cast_column(
            "audio", datasets.Audio(sampling_rate=AUDIO_SAMPLING_RATE, decode=False)
        )
    return dataset


# --------------------------------------------------------------------------------------------------
# Seeded sampling
# --------------------------------------------------------------------------------------------------


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample's augmentation in one epoch: a pure function of its arguments."""
    return np.random.default_rng((seed, epoch, index))


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))


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


def decode_audio(value: Any) -> np.ndarray:
    """Mono float32 waveform at 16 kHz from a ``datasets.Audio`` value: decoded (torchcodec decoder or
    ``{"array", "sampling_rate"}``) or still encoded (``{"bytes", "path"}``, decoded and resampled here).

    The first channel is kept, as the official preprocessing does (``sox ... remix 1``).
    """
    if isinstance(value, dict) and "array" not in value:
        fast = _decode_pcm_wav(value.get("bytes"))
        if fast is not None:
            return fast
        import datasets

        value = datasets.Audio(sampling_rate=AUDIO_SAMPLING_RATE).decode_example(value)
    if isinstance(value, dict) and "array" in value:
        array = np.asarray(value["array"], dtype=np.float32)
        rate = value.get("sampling_rate", AUDIO_SAMPLING_RATE)
    else:  # torchcodec AudioDecoder (datasets >= 4)
        samples = value.get_all_samples()
        array = samples.data.numpy().astype(np.float32, copy=False)
        rate = samples.sample_rate
    if rate != AUDIO_SAMPLING_RATE:
        raise ValueError(f"audio at {rate} Hz; the dataset's Audio feature must resample to 16 kHz")
    if array.ndim == 2:
        array = array[0]
    if array.size == 0:
        raise ValueError("empty audio")
    return array


def _decode_pcm_wav(data: bytes | None) -> np.ndarray | None:
    """First channel of a 16 kHz PCM WAV (what ``avt generate`` stores) with the standard library's ``wave``.

    Opening a torchcodec decoder costs ~13 ms per clip (FFmpeg probing), 15x the whole decode here; any other
    format or rate returns None and goes through ``datasets``/torchcodec. Scaling matches FFmpeg's (x / 2^(b-1)).
    """
    if not data or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    import io
    import wave

    try:
        with wave.open(io.BytesIO(data)) as reader:
            width, channels, rate = reader.getsampwidth(), reader.getnchannels(), reader.getframerate()
            if rate != AUDIO_SAMPLING_RATE or width not in (2, 4):
                return None
            frames = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError):
        return None
    dtype = np.int16 if width == 2 else np.int32
    samples = np.frombuffer(frames, dtype=f"<i{width}").reshape(-1, channels)[:, 0]
    waveform = samples.astype(np.float32) / float(np.iinfo(dtype).max + 1)
    if waveform.size == 0:
        raise ValueError("empty audio")
    return waveform


def decode_frame(value: Any):
    """PIL RGB image from an encoded ``datasets.Image`` value (or an already decoded image)."""
    import datasets

    image = value if hasattr(value, "convert") else datasets.Image().decode_example(value)
    return image.convert("RGB")


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
    ):
        self.data = undecoded_media(hf_dataset)
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
        if self.with_text:
            example["text_embedding"] = np.asarray(row["text_embedding"], dtype=np.float32)
        if self.with_labels:
            example["labels"] = list(row["labels"] or [])
        return example

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, rng = self.rng_for(key)
        example = self.decode_row(index, rng)
        if self.mixup and rng.random() < self.mixup:
            # Official mixup: a uniformly random partner clip, lambda ~ Beta(10, 10) for audio, image and labels.
            partner = self.decode_row(int(rng.integers(len(self))), rng)
            example["mix_lambda"] = float(rng.beta(self.mixup_alpha, self.mixup_alpha))
            example["mix_waveform"] = partner["waveform"]
            example["mix_image"] = partner["image"]
            example["mix_labels"] = partner.get("labels", [])
        # One seed for everything the collator draws for this sample (noise, masks, SpecAugment).
        example["seed"] = int(rng.integers(0, 2**63 - 1))
        return example


def frame_counts(hf_dataset, batch_size: int = 1024) -> list[int]:
    """Frames per clip, read as Arrow list lengths (the JPEG bytes are not copied into Python)."""
    import pyarrow.compute as pc

    frames = hf_dataset.select_columns(["frames"]).with_format("arrow")
    counts: list[int] = []
    for batch in frames.iter(batch_size=batch_size):
        lengths = pc.list_value_length(batch.column("frames")).fill_null(0)
        counts.extend(lengths.to_pylist())
    return counts


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
