"""Epoch orders that read Parquet in place: shuffled row groups, split into reader lanes, mixed in windows.

A full random permutation touches a different row group for nearly every sample, so reading in place would
read each row group once per sample in it. :class:`BlockShuffleSampler` gives an order that is still random
where it matters but reads every row group about once per epoch:

1. the epoch's draws (every row once, or weighted draws with replacement for balanced sampling) are grouped by
   row group ("block") and the blocks are put in a seeded random order;
2. that stream is cut into ``lanes`` contiguous segments of whole batches (equal up to one batch), one per
   reader (process x DataLoader worker), so each reader touches its own row groups only (a row group on a cut
   is shared by two readers);
3. each lane is cut into windows of ``window`` rows (a multiple of the batch size) and every window is
   randomly permuted: a batch mixes clips from all the row groups of its window, which come from random places
   of the dataset;
4. batch ``c`` of the global order is the next batch of lane ``c mod lanes``. With ``lanes = processes x
   workers``, accelerate hands process ``r`` the batches ``c = r (mod processes)`` and the DataLoader hands its
   worker ``w`` every ``workers``-th of those: exactly lane ``r + processes * w``.

Like ``avt_training.data.EpochShuffleSampler`` it yields ``(index, epoch)`` keys (plus the mixup partner, drawn
from the same window, when asked), so every sample's augmentation is seeded by ``(seed, epoch, index)``; the
order is a pure function of (seed, epoch, rows, lanes, window, batch size), so ``skip_first_batches`` replays a
resumed epoch exactly. The number of lanes only changes which process reads what, never correctness: the
sampler's state (saved with a checkpoint) carries its lanes, so a run resumed with another number of DataLoader
workers keeps the interrupted run's order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from avt_data.parquet_rows import ParquetTriplets

logger = logging.getLogger(__name__)

ORDER_SALT = 0x0B10C5  # separates the order's random stream from the per-sample augmentation streams
DEFAULT_WINDOW = 512


def effective_window(window: int, batch_size: int) -> int:
    """``window`` rounded down to a whole number of batches (at least one), so no batch straddles two windows."""
    return max(batch_size, (window // batch_size) * batch_size)


def effective_lanes(lanes: int, num_samples: int, batch_size: int) -> int:
    """At most one lane per full batch: a tiny dataset read by many readers gets fewer, longer lanes."""
    return max(1, min(lanes, num_samples // max(batch_size, 1)))


class BlockShuffleSampler(Sampler):
    """Seeded, block-local epoch order over rows whose row group is ``block_ids[row]`` (see the module doc).

    ``drop_last`` (training) drops the < ``batch_size`` rows at the end of the block stream that do not fill a
    batch (which rows changes every epoch); without it they come last. The length never depends on the lanes. ``weights``
    switches to weighted draws with replacement (official balanced sampling); ``partners`` adds a mixup
    partner from the same window to every key.
    """

    def __init__(
        self,
        block_ids: np.ndarray,
        batch_size: int,
        seed: int = 0,
        lanes: int = 1,
        window: int = DEFAULT_WINDOW,
        shuffle: bool = True,
        drop_last: bool = True,
        weights: np.ndarray | None = None,
        partners: bool = False,
    ):
        self.block_ids = np.asarray(block_ids, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.requested_lanes = int(lanes)
        self.window = effective_window(int(window), self.batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        if self.weights is not None and (
            len(self.weights) != len(self.block_ids) or not (self.weights > 0).any()
        ):
            raise ValueError("weights need one non-negative value per row, at least one positive")
        self.partners = partners
        self.epoch = 0

    @property
    def lanes(self) -> int:
        return effective_lanes(self.requested_lanes, len(self.block_ids), self.batch_size)

    def set_lanes(self, lanes: int) -> None:
        """Use another lane count (e.g. the one a resumed checkpoint was trained with)."""
        self.requested_lanes = int(lanes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def next_window_rows(self, epoch: int, row: int) -> np.ndarray:
        """Rows of the window that follows the one holding ``row`` in the same lane: what that lane's reader needs
        next (``ParquetTriplets`` reads them ahead). Empty for the last window, and for the evaluation tail."""
        if getattr(self, "_plan", (None,))[0] != epoch:
            order, _ = self.epoch_order(epoch)
            positions = np.full(len(self.block_ids), -1, dtype=np.int64)
            positions[order] = np.arange(len(order))
            self._plan = (epoch, order, positions)
        _, order, positions = self._plan
        batch, lanes = self.batch_size, self.lanes
        num_batches = len(self.block_ids) // batch
        position = positions[row]
        if position < 0 or position >= num_batches * batch:
            return np.zeros(0, dtype=np.int64)
        lane, batch_in_lane = (position // batch) % lanes, (position // batch) // lanes
        per_window = self.window // batch
        first = (batch_in_lane // per_window + 1) * per_window
        batches = np.arange(first, first + per_window) * lanes + lane
        batches = batches[batches < num_batches]
        return order[(batches[:, None] * batch + np.arange(batch)).reshape(-1)]

    def __getstate__(self) -> dict[str, Any]:  # the cached plan is rebuilt where it is needed
        state = self.__dict__.copy()
        state.pop("_plan", None)
        return state

    def state_dict(self) -> dict[str, int]:
        return {
            "num_rows": len(self.block_ids),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "window": self.window,
            "lanes": self.requested_lanes,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take the checkpoint's epoch and lanes (so the order does not depend on this run's worker count);
        another dataset, seed, batch size or window cannot replay the interrupted run's order (said)."""
        for key, value in (("num_rows", len(self.block_ids)), ("seed", self.seed), ("batch_size", self.batch_size),
                           ("window", self.window)):  # fmt: skip
            if state.get(key) != value:
                logger.warning(
                    "resuming with sampler %s=%s instead of %s: the run continues, but not in the order an "
                    "uninterrupted run would have used", key, value, state.get(key),
                )  # fmt: skip
        if int(state.get("lanes", self.requested_lanes)) != self.requested_lanes:
            logger.info("keeping the checkpoint's data order: %d reader lanes", int(state["lanes"]))
            self.set_lanes(int(state["lanes"]))
        self.epoch = int(state["epoch"])

    def __len__(self) -> int:
        count = len(self.block_ids)
        return (count // self.batch_size) * self.batch_size if self.drop_last else count

    def cache_rows(self, max_block_rows: int) -> int:
        """Rows a reader keeps to read each row group once: the current window and the next one (read ahead)
        plus the row groups on their edges."""
        return 2 * self.window + 2 * max_block_rows

    def epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Row indices of the epoch in order, and each one's mixup partner (or None)."""
        rng = np.random.default_rng((self.seed, int(epoch), ORDER_SALT))
        count = len(self.block_ids)
        if self.weights is None:
            draws = np.arange(count, dtype=np.int64)
        else:
            draws = np.sort(rng.choice(count, size=count, replace=True, p=self.weights / self.weights.sum()))
        if self.shuffle:
            rank = rng.permutation(int(self.block_ids.max()) + 1 if count else 0)
            draws = draws[np.lexsort((draws, rank[self.block_ids[draws]]))]
        batch, lanes = self.batch_size, self.lanes
        num_batches = count // batch
        # lane l holds batches_per_lane[l] consecutive batches of the stream (the first lanes one more)
        batches_per_lane = np.full(lanes, num_batches // lanes) + (np.arange(lanes) < num_batches % lanes)
        lane_start = np.concatenate([[0], np.cumsum(batches_per_lane)]) * batch
        order = np.empty(num_batches * batch, dtype=np.int64)
        partners = np.empty_like(order) if self.partners else None
        for lane in range(lanes):
            rows = draws[lane_start[lane] : lane_start[lane + 1]]
            if self.shuffle:
                rows = self._shuffle_windows(rows, rng)
            # batch k of this lane is batch c = k * lanes + lane of the order
            targets = (np.arange(len(rows)) // batch * lanes + lane) * batch + np.arange(len(rows)) % batch
            order[targets] = rows
            if partners is not None:
                partners[targets] = self._window_partners(rows, rng)
        tail = draws[num_batches * batch :]
        if not self.drop_last and len(tail):
            order = np.concatenate([order, tail])
            if partners is not None:
                partners = np.concatenate([partners, tail[rng.integers(0, len(tail), len(tail))]])
        return order, partners

    def _shuffle_windows(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return (
            np.concatenate(
                [
                    rng.permutation(rows[start : start + self.window])
                    for start in range(0, len(rows), self.window)
                ]
            )
            if len(rows)
            else rows
        )

    def _window_partners(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A uniformly random row of the same window for every position (official mixup draws from the whole
        dataset; the window's row groups are already in the reader's cache)."""
        position = np.arange(len(rows))
        window_start = (position // self.window) * self.window
        window_size = np.minimum(window_start + self.window, len(rows)) - window_start
        return rows[window_start + (rng.random(len(rows)) * window_size).astype(np.int64)]

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        epoch = self.epoch
        order, partners = self.epoch_order(epoch)
        if partners is None:
            for index in order.tolist():
                yield (index, epoch)
        else:
            for index, partner in zip(order.tolist(), partners.tolist()):
                yield (index, epoch, partner)


def sampler_for_rows(
    rows: ParquetTriplets,
    batch_size: int,
    *,
    seed: int,
    lanes: int,
    window: int,
    weights: np.ndarray | None = None,
    partners: bool = False,
) -> BlockShuffleSampler:
    """The training order for ``rows`` read in place. The rows get it as their read plan (each reader reads its
    next window ahead) and a cache that holds the current and the next window, so every row group of a window
    is read once."""
    block_ids = rows.block_ids()
    sampler = BlockShuffleSampler(
        block_ids, batch_size, seed=seed, lanes=lanes, window=window, weights=weights, partners=partners
    )
    largest_block = int(np.bincount(block_ids).max()) if len(block_ids) else 0
    rows.cache_rows = max(rows.cache_rows, sampler.cache_rows(largest_block))
    rows.read_plan = sampler
    return sampler


# --------------------------------------------------------------------------------------------------
# How far from a full permutation
# --------------------------------------------------------------------------------------------------


def batch_mixing(order: np.ndarray, batch_size: int, groups: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per grouping of rows (shard file, row group, class, ...): the fraction of batches holding rows of more
    than one group, the mean number of distinct groups per batch, and the share of pairs of clips in a batch
    that come from the same group (for classes: in-batch contrastive negatives of the positive's class)."""
    full = (len(order) // batch_size) * batch_size
    batches = np.asarray(order[:full]).reshape(-1, batch_size)
    result: dict[str, Any] = {}
    for name, group_of_row in groups.items():
        labels = np.asarray(group_of_row)[batches]
        distinct, same_pairs = [], 0
        for row in labels:
            _, counts = np.unique(row, return_counts=True)
            distinct.append(len(counts))
            same_pairs += int((counts * (counts - 1)).sum() // 2)
        pairs = len(labels) * batch_size * (batch_size - 1) // 2
        result[name] = {
            "batches_mixing_groups": round(float(np.mean(np.asarray(distinct) > 1)) if distinct else 0.0, 4),
            "mean_distinct_per_batch": round(float(np.mean(distinct)) if distinct else 0.0, 2),
            "same_group_pair_share": round(same_pairs / pairs, 4) if pairs else 0.0,
        }
    return result


def mixing_report(
    sampler: BlockShuffleSampler, groups: dict[str, np.ndarray], epoch: int = 0
) -> dict[str, Any]:
    """:func:`batch_mixing` of the sampler's per-device batches next to a full random permutation's."""
    order, _ = sampler.epoch_order(epoch)
    permutation = np.random.default_rng((sampler.seed, epoch)).permutation(len(sampler.block_ids))
    return {
        "block_shuffle": batch_mixing(order, sampler.batch_size, groups),
        "full_permutation": batch_mixing(permutation, sampler.batch_size, groups),
        "window": sampler.window,
        "lanes": sampler.lanes,
        "batch_size": sampler.batch_size,
        "row_group_reads_per_epoch": row_group_reads(sampler, order),
        "row_groups": int(len(np.unique(sampler.block_ids))),
    }


def row_group_reads(sampler: BlockShuffleSampler, order: np.ndarray) -> int:
    """Row-group reads of one epoch when every reader (lane) reads each of its row groups once."""
    full = (len(order) // sampler.batch_size) * sampler.batch_size
    lane_of = (np.arange(full) // sampler.batch_size) % sampler.lanes
    blocks = sampler.block_ids[order[:full]]
    return int(sum(len(np.unique(blocks[lane_of == lane])) for lane in range(sampler.lanes)))
