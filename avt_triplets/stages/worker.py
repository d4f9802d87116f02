"""The worker stage: one chunk of decoded clips -> captions -> scores -> best caption -> rows or failures.

This is the only code that calls the models, and every distributor runs it unchanged, as the model host
(:mod:`avt_triplets.model_host`) hands it out: the ``local`` and ``accelerate`` distributors call
:class:`ChunkWorker` in the process that holds the models, the ``ray`` distributor runs :class:`CaptionStep` in
captioner actors and :class:`ScoreStep` in scorer actors (one actor pool per model role). The roles between them
(an audio captioner: :mod:`avt_triplets.stages.audio_captions`) add caption candidates of their kind to the
:class:`CaptionedChunk` (``extra``); :class:`ScoreStep` scores them against the clip's audio as it scores the frame
captions and writes each kind's column group.

Without models (``avt generate --captioner none``) the stage is :class:`PackStep`: a chunk of decoded clips
-> rows of media and labels (no caption columns, ``row_features(captioned=False)``) or failures. It takes and
returns what :class:`ChunkWorker` does, needs no GPU and holds no state, so a distributor runs it wherever it
decodes (the model host, :mod:`avt_triplets.model_host`, picks the variant).

Bit-exact rows: the float results of a batched model call depend on what else is in the batch, so batches are
formed inside one chunk only (:mod:`avt_triplets.stages.reader`), at positions fixed by the chunk's content:
caption batches are runs of ``caption_batch_size`` frames of the chunk's decodable clips in order, score
batches runs of ``score_batch_size`` of those clips. Everything else that could carry over starts afresh with
every chunk: a batch size halved by an out-of-memory error (:meth:`BackoffBatcher.reset`), the cache of
caption embeddings, the random seed. A chunk's rows are therefore the same whichever process, node or
distributor computes them, and a resumed shard equals an uninterrupted one byte for byte.

Failures: a clip that did not decode arrives with its reason; a frame or clip the model gives up on even
alone (out of memory, :class:`~avt_triplets.batching.InputRejected`) becomes ``caption_failed`` /
``score_failed``; any other failure on a single item raises :class:`~avt_triplets.batching.ModelFailure`,
which stops the run (the model is broken, going on would only record every clip as failed).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from avt_triplets import schema, selection
from avt_triplets.batching import BackoffBatcher, Failed, ModelFailure, call_batched
from avt_triplets.captioners import Captioner
from avt_triplets.decoding import DecodedItem
from avt_triplets.devices import pins_memory
from avt_triplets.inputs import ClipSpec
from avt_triplets.model_inputs import (
    AudioInputs,
    FrameInputs,
    audio_inputs,
    audio_preprocessor_of,
    caption_batch,
    embed_audio_inputs,
    frame_inputs,
    image_preprocessor_of,
)
from avt_triplets.options import GenerationOptions
from avt_triplets.scorers import AudioTextScorer
from avt_triplets.stages.caption_batches import CaptionBatches
from avt_triplets.stages.reader import Chunk, chunk_seed
from avt_triplets.windowed_scorer import l2_normalise

logger = logging.getLogger(__name__)

# Where the time of a shard goes (its phases: not the pipeline's stages), in the stats files and the summary.
# ``decode`` runs in the decode processes, in parallel; ``wait`` is the models idle for lack of decoded clips.
PHASES = ("decode", "wait", "caption", "score", "write")


class PhaseClock:
    """Seconds per phase, added up over ``with clock.timed(phase):`` blocks."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    @contextmanager
    def timed(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start


def failure_record(item: DecodedItem, reason: str, detail: str) -> dict[str, str]:
    """A row of the failures table for ``item``'s clip; its file is named as the dataset names it (relative to the
    input root), so no published failure file holds the machine's folders."""
    clip = item.job.clip
    if clip.source and clip.source != clip.video_path:
        detail = detail.replace(clip.source, clip.video_path)
    logger.debug("clip %s failed: %s: %s", clip.clip_id, reason, detail)
    return {"clip_id": clip.clip_id, "video_path": clip.video_path, "reason": reason, "detail": detail}


@dataclass
class CaptionedChunk:
    """A chunk after the captioner: its decoded clips (in order) and, for each decodable one, a caption or
    :class:`Failed` per frame (None for a clip that did not decode)."""

    chunk: Chunk
    items: list[DecodedItem]
    captions: list[list[str | Failed] | None]
    seconds: dict[str, float]
    captioned_frames: int
    empty_captions: int = 0  # distinct frames captioned as "" (or without a letter or digit)
    # what further roles made of the chunk: per caption kind (``audio``, ...; ``schema.CAPTION_KIND_RECORDS``),
    # for each clip its candidates (a caption or :class:`Failed` each; None for a clip that did not decode)
    extra: dict[str, list[list[str | Failed] | None]] = field(default_factory=dict)
    # ``--visual-scorer``: per clip, the frame whose caption is its visual caption (None: CLAP's choice, as without)
    visual_choice: list[int | None] | None = None

    def without_frames(self) -> CaptionedChunk:
        """The same chunk without the decoded pixels or the captioner's inputs, which nothing after the
        captioner needs (less to move to a scorer elsewhere)."""
        return replace(self, items=[_without_frames(item) for item in self.items])


def _without_frames(item: DecodedItem) -> DecodedItem:
    inputs = item.inputs
    if inputs is not None:
        frames = replace(inputs.frames, unique=None, extra={})
        inputs = replace(inputs, frames=frames)
    return replace(item, frames=[], inputs=inputs)


@dataclass
class ChunkResult:
    """What a chunk became: triplet rows and failure records, each in the chunk's clip order."""

    chunk: Chunk
    rows: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    captioned_frames: int = 0
    scored_texts: int = 0
    empty_captions: int = 0

    @property
    def clips(self) -> int:
        return len(self.rows) + len(self.failures)


class CaptionStep:
    """Captions every distinct frame of a chunk's decodable clips, in batches of ``batch_size`` frames.

    Items may come as a stream (the decode workers' output): a batch runs as soon as the next one is complete,
    so the captioner starts on a chunk before the chunk is decoded to its end, and its boundaries are the ones
    the whole chunk would give (:mod:`avt_triplets.stages.caption_batches`). Frames arrive as the models take
    them (:mod:`avt_triplets.model_inputs`): exact duplicates within a clip once, as ``pixel_values`` when the
    captioner has an image preprocessor (this process then only copies them to the device), else as RGB arrays
    captioned through ``caption``.
    """

    def __init__(self, captioner: Captioner, batch_size: int, seed: int = 0):
        self.captioner = captioner
        self.batcher = BackoffBatcher(self._caption, batch_size, "captioner")
        self.seed = seed
        self.image_preprocessor = image_preprocessor_of(captioner)  # for items decoded without inputs
        self._stacker: ThreadPoolExecutor | None = None

    def __call__(self, chunk: Chunk, items: Iterable[DecodedItem]) -> CaptionedChunk:
        from accelerate.utils import set_seed

        self.batcher.reset()
        set_seed(chunk_seed(self.seed, chunk.shard, chunk.start))  # sampling captioners repeat anywhere
        if self._stacker is None:
            self._stacker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="avt-stack-frames")
        pin = pins_memory(self.captioner.device)
        run = CaptionBatches(self.batcher, self.frame_inputs, self._stacker, pin, self.captioner.stack)
        ready = getattr(items, "ready", None)  # whether the next clip has arrived (a stream may say)
        for item in items:
            run.add(item)
            if ready is not None and not ready():
                run.flush()
        run.finish()
        captions: list[list[Any] | None] = [
            None if frames is None else [run.captions[(i, int(row))] for row in frames.rows]
            for i, frames in enumerate(run.frames)
        ]
        seconds = {"decode": sum(item.seconds for item in run.items), "caption": run.model_seconds}
        empty = sum(1 for c in run.captions.values() if isinstance(c, str) and selection.is_empty_caption(c))
        return CaptionedChunk(chunk, run.items, captions, seconds, run.captioned, empty)

    def frame_inputs(self, item: DecodedItem) -> FrameInputs | None:
        """The item's frames as the captioner takes them (made here if its decoder did not); None if it failed."""
        if item.failure is not None:
            return None
        if item.inputs is None:
            return frame_inputs(item.frames, self.image_preprocessor)
        return item.inputs.frames

    def _caption(self, batch: Any) -> list[str]:
        """A batch of :class:`CaptionBatches`: a host batch of the captioner's layout, or a list of RGB frames. Several
        frames all captioned as empty is a broken model (NaN weights, only end-of-sequence tokens), not data: the
        run stops instead of recording every clip as failed."""
        captions = caption_batch(self.captioner, batch)
        if len(captions) > 1 and all(isinstance(c, str) and selection.is_empty_caption(c) for c in captions):
            raise ModelFailure(
                f"the captioner gave all {len(captions)} frames of a batch an empty caption ({captions[0]!r}); its "
                "weights may be broken (NaN) or it emits only end-of-sequence tokens",
                0,
            )
        return captions


