"""Triplet rows read in place from Parquet: random access by index, one row group read at a time.

:class:`ParquetTriplets` is what pretraining, fine-tuning and evaluation use instead of a ``datasets.Dataset``
loaded into the ``datasets`` cache: nothing is copied, startup reads footers only, and memory holds a bounded
number of row groups (``cache_rows``) whatever the dataset's size. It offers the part of the
``datasets.Dataset`` API the training and evaluation code use (``len``, ``ds[i]``, ``ds["column"]``,
``select``, ``select_columns``, ``column_names``); media values stay encoded (``{"bytes", "path"}``), as
``ClipDataset`` wants them.

Reading is efficient when consecutive accesses of one process stay inside a few row groups: the
:class:`avt_data.block_sampler.BlockShuffleSampler` order does that for training, in-order evaluation does it
naturally. Each DataLoader worker process keeps its own cache and file handles (reset after a fork).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from avt_core.errors import UsageError
from avt_data.parquet_index import (
    BlockIndex,
    NotParquetError,
    build_index,
    open_parquet,
    reading,
    resolve_source,
)
from avt_data.rows import TEXT_EMBEDDING_COLUMN, require_one_text_embedding_size

logger = logging.getLogger(__name__)

# Files read at once when a batch waits for several row groups (object-store latency). Reading ahead uses one
# thread: it has a whole window of decoding to finish, and concurrent reads cost more CPU (page-fault contention).
PREFETCH_THREADS = 8
DEFAULT_CACHE_ROWS = 256  # in-order reading needs two row groups; training raises it to a window
MAX_OPEN_FILES = 16


class ParquetTriplets:
    """Rows ``0..len-1`` of a :class:`BlockIndex` (or of a ``select``-ed view of it), read lazily.

    ``cache_rows`` bounds the rows (of kept row groups, projected to ``columns``) held in memory per process;
    the block sampler raises it to cover one shuffle window. ``reads`` counts row-group reads per block in
    this process (tests and benchmarks use it to check what a process read).
    """

    def __init__(
        self,
        index: BlockIndex,
        columns: Sequence[str] | None = None,
        rows: np.ndarray | None = None,
        cache_rows: int = DEFAULT_CACHE_ROWS,
    ):
        self.index = index
        # the order rows will be read in, if known (set by avt_data.block_sampler.sampler_for_rows): lets a reader
        # read the next shuffle window ahead; any object with ``next_window_rows(epoch, row)``
        self.read_plan = None
        self._columns = list(columns) if columns is not None else list(index.column_names)
        self._rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.cache_rows = cache_rows
        self._reset()

    # ---- per-process state -----------------------------------------------------------------------

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cache: OrderedDict[int, pa.Table] = OrderedDict()
        self._cached_rows = 0
        self._files: OrderedDict[int, Any] = OrderedDict()
        self._pools: dict[bool, Any] = {}  # own_files (read-ahead) -> its executor
        self._pending: dict[int, Any] = {}  # block -> Future of a read in flight (list of (block, table))
        self.reads: dict[int, int] = {}

    def _check_process(self) -> None:
        if self._pid != os.getpid():  # a forked DataLoader worker: never share handles or cached tables
            self._reset()
            reuse_arrow_memory_in_worker()

    def __getstate__(self) -> dict[str, Any]:  # spawned workers get the index, not the cache
        state = self.__dict__.copy()
        for key in ("_cache", "_files", "_pools", "_pending", "reads"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # ---- the datasets.Dataset-like API -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.index) if self._rows is None else len(self._rows)

    @property
    def column_names(self) -> list[str]:
        return list(self._columns)

    def base_indices(self) -> np.ndarray:
        """Global index (in the :class:`BlockIndex`) of every row of this view."""
        return np.arange(len(self.index), dtype=np.int64) if self._rows is None else self._rows

    def block_ids(self) -> np.ndarray:
        """Row group ("block") of every row of this view: what the block sampler groups reads by."""
        return self.index.blocks_of(self.base_indices())

    def file_ids(self) -> np.ndarray:
        """Parquet file (shard) of every row of this view."""
        return self.index.block_file[self.block_ids()]

    def select(self, indices) -> ParquetTriplets:
        """A view of the rows ``indices`` (in that order), sharing the index; nothing is read."""
        wanted = indices if isinstance(indices, np.ndarray) else np.fromiter(indices, dtype=np.int64)
        chosen = self.base_indices()[wanted.astype(np.int64, copy=False)]
        return ParquetTriplets(self.index, self._columns, chosen, self.cache_rows)

    def to_dict(self) -> dict[str, list[Any]]:
        """Every column of the view as lists (``datasets.Dataset.to_dict``): use on metadata column views."""
        return {name: self.column(name) for name in self._columns}

    def select_columns(self, columns: Sequence[str]) -> ParquetTriplets:
        missing = [c for c in columns if c not in self.index.available_columns]
        if missing:
            raise ValueError(f"columns {missing} are not in the dataset (has {self.index.available_columns})")
        return ParquetTriplets(self.index, columns, self._rows, self.cache_rows)

    def cast_column(self, column: str, feature: Any) -> ParquetTriplets:
        """Media are always returned encoded, so only casts to undecoded ``Audio`` / ``Image`` features apply."""
        inner = getattr(feature, "feature", feature)
        if getattr(inner, "decode", True):
            raise NotImplementedError("ParquetTriplets returns encoded media; decode them per row")
        return self

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self.column(key)
        position = int(key)
        if position < 0:
            position += len(self)
        if not 0 <= position < len(self):
            raise IndexError(f"row {key} out of range for {len(self)} rows")
        base = position if self._rows is None else int(self._rows[position])
        block = int(self.index.blocks_of(np.asarray([base]))[0])
        table = self._block_table(block)
        return table.slice(base - int(self.index.block_starts[block]), 1).to_pylist()[0]

    def column(self, name: str) -> list[Any]:
        """One column for every row of the view, read by column projection (no media are read)."""
        return self.column_arrow(name).to_pylist()

    def list_lengths(self, name: str) -> list[int]:
        """Length of a list column (e.g. frames per clip) without copying its values into Python."""
        import pyarrow.compute as pc

        return pc.list_value_length(self.column_arrow(name)).fill_null(0).to_pylist()

    def column_arrow(self, name: str) -> pa.Array:
        """One column for every row of the view, in view order, as Arrow: one projected read per file."""
        if name not in self.index.available_columns:
            raise KeyError(f"no column {name!r} (has {self.index.available_columns})")
        base = self.base_indices()
        blocks = self.index.blocks_of(base)
        files = self.index.block_file[blocks]
        file_rows = self.index.block_file_row[blocks] + self.index.row_offsets[base]
        pieces, order = [], []
        for file_number in np.unique(files):
            positions = np.flatnonzero(files == file_number)
            values = self._parquet_file(int(file_number)).read(columns=[name]).column(name)
            pieces.append(values.take(pa.array(file_rows[positions])))
            order.append(positions)
        if not pieces:
            return pa.array([], type=pa.null())
        gathered = pa.concat_arrays(
            [p.combine_chunks() if isinstance(p, pa.ChunkedArray) else p for p in pieces]
        )
        inverse = np.empty(len(base), dtype=np.int64)
        inverse[np.concatenate(order)] = np.arange(len(base))
        return gathered.take(pa.array(inverse))

    # ---- reading ---------------------------------------------------------------------------------

    def _parquet_file(self, file_number: int):
        self._check_process()
        handle = self._files.get(file_number)
        if handle is None:
            handle = open_parquet(self.index.files[file_number], self.index.storage_options[file_number])
            self._files[file_number] = handle
            while len(self._files) > MAX_OPEN_FILES:
                self._files.popitem(last=False)
        self._files.move_to_end(file_number)
        return handle

    def _read_kept(self, parquet, block: int, columns: Sequence[str]) -> pa.Table:
        """The kept rows of one row group of the open file ``parquet`` (no shared state: thread-safe)."""
        # One thread per read: pyarrow's own threads cost 2-5x the CPU for a few large binary columns, and reads
        # run in parallel across files already (prefetch and read-ahead threads).
        with reading(self.index.files[int(self.index.block_file[block])]):
            table = parquet.read_row_group(
                int(self.index.block_row_group[block]), columns=list(columns), use_threads=False
            )
        start, end = self.index.block_starts[block], self.index.block_starts[block + 1]
        offsets = self.index.row_offsets[start:end]
        if len(offsets) != table.num_rows or offsets[-1] != len(offsets) - 1:
            table = table.take(pa.array(offsets))
        return table

    def _read_block(self, block: int, columns: Sequence[str]) -> pa.Table:
        """The kept rows of one row group, projected to ``columns`` (one read, not cached)."""
        table = self._read_kept(self._parquet_file(int(self.index.block_file[block])), block, columns)
        self.reads[block] = self.reads.get(block, 0) + 1
        return table

    def _store(self, block: int, table: pa.Table) -> None:
        self._cache[block] = table
        self._cached_rows += table.num_rows
        while self._cached_rows > self.cache_rows and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._cached_rows -= evicted.num_rows

    def _block_table(self, block: int) -> pa.Table:
        self._check_process()
        self._harvest(block)
        table = self._cache.get(block)
        if table is None:
            table = self._read_block(block, self._columns)
            self._store(block, table)
        self._cache.move_to_end(block)
        return table

    def prefetch(self, positions: Sequence[int], epoch: int | None = None) -> None:
        """Read the missing row groups of these rows (one batch) at once, one thread per file, so a batch that
        starts a shuffle window pays one request latency, not one per row group; with a read plan and the
        batch's ``epoch``, also start reading the next window of this reader in the background."""
        self._check_process()
        wanted = np.asarray(positions, dtype=np.int64)
        blocks = [int(b) for b in np.unique(self.index.blocks_of(self._base(wanted)))]
        self._harvest()
        missing = [b for b in blocks if b not in self._cache and b not in self._pending]
        if len(missing) > 1:
            self._submit_reads(missing, own_files=False)
        for block in blocks:
            self._harvest(block)
        if epoch is not None and self.read_plan is not None and len(wanted):
            ahead = self._base(
                np.asarray(self.read_plan.next_window_rows(epoch, int(wanted[0])), dtype=np.int64)
            )
            coming = [int(b) for b in np.unique(self.index.blocks_of(ahead))]
            coming = [b for b in coming if b not in self._cache and b not in self._pending]
            if coming:
                self._submit_reads(coming, own_files=True)

    def _base(self, positions: np.ndarray) -> np.ndarray:
        return positions if self._rows is None else self._rows[positions]

    def _submit_reads(self, blocks: list[int], own_files: bool) -> None:
        """Read ``blocks`` in a thread pool, one task per file. Background read-ahead (``own_files``: its own file
        handles, one thread); a batch's prefetch reuses this process's handles, as its caller waits for them."""
        pool = self._pools.get(own_files)
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            threads = 1 if own_files else PREFETCH_THREADS
            pool = self._pools[own_files] = ThreadPoolExecutor(threads, thread_name_prefix="parquet-read")
        by_file: dict[int, list[int]] = {}
        for block in blocks:
            by_file.setdefault(int(self.index.block_file[block]), []).append(block)
        columns = list(self._columns)
        for file_number, file_blocks in by_file.items():
            handle = None if own_files else self._parquet_file(file_number)
            future = pool.submit(self._read_file_blocks, file_number, handle, file_blocks, columns)
            for block in file_blocks:
                self._pending[block] = future

    def _read_file_blocks(self, file_number: int, handle, blocks: list[int], columns: list[str]):
        """Runs in a pool thread: touches no shared state but the file handle its caller gave it."""
        if handle is None:
            handle = open_parquet(self.index.files[file_number], self.index.storage_options[file_number])
        return [(block, self._read_kept(handle, block, columns)) for block in blocks]

    def _harvest(self, block: int | None = None) -> None:
        """Move finished reads into the cache, first waiting for ``block``'s when it is in flight."""
        if block is not None and block in self._pending:
            self._pending[block].result()
        finished = {id(f): f for f in self._pending.values() if f.done()}
        for future in finished.values():
            for done_block, table in future.result():
                self._pending.pop(done_block, None)
                self.reads[done_block] = self.reads.get(done_block, 0) + 1
                self._store(done_block, table)


