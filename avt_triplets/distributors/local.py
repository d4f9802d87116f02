"""The ``local`` distributor: this process holds the models; CPU worker processes decode ahead of them.

The models are the run's :class:`~avt_triplets.model_host.ModelHost` (loaded, checked and sized there); this
module only places the work. Decode workers (:mod:`avt_triplets.decoding`) decode every planned clip in order
with bounded prefetch, and preprocess it for the models (the host's decode settings); this process cuts the stream into the plans'
chunks and runs the worker stage on each chunk (:class:`~avt_triplets.stages.worker.ChunkWorker`) as its clips
arrive, while a writer thread (:class:`~avt_triplets.stages.writer.ShardWriterThread`) streams the results
into the shard's files. The thread holding the models therefore does little besides copying ready arrays to
the device and running the models. Process ``rank`` of ``world_size`` takes shards ``rank::world_size`` (the
``accelerate`` distributor sets those from the launcher), so processes share nothing but the output folder.

Without models (``--captioner none``) the host's worker stage is the model-free one
(:class:`~avt_triplets.stages.worker.PackStep`), run on the decoded clips the same way.

A shard that fails on its own (a bug, an unreadable file) is reported and stays unfinished; a model failure
or a full disk would fail every following shard too, so they stop the run (:class:`RunAborted`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from avt_core.launch import default_num_workers
from avt_triplets.decoding import DecodedItem, DecodeJob, ReceivedAhead, iter_decoded
from avt_triplets.distributors.base import RunReport, Work, run_stopping_cause, stopped
from avt_triplets.model_host import ModelHost
from avt_triplets.options import GenerationOptions
from avt_triplets.stages.reader import ShardPlan
from avt_triplets.stages.worker import ChunkResult, ChunkWorker, PackStep, PhaseClock
from avt_triplets.stages.writer import ShardWriterThread, WriterIdentity

logger = logging.getLogger(__name__)
T = TypeVar("T")


def default_prefetch(options: GenerationOptions, num_workers: int) -> int:
    """Decoded clips each worker may hold ready.

    The models take a whole chunk at once and then work on it for a while; workers that may run only a few
    clips ahead would stall meanwhile and make the models wait for the next chunk. So the queue covers one
    chunk plus one clip per worker; memory stays bounded by that, not by the input's size.
    """
    chunk = min(options.chunk_size, options.shard_size)
    return max(2, math.ceil((chunk + num_workers) / max(1, num_workers)))


class LocalDistributor:
    """This process (holding the models, or none: ``--captioner none``) and its decode workers; shards
    ``rank::world_size``."""

    name = "local"
    hosts_models_here, probes_in_replicas = True, False

    def __init__(self, rank: int = 0, world_size: int = 1, is_main: bool | None = None):
        self.rank, self.world_size = rank, world_size
        self.is_main = rank == 0 if is_main is None else is_main

    def shard_indices(self, num_shards: int) -> range:
        return range(self.rank, num_shards, self.world_size)

    def owns(self, index: int) -> bool:
        return index % self.world_size == self.rank

    def run_where(self, role: str, fn: Callable[[bool | None], T]) -> T:
        return fn(None)  # every role runs in this process

    def agree(self, value: Any) -> Any:
        return value  # one process decides alone

    def close(self) -> None:
        pass

    def progress_label(self) -> str:
        return "generate" if self.world_size == 1 else f"generate (rank {self.rank})"

    def run(self, work: Work, host: ModelHost) -> RunReport:
        from tqdm.auto import tqdm

        items = self._decode_stream(work, host)
        progress = tqdm(
            total=work.clips,
            unit="clip",
            desc=self.progress_label(),
            disable=not (work.options.progress and self.is_main),
            dynamic_ncols=True,
        )
        try:
            errors = self._run_plans(work, host.worker(work.options), items, _Progress(progress))
        finally:
            progress.close()
            items.close()
        return RunReport(processed=work.clips, shard_errors=errors)

    def _decode_stream(self, work: Work, host: ModelHost) -> Iterator[DecodedItem]:
        """Decoded clips of every planned shard, in order."""
        jobs: list[DecodeJob] = []
        for plan in work.plans:
            jobs.extend(DecodeJob(len(jobs), plan.index, clip) for clip in plan.clips)
        options = work.options
        num_workers = default_num_workers() if options.num_workers is None else options.num_workers
        logger.info(
            "%s %d/%d: %d shards to process (%d clips), %d decode workers",
            self.name,
            self.rank,
            self.world_size,
            len(work.plans),
            len(jobs),
            num_workers,
        )
        prefetch = options.prefetch or default_prefetch(options, num_workers)
        items = iter_decoded(jobs, host.decode_settings(options), num_workers=num_workers, prefetch=prefetch)
        return ReceivedAhead(items, ahead=num_workers + 2) if num_workers > 0 else items

    def _run_plans(
        self, work: Work, worker: ChunkWorker | PackStep, items: Iterator[DecodedItem], progress: _Progress
    ) -> list[str]:
        """Run every planned shard; returns the errors of shards that failed on their own."""
        identity = WriterIdentity(self.name, self.rank, self.world_size)
        errors: list[str] = []
        for plan in work.plans:
            shard_items = _ArrivingItems(items, len(plan.clips))
            try:
                _run_plan(work, plan, shard_items, worker, identity, progress)
            except Exception as error:  # noqa: BLE001 - one broken shard must not stop the others
                cause = run_stopping_cause(error, str(error))
                if cause is not None:
                    raise stopped(work, plan.index, cause) from error
                errors.append(_shard_error(plan, error, shard_items))
            else:
                if work.card is not None:
                    work.card.refresh()
        return errors


def _run_plan(
    work: Work,
    plan: ShardPlan,
    items: Iterator[DecodedItem],
    worker: ChunkWorker | PackStep,
    identity: WriterIdentity,
    progress: _Progress,
) -> None:
    """One shard: the models run here, chunk after chunk, while a writer thread writes the results."""
    writer = ShardWriterThread(work.root, plan, identity, captioned=worker.captioned)
    try:
        for result in _chunk_results(plan, items, worker, work.options.chunk_size, progress):
            writer.put(result)
        writer.close()  # inside: a Ctrl-C during the commit waits for the writer instead of leaving its temporary
    except BaseException:
        writer.abort()
        raise


class _Progress:
    """The progress bar, advanced by whole chunks, with the run's failed clips as a postfix."""

    def __init__(self, bar):
        self.bar, self.failed = bar, 0

    def add(self, result: ChunkResult) -> None:
        self.failed += len(result.failures)
        self.bar.update(result.clips)
        self.bar.set_postfix(failed=self.failed, refresh=False)