class ScoreStep:
    """Scores every caption of a captioned chunk against its clip's audio, keeps the best, makes the rows.

    Clips are scored in runs of ``batch_size`` decodable clips; within a chunk each distinct caption is
    embedded once (greedy captions repeat a lot). Audio arrives prepared by the decode workers when the scorer
    has an audio preprocessor (:mod:`avt_triplets.model_inputs`).
    """

    def __init__(self, scorer: AudioTextScorer, batch_size: int):
        self.scorer = scorer
        self.batch_size = batch_size
        self.audio_preprocessor = audio_preprocessor_of(scorer)  # for items decoded without inputs
        self.audio_batcher = BackoffBatcher(self._embed_audio, batch_size, "scorer (audio)")
        self.text_batcher = BackoffBatcher(
            lambda texts: list(np.asarray(scorer.embed_text(texts))), batch_size, "scorer (text)"
        )

    def audio_inputs(self, item: DecodedItem) -> AudioInputs:
        """The item's audio as the scorer takes it (prepared here if its decoder did not)."""
        if item.inputs is None:
            return audio_inputs(item.scorer_audio, self.audio_preprocessor)
        return item.inputs.audio

    def _embed_audio(self, audio: list[AudioInputs]) -> list[np.ndarray]:
        return list(embed_audio_inputs(self.scorer, audio))

    def __call__(self, captioned: CaptionedChunk) -> ChunkResult:
        self.audio_batcher.reset()
        self.text_batcher.reset()
        started = time.perf_counter()
        outcomes: list[dict | None] = [None] * len(captioned.items)
        decodable = []
        for i, item in enumerate(captioned.items):
            if item.failure is not None:
                outcomes[i] = {"failure": failure_record(item, *item.failure)}
            else:
                decodable.append(i)
        cache: dict[str, np.ndarray] = {}  # this chunk's caption embeddings
        scored_texts = 0
        for start in range(0, len(decodable), self.batch_size):
            group = decodable[start : start + self.batch_size]
            scored_texts += self._score_group(captioned, group, cache, outcomes)
        result = ChunkResult(
            captioned.chunk,
            captioned_frames=captioned.captioned_frames,
            scored_texts=scored_texts,
            empty_captions=captioned.empty_captions,
        )
        for outcome in outcomes:
            (result.failures if "failure" in outcome else result.rows).append(
                outcome.get("failure") or outcome
            )
        result.seconds = {**captioned.seconds, "score": time.perf_counter() - started}
        return result

    def _score_group(
        self, captioned: CaptionedChunk, group: list[int], cache: dict[str, np.ndarray], outcomes: list
    ) -> int:
        """Score the clips at positions ``group``; fills their ``outcomes``; returns how many texts it embedded."""
        items, captions = captioned.items, captioned.captions
        usable = []
        for i in group:
            candidates = [*captions[i], *(c for kind in captioned.extra.values() for c in kind[i])]
            failed = next((c for c in candidates if isinstance(c, Failed)), None)
            if failed is not None:
                outcomes[i] = {"failure": failure_record(items[i], "caption_failed", failed.error)}
            else:
                usable.append(i)
        if not usable:
            return 0
        audio = call_batched(
            self.audio_batcher,
            [self.audio_inputs(items[i]) for i in usable],
            lambda j: f"audio of clip {items[usable[j]].job.clip.clip_id}",
        )
        # frame captions first, then each further kind's: a run without further roles embeds what it always did
        every = [c for i in usable for c in captions[i]]
        every += [c for kind in captioned.extra.values() for i in usable for c in kind[i]]
        texts = [t for t in dict.fromkeys(every) if t not in cache]
        embedded = dict(zip(texts, call_batched(self.text_batcher, texts, lambda j: f"caption {texts[j]!r}")))
        cache.update({t: e for t, e in embedded.items() if not isinstance(e, Failed)})
        for i, audio_embedding in zip(usable, audio):
            row = _best_caption_row(items[i], captions[i], audio_embedding, cache, embedded)
            if captioned.visual_choice is not None and "failure" not in row:
                row = _with_visual_choice(row, captions[i], captioned.visual_choice[i], cache)
            for kind, candidates in captioned.extra.items():
                if "failure" not in row:
                    row = _with_kind(row, kind, items[i], candidates[i], audio_embedding, cache, embedded)
            outcomes[i] = row
        return len(texts)


