"""Dataset arguments and row decoding shared by training and evaluation.

``DatasetSpec`` is the ``DIR_OR_ID[:config]`` argument of every command that reads triplets. The decoders turn one
row's encoded media (16 kHz WAV audio, JPEG frames, as ``avt generate`` writes them) into a waveform and images,
decoding only what a sample uses. Not every dataset has every column: a metadata-only export has no media, a
labelled-only output (``avt generate --captioner none``) no caption columns; :func:`missing_columns_hint` says
which kind a dataset lacking columns is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avt_core.errors import UsageError
from avt_triplets.schema import (
    AUDIO_SAMPLING_RATE,
    CAPTION_COLUMNS,
    MEDIA_COLUMNS,
    MODALITY_CAPTION_COLUMNS,
    MODALITY_TEXT_EMBEDDINGS,
    has_captions,
)

TEXT_EMBEDDING_COLUMN = "text_embedding"


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


def recorded_class_table(specs: Sequence[str | DatasetSpec]):
    """The class list the datasets' manifests record (``avt generate --label-csv``, or every split's labels of a
    list with a split column), when every dataset records the same one; else None (the caller falls back to the
    labels it sees). Folders and fsspec URLs only: a Hub id's manifest is not read."""
    from avt_triplets.dataset_card import read_manifest
    from avt_triplets.labels import ClassTable

    tables = []
    for raw in specs:
        spec = raw if isinstance(raw, DatasetSpec) else DatasetSpec.parse(raw)
        try:
            tables.append(ClassTable.from_record(read_manifest(spec.path).get("classes")))
        except (OSError, ValueError):  # not a folder avt wrote (a Hub id, an unreachable store)
            tables.append(None)
    first = tables[0] if tables else None
    if first is None or any(t is None or (t.names, t.mids) != (first.names, first.mids) for t in tables):
        return None
    return first


def recorded_caption_units(specs: Sequence[str | DatasetSpec]) -> dict[str, str]:
    """What one caption of each dataset describes, as its manifest records it (``avt generate --caption-unit``:
    "per frame", "per clip window of up to N frames, as one video"), by argument, for the model card. Folders and
    fsspec URLs only: a dataset without a readable manifest (a Hub id) is left out."""
    from avt_triplets.dataset_card import Provenance, read_manifest

    units = {}
    for raw in specs:
        spec = raw if isinstance(raw, DatasetSpec) else DatasetSpec.parse(raw)
        try:
            manifest = read_manifest(spec.path)
        except (OSError, ValueError):  # not a folder avt wrote (a Hub id, an unreachable store)
            continue
        if manifest.get("captioner"):
            units[str(raw)] = Provenance.from_manifest(manifest).unit_text()
    return units


def has_text_embeddings(column_names) -> bool:
    """Whether rows carry the CLAP text embedding of their caption (text losses, text retrieval)."""
    return TEXT_EMBEDDING_COLUMN in set(column_names)


def missing_columns_hint(missing, column_names) -> str:
    """Why a dataset may lack ``missing`` columns, as a parenthesised hint ('' when there is nothing to say)."""
    missing = set(missing)
    if missing & set(MEDIA_COLUMNS):
        return " (a metadata-only export has no media: fetch the videos or use the full output)"
    if missing & {*CAPTION_COLUMNS, *MODALITY_CAPTION_COLUMNS} and not has_captions(column_names):
        return (
            " (a labelled-only output of `avt generate --captioner none` has no captions: it serves fine-tuning "
            "and evaluation; pretraining with text needs captioned triplets)"
        )
    if missing & set(MODALITY_TEXT_EMBEDDINGS.values()):
        return (
            " (--text-source modality needs the CLAP embeddings of the audio and the visual captions: generate "
            "with an audio captioner, or train with --text-source caption)"
        )
    return ""


def require_columns(dataset: str, available: Sequence[str], columns: Sequence[str]) -> None:
    """Stop with one clear line when ``dataset`` lacks a needed column, saying why it may (``missing_columns_hint``)."""
    missing = [c for c in columns if c not in available]
    if missing:
        raise UsageError(
            f"dataset {dataset} lacks column(s) {missing}{missing_columns_hint(missing, available)}"
        )


def require_one_text_embedding_size(sizes: set[int]) -> None:
    """Concatenated datasets must share one text-embedding size (one CLAP scorer made them all)."""
    if len(sizes) > 1:
        raise UsageError(
            f"datasets have text embeddings of different sizes {sorted(sizes)}: mix one scorer only"
        )


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


def frame_counts(hf_dataset, batch_size: int = 1024) -> list[int]:
    """Frames per clip, read as Arrow list lengths (the JPEG bytes are not copied into Python)."""
    import pyarrow.compute as pc

    if hasattr(hf_dataset, "list_lengths"):  # read in place (avt_data.parquet_rows.ParquetTriplets)
        return hf_dataset.list_lengths("frames")
    frames = hf_dataset.select_columns(["frames"]).with_format("arrow")
    counts: list[int] = []
    for batch in frames.iter(batch_size=batch_size):
        lengths = pc.list_value_length(batch.column("frames")).fill_null(0)
        counts.extend(lengths.to_pylist())
    return counts
