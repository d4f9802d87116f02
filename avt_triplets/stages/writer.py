"""The writer stage: a shard's files (data, failures, stats last), the output folder, and the dataset card.

Crash safety comes from the order of writes (:mod:`avt_triplets.shards`): a shard's rows and failures appear
whole first, its stats file last, and a shard counts as done only once that exists. :func:`write_shard`
takes a shard's chunk results as they come (from the worker in this process, or read back from the part
files other machines wrote), so every distributor commits shards with the same code and the same bytes.
"""

from __future__ import annotations

import datetime as _dt
import logging
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avt_core import storage
from avt_core.atomic import atomic_write_json
from avt_triplets import dataset_card, layout, schema, shards
from avt_triplets.cards import CardLicense
from avt_triplets.stages.reader import Chunk, ShardPlan
from avt_triplets.stages.worker import PHASES, ChunkResult, PhaseClock, row_features

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterIdentity:
    """Who wrote a shard, recorded in its stats: the distributor, and the process's rank among ``world_size``."""

    distributor: str = "local"
    rank: int = 0
    world_size: int = 1


def _features(root: Path, captioned: bool, clips) -> Any:
    """The row features of ``root``'s shards: its row layout and caption kinds, as its manifest records them."""
    kinds = shards.recorded_caption_kinds(root) if captioned else ()
    return row_features(captioned, shards.recorded_row_layout(root), clips, kinds)


def prepare_output(root: Path, owns: Callable[[int], bool], is_main: bool, overwrite: bool) -> None:
    """Create ``root``; with ``overwrite``, delete the shards this process owns (and, on the main process,
    the card and subsets). No process ever deletes another's fresh work, and the manifest stays until the new
    one replaces it, so the folder always reads as an avt output."""
    storage.makedirs(root)
    if not overwrite:
        return
    for index in shards.existing_shard_indices(root):
        if owns(index):
            shards.remove_shard(root, index)
    if is_main:
        for name in (layout.CARD_FILE, layout.SUBSETS_FILE):
            storage.unlink(root / name)


def _carry_over(writer: shards.ShardWriter, root: Path, plan: ShardPlan) -> None:
    """A ``--retry-failed`` plan keeps the shard's earlier rows and the failures it does not retry."""
    retried = {c.clip_id for c in plan.clips}
    writer.copy_rows(layout.data_path(root, plan.index), skip_clip_ids=retried)
    for row in shards.read_failures(root, plan.index):
        if row["clip_id"] not in retried:
            writer.add_failure(row["clip_id"], row["video_path"], row["reason"], row["detail"])