@dataclass
class _Choice:
    """Candidates scored against the clip's audio: their scores, the chosen one and its text embedding."""

    scores: np.ndarray
    best: int
    embedding: np.ndarray


def _choose(
    item: DecodedItem,
    captions: list[str],
    audio_embedding: np.ndarray,
    cache: dict[str, np.ndarray],
    embedded: dict[str, np.ndarray | Failed],
    what: str,
) -> _Choice | dict[str, Any]:
    """Score ``captions`` against the audio and choose the best non-empty one, or ``{"failure": record}``."""
    text_results = [cache.get(c, embedded.get(c)) for c in captions]
    text_failed = next((r for r in text_results if isinstance(r, Failed)), None)
    if text_failed is not None:
        return {"failure": failure_record(item, "score_failed", f"text: {text_failed.error}")}
    text_embeddings = l2_normalise(np.stack(text_results))
    # numpy's own reduction (fixed pairwise order), not a BLAS product whose summation order follows its thread
    # count: the same bits in a Ray actor with one thread as in a process with many.
    scores = np.sum(text_embeddings * l2_normalise(audio_embedding), axis=-1, dtype=np.float32)
    if all(selection.is_empty_caption(c) for c in captions):
        return {"failure": failure_record(item, "caption_failed", f"every {what} is empty")}
    try:  # an empty caption describes nothing: never the chosen one
        best = selection.best_caption(
            [np.nan if selection.is_empty_caption(c) else s for c, s in zip(captions, scores.tolist())]
        )
    except ValueError as error:  # every score NaN
        return {"failure": failure_record(item, "score_failed", str(error))}
    return _Choice(scores, best, text_embeddings[best])