_ARROW_MEMORY_SET_FOR: int | None = None


def reuse_arrow_memory_in_worker() -> None:
    """In a DataLoader worker process, let Arrow keep freed memory for reuse (jemalloc, no decay).

    A reader frees a window's row groups and allocates the next window's: with the default allocator each 16 MB
    column buffer is a fresh mapping, and its page faults cost about as much CPU as the read itself. Reusing the
    freed pages keeps the worker's memory at its peak (two windows), which it reaches anyway. Only worker
    processes (the loader's own) are changed; pyarrow builds without jemalloc keep their default.
    """
    global _ARROW_MEMORY_SET_FOR
    from torch.utils.data import get_worker_info

    if _ARROW_MEMORY_SET_FOR == os.getpid() or get_worker_info() is None:
        return
    _ARROW_MEMORY_SET_FOR = os.getpid()
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(-1)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        logger.debug("pyarrow has no jemalloc: Arrow keeps its default allocator")


def open_parquet_triplets(
    specs: Sequence[str],
    columns: Sequence[str] | None,
    split: str = "train",
    storage_options: dict[str, Any] | None = None,
    optional_columns: Sequence[str] = (),
) -> ParquetTriplets:
    """The rows of every ``--dataset`` spec concatenated in order, read in place, with ``columns`` (all when None)
    and the ``optional_columns`` every dataset has (raises :class:`NotParquetError` when a dataset's data files
    are not Parquet)."""
    if not specs:
        raise UsageError("no dataset given")
    indexes = [build_index(resolve_source(spec, split, storage_options), columns) for spec in specs]
    index = indexes[0] if len(indexes) == 1 else BlockIndex.concatenate(indexes)
    if columns is not None:
        present = [c for c in optional_columns if all(c in i.available_columns for i in indexes)]
        columns = [*columns, *(c for c in present if c not in columns)]
    rows = ParquetTriplets(index, columns)
    if columns is not None and TEXT_EMBEDDING_COLUMN in columns:
        starts = np.cumsum([0] + [n for _, n in index.parts])[:-1]
        require_one_text_embedding_size(
            {
                len(rows.select([int(s)])[TEXT_EMBEDDING_COLUMN][0])
                for s, (_, n) in zip(starts, index.parts)
                if n
            }
        )
    for name, count in index.parts:
        logger.info("dataset %s split %s: %d clips", name, split, count)
    return rows


def load_triplets(
    specs: Sequence[str],
    columns: Sequence[str] | None,
    split: str = "train",
    storage_options: dict[str, Any] | None = None,
    cache_dir: str | None = None,
    optional_columns: Sequence[str] = (),
):
    """Triplets for training or evaluation: read in place from Parquet; a dataset stored otherwise falls back
    to ``datasets.load_dataset`` (which copies it into the ``datasets`` cache), with a warning saying so."""
    try:
        return open_parquet_triplets(specs, columns, split, storage_options, optional_columns)
    except NotParquetError as error:
        logger.warning("%s: loading through the datasets cache (a full copy)", error)
    from avt_data.cached import load_through_datasets_cache

    return load_through_datasets_cache(specs, columns, split, cache_dir, optional_columns)