class _ArrivingItems(Iterator[DecodedItem]):
    """The next ``count`` decoded clips of ``items``, as they arrive (a shard's or a chunk's); the time spent
    waiting for them is the ``wait`` stage of ``clock``."""

    def __init__(self, items: Iterator[DecodedItem], count: int, clock: PhaseClock | None = None):
        self.items, self.left, self.clock, self.received = items, count, clock, 0

    def ready(self) -> bool:
        """Whether the next clip is received already (True when the stream can't tell: decoding in this
        process, the next clip costs its decoding whatever the caller does)."""
        ready = getattr(self.items, "ready", None)
        return self.left > 0 and (ready is None or ready())

    def __next__(self) -> DecodedItem:
        if self.left <= 0:
            raise StopIteration
        if self.clock is None:
            item = next(self.items, None)
        else:
            with self.clock.timed("wait"):
                item = next(self.items, None)
        if item is None:
            self.left = 0
            raise StopIteration
        self.left -= 1
        self.received += 1
        return item


def _chunk_results(
    plan: ShardPlan,
    items: Iterator[DecodedItem],
    worker: ChunkWorker | PackStep,
    chunk_size: int,
    progress: _Progress,
) -> Iterator[ChunkResult]:
    """The worker's result for each chunk of ``plan``, the chunk's clips taken from the decode stream as they
    arrive (the captioner starts before the chunk is decoded to its end).

    Stops early if the stream ends (the writer then refuses to commit the shard).
    """
    for chunk in plan.chunks(chunk_size):
        clock = PhaseClock()
        arriving = _ArrivingItems(items, len(chunk.clips), clock)
        result = worker(chunk, arriving)
        if arriving.received < len(chunk.clips):
            return
        result.seconds = {**result.seconds, "wait": clock.seconds["wait"]}
        progress.add(result)
        yield result


def _shard_error(plan: ShardPlan, error: BaseException, shard_items: Iterator[DecodedItem]) -> str:
    logger.error("shard %d failed; it stays unfinished (rerun to retry)", plan.index, exc_info=error)
    for _ in shard_items:  # skip its remaining clips, keep the stream aligned
        pass
    return f"shard {plan.index}: {type(error).__name__}: {error}"


__all__ = ["LocalDistributor", "default_prefetch"]