def _best_caption_row(
    item: DecodedItem,
    captions: list[str],
    audio_embedding: np.ndarray | Failed,
    cache: dict[str, np.ndarray],
    embedded: dict[str, np.ndarray | Failed],
) -> dict[str, Any]:
    """The row of one scored clip, or ``{"failure": record}`` when its audio, a caption or every score failed."""
    if isinstance(audio_embedding, Failed):
        return {"failure": failure_record(item, "score_failed", f"audio: {audio_embedding.error}")}
    choice = _choose(item, captions, audio_embedding, cache, embedded, "frame's caption")
    if not isinstance(choice, _Choice):
        return choice
    return triplet_row(item, captions, choice.scores, choice.best, choice.embedding)


def _with_visual_choice(
    row: dict[str, Any], captions: list[str], frame: int | None, cache: dict[str, np.ndarray]
) -> dict[str, Any]:
    """``row`` whose visual caption is frame ``frame``'s (the visual scorer's choice), with that caption's CLAP text
    embedding, normalised as ``text_embedding`` is; ``frame`` None keeps CLAP's choice."""
    if frame is None:
        return row
    embedding = l2_normalise(np.stack([cache[captions[frame]]]))[0]
    return {
        **row,
        "visual_caption": captions[frame],
        "visual_text_embedding": embedding.astype(np.float32).tolist(),
    }


def _with_kind(
    row: dict[str, Any],
    kind: str,
    item: DecodedItem,
    captions: list[str],
    audio_embedding: np.ndarray,
    cache: dict[str, np.ndarray],
    embedded: dict[str, np.ndarray | Failed],
) -> dict[str, Any]:
    """``row`` with the columns of caption kind ``kind`` (its candidates scored against the clip's audio, the best
    non-empty one chosen, as the frame captions are); the kind's schema group says which columns it keeps."""
    choice = _choose(item, captions, audio_embedding, cache, embedded, f"{kind} caption")
    if not isinstance(choice, _Choice):
        return choice
    made = {
        f"{kind}_captions": list(captions),
        f"{kind}_caption_scores": choice.scores.astype(np.float32).tolist(),
        f"{kind}_caption": captions[choice.best],
        f"{kind}_caption_score": float(choice.scores[choice.best]),
        f"{kind}_text_embedding": choice.embedding.astype(np.float32).tolist(),
    }
    columns = schema.modality_caption_features([kind])
    return {**row, **{name: value for name, value in made.items() if name in columns}}