def shard_stats(
    plan: ShardPlan,
    writer: shards.ShardWriter,
    counts: Counter[str],
    seconds: Counter[str],
    started: _dt.datetime,
    identity: WriterIdentity,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """The stats file of a shard; a retry adds its time and model calls to the shard's earlier ones."""
    previous = previous or {}
    for phase, value in previous.get("seconds", {}).items():
        seconds[phase] += float(value)
    reasons = Counter(f["reason"] for f in writer.failures)
    return {
        "shard": plan.index,
        "num_clips": writer.rows + len(writer.failures),
        "num_triplets": writer.rows,
        "num_failures": len(writer.failures),
        "failures_by_reason": {r: reasons[r] for r in schema.FAILURE_REASONS if reasons.get(r)},
        "seconds": {phase: round(seconds.get(phase, 0.0), 4) for phase in PHASES},
        "captioned_frames": counts["captioned_frames"] + previous.get("captioned_frames", 0),
        "scored_texts": counts["scored_texts"] + previous.get("scored_texts", 0),
        "empty_captions": counts["empty_captions"] + previous.get("empty_captions", 0),
        "retried_clips": len(plan.clips) if plan.retry else 0,
        "distributor": identity.distributor,
        "rank": identity.rank,
        "world_size": identity.world_size,
        "host": socket.gethostname(),
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_shard(
    root: Path,
    plan: ShardPlan,
    results: Iterable[ChunkResult],
    identity: WriterIdentity,
    clock: PhaseClock | None = None,
    captioned: bool = True,
) -> dict[str, Any]:
    """Write shard ``plan.index`` from its chunk results (in chunk order) and commit it; returns its stats.

    ``results`` may be a generator that runs the models: rows are streamed to disk chunk by chunk. Unless
    every clip of the plan arrived, nothing is committed (a shard is never marked done with clips missing);
    on any error the shard's temporaries are removed and the error propagates. ``captioned`` False writes
    labelled clips (``--captioner none``: no caption columns).
    """
    clock = clock or PhaseClock()
    started = _dt.datetime.now(_dt.UTC)
    shards.remove_temporaries(root, plan.index)
    writer = shards.ShardWriter(root, plan.index, _features(root, captioned, plan.clips))
    previous = shards.read_stats(root, plan.index) if plan.retry else None
    counts: Counter[str] = Counter()
    try:
        if plan.retry:
            with clock.timed("write"):
                _carry_over(writer, root, plan)
        clips = 0
        for result in results:
            with clock.timed("write"):
                for row in result.rows:
                    writer.write_row(row)
            for failure in result.failures:
                writer.add_failure(**failure)
            clips += result.clips
            counts.update(
                captioned_frames=result.captioned_frames,
                scored_texts=result.scored_texts,
                empty_captions=result.empty_captions,
            )
            clock.seconds.update(result.seconds)
        if clips != len(plan.clips):
            raise RuntimeError(f"decoding stopped after {clips} of {len(plan.clips)} clips")
        stats = shard_stats(plan, writer, counts, clock.seconds, started, identity, previous)
        with clock.timed("write"):
            writer.commit(stats)
        return stats
    except BaseException:
        writer.abort()
        raise


# ----------------------------------------------------------------------------------------------
# Chunk parts: finished chunks of a shard not yet committed (distributors whose chunks finish on other machines)


def _part_paths(root: Path, chunk: Chunk) -> tuple[Path, Path]:
    return layout.part_paths(root, chunk.shard, chunk.key)


def write_chunk_part(root: Path, result: ChunkResult, captioned: bool = True) -> None:
    """Keep a finished chunk for its shard's commit: rows first, then a record (failures, counts, times) whose
    existence marks the chunk finished. Writing a chunk twice (a retried task) writes the same files again."""
    rows_path, record_path = _part_paths(root, result.chunk)
    shards.write_rows(rows_path, result.rows, _features(root, captioned, result.chunk.clips))
    record = {
        "chunk": result.chunk.key,
        "clips": result.clips,
        "rows": len(result.rows),
        "failures": result.failures,
        "seconds": result.seconds,
        "captioned_frames": result.captioned_frames,
        "scored_texts": result.scored_texts,
        "empty_captions": result.empty_captions,
    }
    atomic_write_json(record_path, record)


def finished_chunk_keys(root: Path, shard: int) -> set[str]:
    """Keys of the chunks of ``shard`` whose part is complete (its record exists); one listing."""
    return layout.finished_part_keys(storage.names(layout.parts_dir(root, shard)))


def read_chunk_part(root: Path, chunk: Chunk) -> ChunkResult:
    """A finished chunk as :func:`write_chunk_part` stored it."""
    rows_path, record_path = _part_paths(root, chunk)
    record = shards.read_json(record_path)
    if record is None or record.get("chunk") != chunk.key:
        raise FileNotFoundError(f"no finished part for chunk {chunk.key} in {record_path.parent}")
    rows = shards.read_rows(rows_path) if record["rows"] else []
    if len(rows) != record["rows"]:
        raise ValueError(f"part {rows_path} holds {len(rows)} rows, its record says {record['rows']}")
    return ChunkResult(
        chunk,
        rows=rows,
        failures=record["failures"],
        seconds=record["seconds"],
        captioned_frames=record["captioned_frames"],
        scored_texts=record["scored_texts"],
        empty_captions=record.get("empty_captions", 0),  # parts written before the count existed
    )


def commit_from_parts(
    root: Path, plan: ShardPlan, chunk_size: int, identity: WriterIdentity, captioned: bool = True
) -> dict[str, Any]:
    """Commit shard ``plan.index`` from its finished chunk parts, then delete them; returns its stats.

    Idempotent: a shard already done is left alone, and a commit cut short (a killed process, a retried task)
    leaves no done marker, so doing it again writes the same files.
    """
    chunks = plan.chunks(chunk_size)
    if plan.index in shards.done_shard_indices(root):
        have = finished_chunk_keys(root, plan.index)
        if not plan.retry or not all(chunk.key in have for chunk in chunks):  # committed already
            return shards.read_stats(root, plan.index) or {}
    results = (read_chunk_part(root, chunk) for chunk in chunks)
    stats = write_shard(root, plan, results, identity, captioned=captioned)
    shards.remove_parts(root, plan.index)
    return stats


class ShardWriterThread:
    """:func:`write_shard` in a background thread, so the process holding the models never waits for Parquet.

    The model loop hands each chunk's result over with :meth:`put` (blocking only when ``max_pending`` results
    are not written yet) and ends the shard with :meth:`close` (commit; returns its stats) or :meth:`abort`
    (nothing committed, temporaries removed). An error of the writer (a full disk) is raised by the next
    :meth:`put` or by :meth:`close`, in the caller's thread.
    """

    _END, _ABORT = object(), object()

    def __init__(
        self,
        root: Path,
        plan: ShardPlan,
        identity: WriterIdentity,
        max_pending: int = 2,
        captioned: bool = True,
    ):
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._error: BaseException | None = None
        self.stats: dict[str, Any] | None = None
        self._thread = threading.Thread(
            target=self._write,
            args=(root, plan, identity, captioned),
            name=f"avt-write-shard-{plan.index}",
            daemon=True,
        )
        self._thread.start()

    def _results(self) -> Iterator[ChunkResult]:
        while True:
            result = self._queue.get()
            if result is self._END:
                return
            if result is self._ABORT:
                raise _Aborted
            yield result

    def _write(self, root: Path, plan: ShardPlan, identity: WriterIdentity, captioned: bool) -> None:
        try:
            self.stats = write_shard(root, plan, self._results(), identity, captioned=captioned)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            self._error = error

    def _hand_over(self, message: Any) -> None:
        while True:
            if not self._thread.is_alive():
                self._raise()
                return
            try:
                self._queue.put(message, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise(self) -> None:
        if self._error is not None and not isinstance(self._error, _Aborted):
            raise self._error

    def put(self, result: ChunkResult) -> None:
        self._hand_over(result)

    def close(self) -> dict[str, Any]:
        """Commit the shard (every result was put); raises what the writer raised."""
        self._hand_over(self._END)
        self._thread.join()
        self._raise()
        return self.stats

    def abort(self) -> None:
        """Drop the shard: the writer removes its temporaries; its own error, if any, is not raised."""
        if self._thread.is_alive():
            self._hand_over(self._ABORT)
        self._thread.join()


class _Aborted(Exception):
    """The model loop gave the shard up; the writer removes its files."""


class ProvisionalCard:
    """Keeps a card in place while a run is under way.

    Without a card, ``load_dataset(root)`` infers the format from whatever files exist (``manifest.json``
    included). The provisional card lists the shards finished so far; it is rewritten after a shard
    finishes, but at most once per ``20 x`` the last write's duration, so at 1M clips (seconds per write) it
    costs well under 5 % of the run. The final card (:func:`write_final_card`, or ``avt filter``) lists them all.
    """

    def __init__(self, root: Path, license: CardLicense | None = None, cost_factor: float = 20.0):
        self.root = root
        self.license = license  # --license: set in the card, which keeps it through later updates
        self.cost_factor = cost_factor
        self.next_write = 0.0

    def refresh(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now < self.next_write:
            return
        try:
            dataset_card.write_dataset_card(self.root, license=self.license)
        except Exception:  # noqa: BLE001 - a card is a convenience; the shards are what matter
            logger.exception("writing the provisional dataset card failed")
        self.next_write = now + self.cost_factor * (time.perf_counter() - now)


def write_final_card(root: Path) -> tuple[Path | None, str | None]:
    """Write the card over every shard: ``(path, None)``, or ``(None, why)`` when writing failed.

    Called by a process that saw every shard done; if two finish together both write the same card
    (atomically), which is harmless.
    """
    try:
        return dataset_card.write_dataset_card(root), None
    except Exception as error:  # noqa: BLE001 - the shards are safe; say what failed, don't crash
        logger.exception("writing the dataset card failed")
        return None, f"{type(error).__name__}: {error}"


__all__ = [
    "ProvisionalCard",
    "ShardWriterThread",
    "WriterIdentity",
    "commit_from_parts",
    "finished_chunk_keys",
    "read_chunk_part",
    "write_chunk_part",
    "prepare_output",
    "shard_stats",
    "write_final_card",
    "write_shard",
]
