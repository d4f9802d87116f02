"""What the models take for one clip, made on the CPU worker that decoded it: compact numpy arrays only.

A GPU waits whenever the process feeding it does CPU work between two model calls, so everything that can be
done per clip before batching happens where the clip is decoded (the ``local`` distributor's decode workers,
the ``ray`` distributor's CPU decode stage; both call :class:`InputPreparer` through
:func:`avt_triplets.decoding.decode_job`):

- **frames**: exact duplicates within the clip (identical decoded pixels, common in static videos) are kept
  once, and each distinct frame goes through the captioner's own image processor (resize, rescale,
  normalise into ``pixel_values``, the same call ``captioner.caption`` makes, so captions do not change);
- **audio**: the scorer's windowing and feature extraction (:mod:`avt_triplets.windowed_scorer`); audio the
  scorer cannot use is recorded with the reason, to fail that clip in the worker stage as before.

The process holding the models then only stacks a batch's rows into one (page-locked) buffer, copies it to the
device and runs the models (:meth:`~avt_triplets.captioners.TransformersCaptioner.caption_pixels`,
:meth:`~avt_triplets.windowed_scorer.WindowedScorer.embed_prepared_audio`).

A model without a preprocessor (a captioner whose image processor's output size depends on the image, a
custom model that only implements ``caption`` / ``embed_audio``) gets the raw RGB frames and waveform, as
before; deduplication applies either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# RGB uint8 frames -> {"pixel_values": [N, ...], other image keys: [N, ...]}: the captioner's inputs per frame
ImagePreprocessor = Callable[[Sequence[np.ndarray]], Mapping[str, np.ndarray]]
AudioPreprocessor = Callable[[np.ndarray], np.ndarray]  # mono float32 waveform -> [windows, ...] model input


@dataclass
class FrameInputs:
    """A clip's frames for the captioner: ``unique[rows[k]]`` is frame ``k``'s input (with ``extra[key][rows[k]]``
    for variable-size layouts: the image's metadata and prompt ids, packed along the same first dimension)."""

    rows: np.ndarray  # [frames] int64: the row of ``unique`` each frame uses (exact duplicates share one)
    unique: np.ndarray | None  # [distinct, ...]: pixel_values when ``preprocessed``, else RGB uint8 frames
    preprocessed: bool
    extra: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # [distinct, ...] each: image_grid_thw, input_ids

    @property
    def num_unique(self) -> int:
        return int(self.rows.max()) + 1 if self.rows.size else 0

    def row(self, k: int) -> Mapping[str, np.ndarray] | np.ndarray:
        """Distinct frame ``k`` as the captioner's ``stack`` takes it (its inputs by key), or its RGB array."""
        if not self.preprocessed:
            return self.unique[k]
        return {"pixel_values": self.unique[k], **{key: value[k] for key, value in self.extra.items()}}


@dataclass
class AudioInputs:
    """A clip's audio for the scorer: prepared windows (``prepared``) or the mono waveform, or why it can't be
    used (``error``, the message of the scorer's :class:`~avt_triplets.batching.InputRejected`)."""

    data: np.ndarray | None  # prepared: [windows, ...] float32 scorer input; else [samples] float32 waveform
    prepared: bool  # whether ``data`` went through the scorer's audio preprocessor
    error: str | None = None  # set (and ``data`` None) when the scorer rejected this clip's audio


@dataclass
class ModelInputs:
    """Everything the model process needs of one clip, as arrays that cross a process boundary cheaply."""

    frames: FrameInputs
    audio: AudioInputs

    def map_arrays(self, fn: Callable) -> ModelInputs:
        """The same inputs with ``fn`` applied to each array (how they cross a process boundary cheaply)."""
        extra = {key: fn(value) for key, value in self.frames.extra.items()}
        frames = FrameInputs(
            fn(self.frames.rows), _maybe(fn, self.frames.unique), self.frames.preprocessed, extra
        )
        audio = AudioInputs(_maybe(fn, self.audio.data), self.audio.prepared, self.audio.error)
        return ModelInputs(frames, audio)


def _maybe(fn: Callable, value):
    return None if value is None else fn(value)


def distinct_frames(frames: Sequence[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """``(rows, firsts)``: for each frame the index of its first exact duplicate among the distinct ones, and
    the positions of the distinct frames. Equality is of the decoded pixels (digest, then a full compare)."""
    rows = np.empty(len(frames), dtype=np.int64)
    firsts: list[int] = []
    seen: dict[bytes, list[int]] = {}
    for k, frame in enumerate(frames):
        frame = np.ascontiguousarray(frame)
        key = hashlib.blake2b(frame.tobytes(), digest_size=16).digest() + repr(frame.shape).encode()
        candidates = seen.setdefault(key, [])
        match = next((row for row in candidates if np.array_equal(frames[firsts[row]], frame)), None)
        if match is None:
            match = len(firsts)
            firsts.append(k)
            candidates.append(match)
        rows[k] = match
    return rows, firsts


def frame_inputs(frames: Sequence[np.ndarray], preprocess: ImagePreprocessor | None) -> FrameInputs:
    """A clip's decoded RGB frames as captioner inputs: distinct frames only, preprocessed when possible."""
    rows, firsts = distinct_frames(frames)
    if not firsts:
        return FrameInputs(rows, None, preprocess is not None)
    distinct = [np.asarray(frames[k]) for k in firsts]
    if preprocess is None:
        return FrameInputs(rows, np.stack(distinct), False)
    arrays = {key: np.ascontiguousarray(value) for key, value in preprocess(distinct).items()}
    return FrameInputs(rows, arrays.pop("pixel_values"), True, arrays)


def audio_inputs(waveform: np.ndarray, preprocess: AudioPreprocessor | None) -> AudioInputs:
    """A clip's waveform at the scorer's rate as scorer inputs (prepared when the scorer offers it)."""
    from avt_triplets.batching import InputRejected

    if preprocess is None:
        return AudioInputs(np.asarray(waveform), False)
    try:
        return AudioInputs(np.ascontiguousarray(preprocess(waveform)), True)
    except InputRejected as error:
        return AudioInputs(None, True, str(error))


@dataclass(frozen=True)
class InputPreparer:
    """The per-clip preprocessing of a run's models; small and picklable, so it travels to decode workers
    (forked or spawned) and to Ray tasks without the models."""

    image: ImagePreprocessor | None = None
    audio: AudioPreprocessor | None = None
    image_short_side: int | None = (
        None  # frames for the captioner at this short side (None: as stored; 0: source)
    )

    def __call__(self, frames: Sequence[np.ndarray], waveform: np.ndarray) -> ModelInputs:
        return ModelInputs(frame_inputs(frames, self.image), audio_inputs(waveform, self.audio))


def image_preprocessor_of(captioner) -> ImagePreprocessor | None:
    """The captioner's ``image_preprocessor()`` (its :class:`~avt_triplets.captioner_contract.InputPlan`'s), or
    None when frames stay raw (it then takes PIL images)."""
    return None if captioner is None else captioner.image_preprocessor()


def audio_preprocessor_of(scorer) -> AudioPreprocessor | None:
    """The scorer's ``audio_preprocessor()``, or None when it has none (it then takes waveforms)."""
    make = getattr(scorer, "audio_preprocessor", None)
    return make() if callable(make) else None


def preparer_for(captioner, scorer) -> InputPreparer:
    """The :class:`InputPreparer` of loaded models (either may be None: that part is left raw)."""
    side = None if captioner is None else captioner.image_short_side()
    return InputPreparer(image_preprocessor_of(captioner), audio_preprocessor_of(scorer), side)


def caption_rows(captioner, rows: Sequence, preprocessed: bool) -> list[str]:
    """Captions of frame rows (:meth:`FrameInputs.row`): ``caption_pixels`` of the ``stack`` of preprocessed
    rows, else ``caption`` of the RGB frames."""
    if preprocessed:
        return list(captioner.caption_pixels(captioner.stack(rows, pin=False)))
    from PIL import Image

    return list(captioner.caption([Image.fromarray(np.asarray(row)) for row in rows]))


def rows_of(prepared: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """An image preprocessor's output split into one row per frame (what a captioner's ``stack`` takes)."""
    count = len(prepared["pixel_values"])
    return [{key: value[k] for key, value in prepared.items()} for k in range(count)]


def caption_batch(captioner, batch) -> list[str]:
    """Captions of a batch as :class:`~avt_triplets.stages.caption_batches.CaptionBatches` forms it: a list of RGB
    frames (``caption`` of the images), else a batch the captioner's ``stack`` made (``caption_pixels``)."""
    if not isinstance(batch, list):
        return list(captioner.caption_pixels(batch))
    from PIL import Image

    return list(captioner.caption([Image.fromarray(np.asarray(row)) for row in batch]))


def embed_audio_inputs(scorer, audio: Sequence[AudioInputs]) -> np.ndarray:
    """[B, D] embeddings of clips' audio inputs; :class:`~avt_triplets.batching.InputRejected` if one of them
    was rejected when it was prepared (as the scorer raises it for raw audio)."""
    from avt_triplets.batching import InputRejected

    rejected = next((a.error for a in audio if a.error is not None), None)
    if rejected is not None:
        raise InputRejected(rejected)
    if audio and all(a.prepared for a in audio):
        return np.asarray(scorer.embed_prepared_audio([a.data for a in audio]))
    return np.asarray(scorer.embed_audio([a.data for a in audio]))


__all__ = [
    "AudioInputs",
    "AudioPreprocessor",
    "FrameInputs",
    "ImagePreprocessor",
    "InputPreparer",
    "ModelInputs",
    "audio_inputs",
    "audio_preprocessor_of",
    "caption_batch",
    "caption_rows",
    "distinct_frames",
    "embed_audio_inputs",
    "frame_inputs",
    "image_preprocessor_of",
    "preparer_for",
    "rows_of",
]