def clip_row(item: DecodedItem) -> dict[str, Any]:
    """What every row holds whether captioned or not: the clip, its media (already encoded by the decode
    workers) and its labels."""
    spec = item.job.clip
    return {
        "clip_id": spec.clip_id,
        "video_path": spec.video_path,
        "start_s": item.start_s,
        "end_s": item.end_s,
        "original_start_s": spec.start_in_video,
        "audio": item.audio_encoded,
        "frames": [{"bytes": data, "path": None} for data in item.frames_jpeg],
        "frame_times_s": item.frame_times_s,
        "labels": list(spec.labels),
        **({schema.SPLIT_COLUMN: spec.split} if spec.split is not None else {}),
        "sample_key": selection.sample_key(spec.clip_id),
    }


def triplet_row(
    item: DecodedItem, captions: list[str], scores: np.ndarray, best: int, text_embedding: np.ndarray
) -> dict[str, Any]:
    """One triplet row (``schema.triplet_features``): the clip's row plus its captions, scores and best caption.
    The frame captions are also the clip's visual captions (``schema.VISUAL_CAPTION_COLUMNS``, row layout 3; an
    output of an older layout drops them when the row is encoded), chosen the same way: no model runs for them."""
    embedding = text_embedding.astype(np.float32).tolist()
    return {
        **clip_row(item),
        "captions": list(captions),
        "caption_scores": scores.astype(np.float32).tolist(),
        "caption": captions[best],
        "caption_index": best,
        "clap_score": float(scores[best]),
        "text_embedding": embedding,
        "visual_captions": list(captions),
        "visual_caption": captions[best],
        "visual_text_embedding": embedding,
    }


def row_features(
    captioned: bool = True,
    row_layout: int = schema.ROW_LAYOUT,
    clips: Iterable[ClipSpec] = (),
    caption_kinds: Iterable[str] = (),
):
    """The features the writer encodes rows with: triplets, or labelled clips (``--captioner none``), in the row
    layout of the output they go to (:func:`avt_triplets.shards.recorded_row_layout`); with a ``split`` column when
    ``clips`` carry their split (``--split all``); with the columns of the further caption kinds its models make
    (:func:`avt_triplets.shards.recorded_caption_kinds`)."""
    with_split = any(clip.split is not None for clip in clips)
    return schema.triplet_features(
        with_captions=captioned, with_split=with_split, row_layout=row_layout, caption_kinds=caption_kinds
    )


class ChunkWorker:
    """Every role's step in one process: what the ``local`` and ``accelerate`` distributors run per chunk. The
    captioner comes first (it takes the stream of decoded clips), the scorer last; ``middle`` are the steps of
    the roles between them (:data:`avt_triplets.model_host.ROLES`: an audio captioner), each taking and
    returning the :class:`CaptionedChunk`; ``after`` the steps of the roles after the scorer (a caption merger),
    each taking and returning the :class:`ChunkResult`."""

    captioned = True

    def __init__(
        self,
        captioner: Captioner,
        scorer: AudioTextScorer,
        options: GenerationOptions,
        middle: Sequence[Callable[[Chunk, CaptionedChunk], CaptionedChunk]] = (),
        after: Sequence[Callable[[Chunk, ChunkResult], ChunkResult]] = (),
    ):
        self.caption = CaptionStep(captioner, options.caption_batch_size, options.seed)
        self.middle, self.after = list(middle), list(after)
        self.score = ScoreStep(scorer, options.score_batch_size)

    def __call__(self, chunk: Chunk, items: Sequence[DecodedItem]) -> ChunkResult:
        captioned = self.caption(chunk, items)
        for step in self.middle:
            captioned = step(chunk, captioned)
        result = self.score(captioned)
        for step in self.after:
            result = step(chunk, result)
        return result


class PackStep:
    """The worker stage without models (``--captioner none``): decoded clips -> labelled rows or failures."""

    captioned = False

    def __call__(self, chunk: Chunk, items: Iterable[DecodedItem]) -> ChunkResult:
        items = list(items)  # may be a stream of arriving clips
        result = ChunkResult(chunk, seconds={"decode": sum(item.seconds for item in items)})
        for item in items:
            if item.failure is not None:
                result.failures.append(failure_record(item, *item.failure))
            else:
                result.rows.append(clip_row(item))
        return result


__all__ = [
    "PHASES",
    "CaptionStep",
    "CaptionedChunk",
    "ChunkResult",
    "ChunkWorker",
    "PackStep",
    "ScoreStep",
    "PhaseClock",
    "clip_row",
    "failure_record",
    "row_features",
    "triplet_row",
]
