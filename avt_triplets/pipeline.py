"""Sharded, resumable, batched triplet generation (LG-CAV-MAE §2.3; see docs/architecture.md).

``generate_triplets(input, output_dir, captioner, scorer)`` turns videos into one row per clip:
frames captioned by ``captioner``, every caption scored against the clip's audio by ``scorer``, the
best caption kept. The models are passed in already built, so the same code runs the tiny test
models and BLIP-2 + MS-CLAP on a GPU.

How it scales (the video2dataset pattern):

- The input list is cut into shards of ``shard_size`` clips. A shard is done once its stats file
  exists (written last, atomically; see :mod:`avt_triplets.shards`), so a rerun skips it and a killed
  run loses at most the shard in flight.
- Under ``accelerate launch`` process ``rank`` of ``world`` takes shards ``rank::world``. Processes
  share nothing but the filesystem and never wait for each other; whichever finishes last (sees every
  shard done) writes the dataset card.
- CPU workers decode ahead (:mod:`avt_triplets.decoding`) while this process captions frames in
  batches of ``caption_batch_size`` images and scores in batches of ``score_batch_size``.
- Bit-exact resume: float results of a batched model call depend on what else is in the batch, so every
  batch is formed from one shard's clips only, at boundaries fixed by the shard's content, and nothing
  crosses a shard boundary: a batch size halved by an out-of-memory error and the text-embedding cache both
  start afresh with every shard. A resumed run (which redoes whole shards) therefore writes the same bytes
  as an uninterrupted one, whatever the number of processes.
- Before any clip is decoded, both models run on a synthetic frame and clip
  (:func:`avt_triplets.preflight.check_models`). A model failure on a batch is retried with half the batch
  down to one item (:mod:`avt_triplets.batching`); an item that still runs out of memory, or that the model
  rejects, is recorded (``caption_failed``/``score_failed``); any other failure on a single item means the
  model is broken and stops the run (:class:`~avt_triplets.errors.RunAborted`), keeping the finished shards.
"""

from __future__ import annotations

import datetime as _dt
import errno
import itertools
import logging
import math
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from avt_triplets import schema, selection, shards
from avt_triplets.batching import BackoffBatcher, Failed, ModelFailure
from avt_triplets.captioners import Captioner
from avt_triplets.decoding import DecodedItem, DecodeJob, DecodeSettings, iter_decoded
from avt_triplets.errors import RunAborted
from avt_triplets.inputs import ClipSpec, InputSet
from avt_triplets.manifest import build_manifest, check_or_write_manifest
from avt_triplets.media import usable_hwaccel
from avt_triplets.options import GenerationOptions
from avt_triplets.preflight import check_models, check_run
from avt_triplets.scorers import AudioTextScorer
from avt_triplets.windowed_scorer import l2_normalise

logger = logging.getLogger(__name__)

STAGES = ("decode", "wait", "caption", "score", "write")
# Failure reasons that mean the clip decoded fine but a model gave up on it.
MODEL_FAILURE_REASONS = ("caption_failed", "score_failed")


