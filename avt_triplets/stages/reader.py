"""The reader stage: INPUT -> clip specs -> shards -> chunks, and what is left to do (the resume scan).

The input (a folder or a list, :mod:`avt_triplets.inputs`) becomes clip specs in a fixed order, cut into
shards of ``shard_size`` clips and each shard into chunks of ``chunk_size`` clips:

- a **shard** is the unit of completion: its rows live in one file and it is done once its stats file exists
  (:mod:`avt_triplets.shards`), so a rerun skips it;
- a **chunk** is the unit of model work: the worker forms its batches inside one chunk only, so a chunk's
  rows are the same whichever process, node or distributor computes them, and whatever ran before.

Positions cut both, never content or timing, so every process of a run (and every later run) gets the same
shards and chunks without talking to the others.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from avt_core import storage
from avt_triplets import layout, shards
from avt_triplets.inputs import ClipSpec
from avt_triplets.missing_videos import absent_files

logger = logging.getLogger(__name__)
MISSING_REASON = "unreadable_path"  # schema.FAILURE_REASONS: the file was not there


@dataclass(frozen=True)
class Chunk:
    """Consecutive clips of one shard's plan, starting at position ``start`` of the plan's clips."""

    shard: int
    start: int
    clips: tuple[ClipSpec, ...]

    @property
    def key(self) -> str:
        """A name for this chunk's files: shard, position and a digest of its clip ids, so the parts of a
        different plan (a ``--retry-failed`` run, another ``--chunk-size``) are never taken for this one."""
        digest = hashlib.sha256("\n".join(c.clip_id for c in self.clips).encode("utf-8")).hexdigest()[:12]
        return layout.chunk_key(self.shard, self.start, len(self.clips), digest)


def chunk_seed(run_seed: int, shard: int, start: int) -> int:
    """``run_seed + shard`` for a shard's first chunk, a different seed for each later chunk; < 2**32."""
    return (run_seed + shard + 1_000_003 * start) % 2**32


@dataclass(frozen=True)
class ShardPlan:
    """Work on one shard in this run: all its clips, or (``retry``) only its failed ones."""

    index: int
    clips: tuple[ClipSpec, ...]
    retry: bool = False

    def chunks(self, chunk_size: int) -> list[Chunk]:
        """The plan's clips in chunks of ``chunk_size`` (the last one may be shorter)."""
        return [
            Chunk(self.index, start, self.clips[start : start + chunk_size])
            for start in range(0, len(self.clips), chunk_size)
        ]


def plan_shards(clips: Sequence[ClipSpec], shard_size: int) -> list[tuple[ClipSpec, ...]]:
    """The input's clips cut into shards of ``shard_size`` (the last one may be shorter); a ``--split all`` input
    also starts a shard where its split changes, so every shard holds one split (the card lists them by split)."""
    shards: list[tuple[ClipSpec, ...]] = []
    for _, group in itertools.groupby(clips, key=lambda clip: clip.split):
        group = list(group)
        shards += [tuple(group[i : i + shard_size]) for i in range(0, len(group), shard_size)]
    return shards


def scan_done_shards(
    root: Path, shard_indices: Iterable[int], verify: bool = False
) -> tuple[set[int], shards.ShardCheck]:
    """The resume scan, reading only: the finished shards among ``shard_indices`` (one listing of the stats folder)
    and their files checked against their stats (``damaged`` names what is wrong with each damaged one)."""
    done = shards.done_shard_indices(root) & set(shard_indices)
    return done, shards.check_finished_shards(root, done, verify=verify)


def intact_done_shards(root: Path, shard_indices: Iterable[int], verify: bool = False) -> set[int]:
    """The finished shards among ``shard_indices`` whose files match their stats; each damaged one is said (a
    warning naming the file) and unmarked (its stats file deleted), so it is redone like an unfinished one."""
    done, check = scan_done_shards(root, shard_indices, verify)
    for index, problem in sorted(check.damaged.items()):
        logger.warning("finished shard %d is damaged: %s; redoing it", index, problem)
        storage.unlink(layout.stats_path(root, index))
    if check.unrecorded:
        logger.warning(
            "%d finished shard(s) have stats written by an older avt, without file sizes or checksums: checked by "
            "their Parquet footers only (a redone shard records them)",
            len(check.unrecorded),
        )
    return done - set(check.damaged)


def pending_work(
    root: Path,
    all_shards: Sequence[tuple[ClipSpec, ...]],
    shard_indices: Iterable[int],
    retry_failed: bool,
    verify: bool = False,
) -> list[ShardPlan]:
    """The shards among ``shard_indices`` that are not done, and the failed clips of done ones to run again:
    every failed clip with ``retry_failed``, else those recorded as missing (``unreadable_path``) whose file is
    there now (videos downloaded since, or a corrected ``--input-root``), so a rerun never keeps a stale failure.

    Done shards are found by listing the stats folder once; their files are checked against their stats (sizes,
    one look-up each; ``verify``: checksums, every byte read), and a damaged one is redone whole. A done shard's
    failures are read only when its stats count missing files.
    """
    shard_indices = list(shard_indices)
    done = intact_done_shards(root, shard_indices, verify)
    plans = plan_pending(root, all_shards, shard_indices, done, retry_failed)
    appeared = sum(len(plan.clips) for plan in plans if plan.retry) if not retry_failed else 0
    if appeared:
        logger.warning(
            "%d clip(s) recorded as missing in finished shards are there now: this run adds them", appeared
        )
    return plans


def plan_pending(
    root: Path,
    all_shards: Sequence[tuple[ClipSpec, ...]],
    shard_indices: Iterable[int],
    done: set[int],
    retry_failed: bool,
) -> list[ShardPlan]:
    """:func:`pending_work` once the intact finished shards ``done`` are known; reads, never writes (the dry run
    of ``avt generate`` calls it with :func:`scan_done_shards`' findings)."""
    plans = []
    for index in shard_indices:
        clips = all_shards[index]
        if index not in done:
            plans.append(ShardPlan(index, clips))
            continue
        again = _failed_clips(root, index, clips) if retry_failed else _appeared_clips(root, index, clips)
        if again:
            plans.append(ShardPlan(index, again, retry=True))
    return plans


def _failed_clips(root: Path, index: int, clips: tuple[ClipSpec, ...]) -> tuple[ClipSpec, ...]:
    failed = {row["clip_id"] for row in shards.read_failures(root, index)}
    return tuple(c for c in clips if c.clip_id in failed)


def _appeared_clips(root: Path, index: int, clips: tuple[ClipSpec, ...]) -> tuple[ClipSpec, ...]:
    """The clips of a done shard recorded as missing files whose file exists now (local files only)."""
    stats = shards.read_stats(root, index) or {}
    if not stats.get("failures_by_reason", {}).get(MISSING_REASON):
        return ()
    missing = {row["clip_id"] for row in shards.read_failures(root, index) if row["reason"] == MISSING_REASON}
    candidates = [c for c in clips if c.clip_id in missing and not storage.is_url(c.source)]
    absent = set(absent_files(c.source for c in candidates))
    return tuple(c for c in candidates if c.source not in absent)


__all__ = [
    "Chunk",
    "ShardPlan",
    "chunk_seed",
    "intact_done_shards",
    "pending_work",
    "plan_pending",
    "plan_shards",
    "scan_done_shards",
]