def default_num_workers() -> int:
    """CPU cores per process on this node, minus one for the process feeding the GPU, at most 8."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(0, min(8, (os.cpu_count() or 1) // max(1, local_world) - 1))


def default_prefetch(options: GenerationOptions, num_workers: int) -> int:
    """Decoded clips each worker may hold ready.

    The models consume clips in bursts: nothing while a score batch of ``score_batch_size`` clips
    runs, then a caption batch's worth at once. Workers that may run only a few clips ahead stall
    during the burst and make the models wait after it, so the queue covers one full cycle
    (score batch + caption batch + one clip per worker). Memory stays bounded by that, not by N.
    """
    frames_per_clip = max(1, math.ceil(options.clip_seconds * options.fps))
    cycle = options.score_batch_size + math.ceil(options.caption_batch_size / frames_per_clip) + num_workers
    return max(2, math.ceil(cycle / max(1, num_workers)))


@dataclass
class GenerationSummary:
    """Totals over every finished shard of an output (not just this process's), plus this run's work."""

    output_dir: Path
    shards_total: int
    shards_done: int
    clips: int
    triplets: int
    failures_by_reason: dict[str, int]
    seconds: dict[str, float]
    processed_this_run: int = 0
    rank: int = 0
    world_size: int = 1
    wall_seconds: float = 0.0
    shard_errors: list[str] = field(default_factory=list)
    card_path: Path | None = None
    card_error: str | None = None
    skipped_inputs: tuple[str, ...] = ()  # files of a folder input that are not videos

    @property
    def complete(self) -> bool:
        return self.shards_done == self.shards_total and not self.shard_errors

    @property
    def failures(self) -> int:
        return sum(self.failures_by_reason.values())

    @property
    def empty_result(self) -> str | None:
        """Why a run that processed clips produced no triplet at all (None when it produced some)."""
        if self.triplets or not self.clips:
            return None
        model_failed = sum(self.failures_by_reason.get(r, 0) for r in MODEL_FAILURE_REASONS)
        reasons = ", ".join(f"{r} {n}" for r, n in self.failures_by_reason.items())
        if model_failed:
            return f"no triplets: the models failed on all {model_failed} decodable clip(s) ({reasons})"
        return f"no triplets: none of the {self.clips} clip(s) could be decoded ({reasons})"

    def format(self) -> str:
        lines = [
            f"output        {self.output_dir}",
            f"shards        {self.shards_done}/{self.shards_total} done",
            f"clips         {self.clips}",
            f"triplets      {self.triplets}",
            f"failures      {self.failures}",
        ]
        lines += [f"  {reason:<20}{count}" for reason, count in self.failures_by_reason.items()]
        if self.skipped_inputs:
            lines.append(
                f"skipped       {len(self.skipped_inputs)} files: not video files (--log-level INFO lists them)"
            )
        per_clip = max(1, self.clips)
        lines.append(
            "seconds per stage, summed over shards (decode runs in the workers, in parallel; wait = models idle for lack of decoded clips)"
        )
        lines += [
            f"  {stage:<8}{self.seconds.get(stage, 0.0):10.1f} s  {1000 * self.seconds.get(stage, 0.0) / per_clip:8.1f} ms/clip"
            for stage in STAGES
        ]
        if self.processed_this_run:
            rate = self.processed_this_run / max(self.wall_seconds, 1e-9)
            lines.append(
                f"this run      {self.processed_this_run} clips in {self.wall_seconds:.1f} s ({rate:.2f} clips/s)"
            )
        if self.shard_errors:
            lines.append(
                f"shard errors  {len(self.shard_errors)} (rerun to retry): "
                + "; ".join(self.shard_errors[:3])
            )
        if self.card_error is not None:
            lines.append(f"card          FAILED ({self.card_error}); rerun `avt filter DIR` to write it")
        elif self.card_path is not None:
            lines.append(f"card          {self.card_path}")
        elif self.shards_done < self.shards_total:
            lines.append("card          not yet: written by the process that finishes the last shard")
        return "\n".join(lines)


def summarize(output_dir: str | os.PathLike, shards_total: int | None = None) -> GenerationSummary:
    """Aggregate the stats files of every finished shard of ``output_dir``."""
    root = Path(output_dir)
    if shards_total is None:
        manifest = shards.read_json(root / schema.MANIFEST_FILE) or {}
        shards_total = int(
            manifest.get("num_shards") or len(list((root / schema.STATS_DIR).glob("*_stats.json")))
        )
    clips = triplets = done = 0
    reasons: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for index in range(shards_total):
        stats = shards.read_stats(root, index)
        if stats is None:
            continue
        done += 1
        clips += int(stats.get("num_clips", 0))
        triplets += int(stats.get("num_triplets", 0))
        reasons.update({k: int(v) for k, v in stats.get("failures_by_reason", {}).items()})
        seconds.update({k: float(v) for k, v in stats.get("seconds", {}).items()})
    ordered = {r: reasons[r] for r in schema.FAILURE_REASONS if reasons.get(r)}
    ordered.update({r: n for r, n in sorted(reasons.items()) if r not in ordered})
    return GenerationSummary(
        output_dir=root,
        shards_total=shards_total,
        shards_done=done,
        clips=clips,
        triplets=triplets,
        failures_by_reason=ordered,
        seconds=dict(seconds),
    )


# ----------------------------------------------------------------------------------------------
# Planning


@dataclass(frozen=True)
class ShardPlan:
    """Work on one shard in this run: all its clips, or (``retry``) only its failed ones."""

    index: int
    clips: tuple[ClipSpec, ...]
    retry: bool = False


def plan_shards(clips: Sequence[ClipSpec], shard_size: int) -> list[tuple[ClipSpec, ...]]:
    return [tuple(clips[i : i + shard_size]) for i in range(0, len(clips), shard_size)]


def _my_work(
    root: Path, all_shards: list[tuple[ClipSpec, ...]], rank: int, world: int, retry_failed: bool
) -> list[ShardPlan]:
    plans = []
    for index in range(rank, len(all_shards), world):
        clips = all_shards[index]
        if not shards.is_done(root, index):
            plans.append(ShardPlan(index, clips))
        elif retry_failed:
            failed = {row["clip_id"] for row in shards.read_failures(root, index)}
            if failed:
                plans.append(ShardPlan(index, tuple(c for c in clips if c.clip_id in failed), retry=True))
    return plans


# ----------------------------------------------------------------------------------------------
# One shard


class _StageClock:
    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    def timed(self, stage: str):
        clock = self

        class _Timer:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                clock.seconds[stage] += time.perf_counter() - self.start

        return _Timer()


@dataclass
class _Clip:
    item: DecodedItem
    captions: list[str | Failed | None]

    @property
    def captioned(self) -> bool:
        return all(c is not None for c in self.captions)


def _call(batcher: BackoffBatcher, items: list, describe) -> list:
    """``batcher(items)``; a :class:`ModelFailure` names the item it failed on (``describe(index)``)."""
    try:
        return batcher(items)
    except ModelFailure as error:
        raise ModelFailure(f"{error} ({describe(error.index)})", error.index) from error


class ShardProcessor:
    """Captions, scores and writes the clips of one shard as they arrive from the decoders.

    Every call of :meth:`run` starts from the same state (configured batch sizes, no cached text
    embeddings), so a shard's rows do not depend on the shards processed before it in this process.
    """

    def __init__(
        self, captioner: Captioner, scorer: AudioTextScorer, options: GenerationOptions, progress=None
    ):
        self.captioner = captioner
        self.scorer = scorer
        self.options = options
        self.progress = progress
        self.failed = 0
        self.caption_batcher = BackoffBatcher(captioner.caption, options.caption_batch_size, "captioner")
        self.audio_batcher = BackoffBatcher(
            lambda waves: list(np.asarray(scorer.embed_audio(waves))),
            options.score_batch_size,
            "scorer (audio)",
        )
        self.text_batcher = BackoffBatcher(
            lambda texts: list(np.asarray(scorer.embed_text(texts))),
            options.score_batch_size,
            "scorer (text)",
        )
        self.text_embeddings: dict[str, np.ndarray] = {}  # this shard's: greedy captions repeat a lot

    def start_shard(self) -> None:
        """Forget what an earlier shard left behind: a batch size halved by an OOM, cached embeddings."""
        for batcher in (self.caption_batcher, self.audio_batcher, self.text_batcher):
            batcher.reset()
        self.text_embeddings.clear()

    def run(
        self, items: Iterator[DecodedItem], writer: shards.ShardWriter, clock: _StageClock
    ) -> dict[str, int]:
        self.start_shard()
        counts: Counter[str] = Counter()
        pending: deque[_Clip] = deque()  # in order, waiting for their captions
        frames: list[tuple[_Clip, int]] = []  # frames not yet captioned
        ready: list[_Clip] = []  # captioned, waiting to be scored
        cbs, sbs = self.options.caption_batch_size, self.options.score_batch_size

        def caption(n: int) -> None:
            batch = frames[:n]
            del frames[:n]
            with clock.timed("caption"):
                results = _call(
                    self.caption_batcher,
                    [clip.item.frames[k] for clip, k in batch],
                    lambda i: f"frame {batch[i][1]} of clip {batch[i][0].item.job.clip.clip_id}",
                )
            counts["captioned_frames"] += len(batch)
            for (clip, k), result in zip(batch, results):
                clip.captions[k] = result if isinstance(result, Failed) else str(result).strip()
            while pending and pending[0].captioned:
                ready.append(pending.popleft())

        def score(n: int) -> None:
            group = ready[:n]
            del ready[:n]
            self._score_and_write(group, writer, clock, counts)

        while True:
            with clock.timed("wait"):
                item = next(items, None)
            if item is None:
                break
            counts["items"] += 1
            clock.seconds["decode"] += item.seconds
            if item.failure is not None:
                self._fail(writer, item, *item.failure, counts=counts)
                continue
            clip = _Clip(item, [None] * len(item.frames))
            pending.append(clip)
            frames.extend((clip, k) for k in range(len(item.frames)))
            while len(frames) >= cbs:
                caption(cbs)
            while len(ready) >= sbs:
                score(sbs)
        while frames:
            caption(min(cbs, len(frames)))
        while ready:
            score(min(sbs, len(ready)))
        return dict(counts)

    def _fail(
        self, writer: shards.ShardWriter, item: DecodedItem, reason: str, detail: str, counts: Counter
    ) -> None:
        clip = item.job.clip
        writer.add_failure(clip.clip_id, clip.video_path, reason, detail)
        logger.debug("clip %s failed: %s: %s", clip.clip_id, reason, detail)
        counts["failures"] += 1
        self.failed += 1
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix(failed=self.failed, refresh=False)

    def _score_and_write(
        self, group: list[_Clip], writer: shards.ShardWriter, clock: _StageClock, counts: Counter
    ) -> None:
        usable: list[_Clip] = []
        for clip in group:
            failed = next((c for c in clip.captions if isinstance(c, Failed)), None)
            if failed is not None:
                self._fail(writer, clip.item, "caption_failed", failed.error, counts)
            else:
                usable.append(clip)
        if not usable:
            return
        with clock.timed("score"):
            audio = _call(
                self.audio_batcher,
                [clip.item.scorer_audio for clip in usable],
                lambda i: f"audio of clip {usable[i].item.job.clip.clip_id}",
            )
            cache = self.text_embeddings
            texts = [t for t in dict.fromkeys(c for clip in usable for c in clip.captions) if t not in cache]
            embedded = dict(zip(texts, _call(self.text_batcher, texts, lambda i: f"caption {texts[i]!r}")))
        cache.update({t: e for t, e in embedded.items() if not isinstance(e, Failed)})
        text_results = {c: cache.get(c, embedded.get(c)) for clip in usable for c in clip.captions}
        counts["scored_texts"] += len(texts)
        for clip, audio_embedding in zip(usable, audio):
            if isinstance(audio_embedding, Failed):
                self._fail(writer, clip.item, "score_failed", f"audio: {audio_embedding.error}", counts)
                continue
            text_failed = next(
                (text_results[c] for c in clip.captions if isinstance(text_results[c], Failed)), None
            )
            if text_failed is not None:
                self._fail(writer, clip.item, "score_failed", f"text: {text_failed.error}", counts)
                continue
            text_embeddings = l2_normalise(np.stack([text_results[c] for c in clip.captions]))
            scores = text_embeddings @ l2_normalise(audio_embedding)
            try:
                best = selection.best_caption(scores.tolist())
            except ValueError as error:  # every score NaN
                self._fail(writer, clip.item, "score_failed", str(error), counts)
                continue
            with clock.timed("write"):
                writer.write_row(self._row(clip, scores, best, text_embeddings[best]))
            counts["triplets"] += 1
            if self.progress is not None:
                self.progress.update(1)

    @staticmethod
    def _row(clip: _Clip, scores: np.ndarray, best: int, text_embedding: np.ndarray) -> dict[str, Any]:
        item = clip.item
        spec = item.job.clip
        return {
            "clip_id": spec.clip_id,
            "video_path": spec.video_path,
            "start_s": item.start_s,
            "end_s": item.end_s,
            "audio": item.audio_encoded,
            "frames": [{"bytes": data, "path": None} for data in item.frames_jpeg],
            "frame_times_s": item.frame_times_s,
            "captions": list(clip.captions),
            "caption_scores": scores.astype(np.float32).tolist(),
            "caption": clip.captions[best],
            "caption_index": best,
            "clap_score": float(scores[best]),
            "text_embedding": text_embedding.astype(np.float32).tolist(),
            "labels": list(spec.labels),
            "sample_key": selection.sample_key(spec.clip_id),
        }


# ----------------------------------------------------------------------------------------------
# The run


def process_state(device: str | None = None):
    """accelerate's ``PartialState`` for this process, on CPU when no GPU is used.

    ``PartialState(cpu=True)`` is what makes a CPU-only ``accelerate launch --multi_gpu`` /
    ``torchrun`` start gloo instead of silently treating every process as rank 0 of 1.
    """
    import torch
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    cpu = (
        parse_flag_from_env("ACCELERATE_USE_CPU")
        or (device is not None and str(device).startswith("cpu"))
        or not torch.cuda.is_available()
    )
    return PartialState(cpu=cpu)


def _resolve_rank(options: GenerationOptions) -> tuple[int, int, bool]:
    """(rank, world size, is local main process) from the options or accelerate's launcher.

    Shards only need a rank and a world size, no process group; if accelerate sees one process
    while the launcher's environment says otherwise, the environment wins, so processes never
    all act as rank 0 and write the same shards.
    """
    if options.rank is not None and options.world_size is not None:
        return options.rank, options.world_size, options.rank == 0
    state = process_state()
    rank, world, local_main = state.process_index, state.num_processes, state.is_local_main_process
    env_world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world == 1 and env_world > 1:
        rank, world = int(os.environ.get("RANK", "0")), env_world
        local_main = int(os.environ.get("LOCAL_RANK", "0")) == 0
        logger.warning(
            "accelerate reports one process but WORLD_SIZE=%d: using RANK=%d from the launcher", world, rank
        )
    return rank, world, local_main


def _prepare_output(root: Path, rank: int, world: int, overwrite: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if not overwrite:
        return
    # Each process clears only the shards it owns, so no process ever deletes another's fresh work. The
    # manifest stays until the new one replaces it, so the folder always reads as an avt output.
    for index in shards.existing_shard_indices(root):
        if index % world == rank:
            shards.remove_shard(root, index)
    if rank == 0:
        for name in (schema.CARD_FILE, schema.SUBSETS_FILE):
            (root / name).unlink(missing_ok=True)


def _run_shard(
    processor: ShardProcessor,
    plan: ShardPlan,
    items: Iterator[DecodedItem],
    root: Path,
    options: GenerationOptions,
    rank: int,
    world: int,
) -> dict[str, Any]:
    from accelerate.utils import set_seed

    set_seed(options.seed + plan.index)  # per shard, so sampling captioners repeat across layouts
    started = _dt.datetime.now(_dt.UTC)
    clock = _StageClock()
    shards.remove_temporaries(root, plan.index)
    writer = shards.ShardWriter(root, plan.index)
    previous = shards.read_stats(root, plan.index) if plan.retry else None
    try:
        if plan.retry:
            retried = {c.clip_id for c in plan.clips}
            with clock.timed("write"):
                writer.copy_rows(schema.data_path(root, plan.index), skip_clip_ids=retried)
            for row in shards.read_failures(root, plan.index):
                if row["clip_id"] not in retried:
                    writer.add_failure(row["clip_id"], row["video_path"], row["reason"], row["detail"])
        counts = processor.run(items, writer, clock)
        if counts.get("items", 0) != len(plan.clips):  # never mark a shard done with clips missing
            raise RuntimeError(f"decoding stopped after {counts.get('items', 0)} of {len(plan.clips)} clips")
        reasons = Counter(f["reason"] for f in writer.failures)
        seconds = dict(clock.seconds)
        if previous:  # a retry adds its time to the shard's earlier time
            for stage, value in previous.get("seconds", {}).items():
                seconds[stage] = seconds.get(stage, 0.0) + float(value)
        stats = {
            "shard": plan.index,
            "num_clips": writer.rows + len(writer.failures),
            "num_triplets": writer.rows,
            "num_failures": len(writer.failures),
            "failures_by_reason": {r: reasons[r] for r in schema.FAILURE_REASONS if reasons.get(r)},
            "seconds": {stage: round(seconds.get(stage, 0.0), 4) for stage in STAGES},
            "captioned_frames": counts.get("captioned_frames", 0)
            + (previous or {}).get("captioned_frames", 0),
            "scored_texts": counts.get("scored_texts", 0) + (previous or {}).get("scored_texts", 0),
            "retried_clips": len(plan.clips) if plan.retry else 0,
            "rank": rank,
            "world_size": world,
            "host": socket.gethostname(),
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        with clock.timed("write"):
            writer.commit(stats)
        return stats
    except BaseException:
        writer.abort()
        raise


class ProvisionalCard:
    """Keeps a card in place while a run is under way.

    Without a card, ``load_dataset(root)`` infers the format from whatever files exist
    (``manifest.json`` included). The provisional card lists the shards finished so far; it is
    rewritten after a shard finishes, but at most once per ``20 x`` the last write's duration, so at
    1M clips (seconds per write) it costs well under 5 % of the run. The final card (written by the
    process that finishes the last shard, or by ``avt filter``) lists them all.
    """

    def __init__(self, root: Path, cost_factor: float = 20.0):
        self.root = root
        self.cost_factor = cost_factor
        self.next_write = 0.0

    def refresh(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now < self.next_write:
            return
        from avt_triplets import publish

        try:
            publish.write_dataset_card(self.root)
        except Exception:  # noqa: BLE001 - a card is a convenience; the shards are what matter
            logger.exception("writing the provisional dataset card failed")
        self.next_write = now + self.cost_factor * (time.perf_counter() - now)


def _is_disk_full(error: BaseException) -> bool:
    if not isinstance(error, OSError):
        return False
    return error.errno in (errno.ENOSPC, errno.EDQUOT) or "no space left" in str(error).lower()


def _stopped(root: Path, plan: ShardPlan, total: int, cause: str) -> RunAborted:
    """The error that stops a run in ``plan``'s shard: what happened, what is kept, how to go on."""
    done = summarize(root, total).shards_done
    return RunAborted(
        f"{cause}. {done} of {total} shards are finished in {root} and stay valid (shard {plan.index}, "
        "in progress, was dropped); fix the cause and rerun the same command to resume",
        resumable=True,
    )


def _decode_stream(
    plans: list[ShardPlan], options: GenerationOptions, scorer: AudioTextScorer, rank: int, world: int
) -> tuple[Iterator[DecodedItem], int]:
    """Decoded clips of every planned shard, in order, and their number."""
    jobs: list[DecodeJob] = []
    for plan in plans:
        jobs.extend(DecodeJob(len(jobs), plan.index, clip) for clip in plan.clips)
    settings = DecodeSettings(
        fps=options.fps,
        clip_seconds=options.clip_seconds,
        scorer_sampling_rate=int(scorer.sampling_rate),
        jpeg_quality=options.jpeg_quality,
        decoder_threads=options.decoder_threads,
        video_hwaccel=usable_hwaccel(options.video_hwaccel),
    )
    num_workers = default_num_workers() if options.num_workers is None else options.num_workers
    logger.info(
        "rank %d/%d: %d shards to process (%d clips), %d decode workers",
        rank,
        world,
        len(plans),
        len(jobs),
        num_workers,
    )
    prefetch = options.prefetch or default_prefetch(options, num_workers)
    return iter_decoded(jobs, settings, num_workers=num_workers, prefetch=prefetch), len(jobs)


def _run_plans(
    plans: list[ShardPlan],
    root: Path,
    processor: ShardProcessor,
    items: Iterator[DecodedItem],
    context: tuple[GenerationOptions, int, int, int],
    card: ProvisionalCard | None,
) -> list[str]:
    """Run every planned shard; returns the errors of shards that failed on their own (they stay unfinished).

    A broken model or a full disk would fail every following shard too: they stop the run instead.
    """
    options, rank, world, total = context
    errors: list[str] = []
    for plan in plans:
        shard_items = itertools.islice(items, len(plan.clips))
        try:
            _run_shard(processor, plan, shard_items, root, options, rank, world)
        except ModelFailure as error:
            raise _stopped(
                root, plan, total, f"stopped: a model failed on a single item ({error})"
            ) from error
        except OSError as error:
            if _is_disk_full(error):
                raise _stopped(
                    root, plan, total, f"stopped: no space left on the device ({error})"
                ) from error
            errors.append(_shard_error(plan, error, shard_items))
        except Exception as error:  # noqa: BLE001 - one broken shard must not stop the others
            errors.append(_shard_error(plan, error, shard_items))
        else:
            if card is not None:
                card.refresh()
    return errors


def _shard_error(plan: ShardPlan, error: BaseException, shard_items: Iterator[DecodedItem]) -> str:
    logger.error("shard %d failed; it stays unfinished (rerun to retry)", plan.index, exc_info=error)
    for _ in shard_items:  # skip its remaining clips, keep the stream aligned
        pass
    return f"shard {plan.index}: {type(error).__name__}: {error}"


def _write_final_card(root: Path, summary: GenerationSummary) -> None:
    """The last process to finish sees every shard done and writes the card; if two finish together both
    write the same card (atomically), which is harmless."""
    if summary.shards_done != summary.shards_total:
        return
    from avt_triplets import publish

    try:
        summary.card_path = publish.write_dataset_card(root)
    except Exception as error:  # noqa: BLE001 - the shards are safe; say what failed, don't crash
        logger.exception("writing the dataset card failed")
        summary.card_error = f"{type(error).__name__}: {error}"


def generate_triplets(
    inputs: str | os.PathLike | Sequence[ClipSpec] | InputSet,
    output_dir: str | os.PathLike,
    captioner: Captioner,
    scorer: AudioTextScorer,
    options: GenerationOptions | None = None,
    **overrides: Any,
) -> GenerationSummary:
    """Generate (or resume) the triplet dataset of ``inputs`` into ``output_dir``.

    ``inputs`` is a folder of videos, a CSV/JSONL list (see :mod:`avt_triplets.inputs`), an
    :class:`InputSet` already loaded, or a list of :class:`ClipSpec`. ``options`` (or keyword overrides of
    its fields) set everything else. Returns the totals over all finished shards; the summary is complete
    (and the card written) when this process finished the last shard. Raises
    :class:`~avt_triplets.errors.UsageError` for unusable inputs, output folders or options (before any
    work) and :class:`~avt_triplets.errors.RunAborted` when a model is broken or the disk is full.
    """
    from tqdm.auto import tqdm

    options = replace(options or GenerationOptions(), **overrides)
    wall_start = time.perf_counter()
    input_set = check_run(inputs, output_dir, options)
    root = Path(output_dir)
    all_shards = plan_shards(input_set.clips, options.shard_size)
    rank, world, is_main = _resolve_rank(options)
    _prepare_output(root, rank, world, options.overwrite)
    manifest = build_manifest(captioner, scorer, options, input_set, len(all_shards))
    check_or_write_manifest(root, manifest, options.overwrite)
    card = ProvisionalCard(root) if options.write_card and is_main else None
    if card is not None:
        card.refresh(force=True)

    plans = _my_work(root, all_shards, rank, world, options.retry_failed)
    if plans:
        check_models(captioner, scorer, options.clip_seconds)
    items, num_jobs = _decode_stream(plans, options, scorer, rank, world)
    progress = tqdm(
        total=num_jobs,
        unit="clip",
        desc="generate" if world == 1 else f"generate (rank {rank})",
        disable=not (options.progress and is_main),
        dynamic_ncols=True,
    )
    processor = ShardProcessor(captioner, scorer, options, progress)
    try:
        errors = _run_plans(plans, root, processor, items, (options, rank, world, len(all_shards)), card)
    finally:
        progress.close()
        items.close()

    summary = summarize(root, len(all_shards))
    summary.processed_this_run = num_jobs
    summary.rank, summary.world_size = rank, world
    summary.wall_seconds = time.perf_counter() - wall_start
    summary.shard_errors = errors
    summary.skipped_inputs = input_set.skipped
    if options.write_card:
        _write_final_card(root, summary)
    return summary


__all__ = [
    "GenerationOptions",
    "GenerationSummary",
    "ShardPlan",
    "ShardProcessor",
    "default_num_workers",
    "default_prefetch",
    "generate_triplets",
    "plan_shards",
    "process_state",
    "summarize",
]
