"""Files of a generation output: shards, failures and stats (layout in ``schema``; the manifest in ``manifest``).

Crash safety comes from the order of writes: a shard's data and failures tables are published whole (a local
temporary renamed into place, or a completed upload on an object store, :mod:`avt_triplets.storage`), and its
stats file is written last.
A shard counts as done only once its stats file exists, so a process killed at any point leaves
either a finished shard or one that the next run redoes from scratch, overwriting whatever partial
files it left. Each shard's rows live in exactly one file, so no clip is ever written twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.arrow_writer import ParquetWriter

from avt_triplets import schema, storage
from avt_triplets.atomic import atomic_write_json

logger = logging.getLogger(__name__)

_SHARD_FILE = re.compile(r"^shard-(\d+)(?:\.parquet|_stats\.json)$")
_STATS_FILE = re.compile(r"^shard-(\d+)_stats\.json$")
# Rows per Parquet row group (~16 MB at paper clip size, 10 JPEGs + 10 s WAV). Training reads a dataset in
# place one row group at a time and shuffles row groups: small ones mix batches from more places and keep a
# batch's reads small; outputs with datasets' default (100 rows) still read.
ROW_GROUP_ROWS = 32


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def recorded_row_layout(root: Path) -> int:
    """The row columns an output was started with (its manifest's ``row_layout``; 1 before the key existed), so
    the shards a resumed run adds have the columns of the shards already there."""
    manifest = read_json(storage.as_path(root) / schema.MANIFEST_FILE) or {}
    return int(manifest.get("row_layout", 1 if manifest else schema.ROW_LAYOUT))


def is_done(root: Path, index: int) -> bool:
    return schema.stats_path(root, index).is_file()


def done_shard_indices(root: Path) -> set[int]:
    """Indices of the finished shards (those with a stats file), from one listing of the stats folder."""
    listing = storage.names(storage.as_path(root) / schema.STATS_DIR)
    return {int(m.group(1)) for m in map(_STATS_FILE.match, listing) if m}


def remove_temporaries(root: Path, index: int) -> None:
    """Leftovers of a killed writer of shard ``index`` (any pid); an object store has none."""
    if storage.is_remote(root):
        return
    name = schema.shard_name(index)
    for folder in (schema.DATA_DIR, schema.FAILURES_DIR, schema.STATS_DIR):
        for tmp in (root / folder).glob(f".{name}*.tmp"):
            tmp.unlink(missing_ok=True)


def existing_shard_indices(root: Path) -> set[int]:
    found = set()
    for folder in (schema.DATA_DIR, schema.FAILURES_DIR, schema.STATS_DIR):
        for name in storage.names(root / folder):
            match = _SHARD_FILE.match(name)
            if match:
                found.add(int(match.group(1)))
    return found


def remove_shard(root: Path, index: int) -> None:
    """Delete every file of shard ``index``, stats first so it never looks done while half-deleted."""
    storage.unlink(schema.stats_path(root, index))
    storage.unlink(schema.data_path(root, index))
    storage.unlink(schema.failures_path(root, index))
    remove_temporaries(root, index)
    remove_parts(root, index)


def remove_parts(root: Path, index: int) -> None:
    """Delete the chunk parts of shard ``index`` (after its commit, or when it is started over)."""
    storage.remove_tree(schema.parts_dir(root, index))


def _write_table_file(path: Path, features: datasets.Features, rows: Iterable[dict[str, Any]]) -> int:
    """``rows`` (already encoded) as the Parquet file ``path``, atomically; returns how many."""
    count = 0
    with storage.atomic_output(path) as stream:
        writer = ParquetWriter(stream=stream, features=features)
        try:
            for row in rows:
                writer.write(row)
                count += 1
            writer.finalize(close_stream=False)
        except BaseException:
            writer.close()
            raise
    return count


def write_rows(path: Path, rows: Iterable[dict[str, Any]], features: datasets.Features | None = None) -> int:
    """Write ``rows`` to the Parquet file ``path`` atomically, encoded with ``features`` (the triplet schema's by
    default) the way :class:`ShardWriter` encodes them; returns how many."""
    features = features or schema.triplet_features()
    return _write_table_file(path, features, (features.encode_example(row) for row in rows))


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file (local or on a store) as an Arrow table."""
    with storage.open_for_reading(path) as source:
        return pq.read_table(source, columns=columns)


def read_schema(path: Path) -> pa.Schema:
    """The Arrow schema of a Parquet file (local or on a store), from its footer."""
    with storage.open_for_reading(path) as source:
        return pq.read_schema(source)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a Parquet file as plain dicts (media as ``{"bytes", "path"}``): what :func:`write_rows` took."""
    return read_table(path).to_pylist()


class ShardWriter:
    """Streams one shard's rows into Parquet through ``datasets``' own writer, then commits it.

    Rows are encoded with the schema's features and flushed every ``ROW_GROUP_ROWS`` rows (one Parquet
    row group), so memory doesn't grow with the shard. The files
    are what ``load_dataset`` reads: the Parquet schema carries the features.
    """

    def __init__(self, root: Path, index: int, features: datasets.Features | None = None):
        self.root = root
        self.index = index
        self.features = features or schema.triplet_features()
        self.data_file = schema.data_path(root, index)
        storage.makedirs(self.data_file.parent)
        self._output = contextlib.ExitStack()
        stream = self._output.enter_context(storage.atomic_output(self.data_file))
        self._writer = ParquetWriter(stream=stream, features=self.features, writer_batch_size=ROW_GROUP_ROWS)
        self.rows = 0
        self.failures: list[dict[str, str]] = []

    def write_row(self, row: dict[str, Any]) -> None:
        self._writer.write(self.features.encode_example(row))
        self.rows += 1

    def copy_rows(self, parquet_file: Path, skip_clip_ids: Iterable[str] = ()) -> None:
        """Carry the rows of an earlier version of this shard over unchanged (``--retry-failed``)."""
        skip = set(skip_clip_ids)
        with storage.open_for_reading(parquet_file) as source, pq.ParquetFile(source) as reader:
            for batch in reader.iter_batches(batch_size=self._writer.writer_batch_size or 100):
                table = pa.Table.from_batches([batch])
                if skip:
                    keep = [cid not in skip for cid in table.column("clip_id").to_pylist()]
                    table = table.filter(pa.array(keep))
                if table.num_rows:
                    self._writer.write_table(table)
                    self.rows += table.num_rows

    def add_failure(self, clip_id: str, video_path: str, reason: str, detail: str) -> None:
        if reason not in schema.FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {reason!r}")
        self.failures.append(
            {"clip_id": clip_id, "video_path": video_path, "reason": reason, "detail": detail}
        )

    def commit(self, stats: dict[str, Any]) -> None:
        """Publish data, then failures, then stats (the done marker): each appears whole or not at all."""
        self._writer.finalize(close_stream=False)
        self._writer = None
        storage.unlink(schema.stats_path(self.root, self.index))  # redoing a done shard
        self._output.close()  # the data file appears
        failures_file = schema.failures_path(self.root, self.index)
        storage.makedirs(failures_file.parent)
        _write_table_file(failures_file, schema.FAILURE_FEATURES, self.failures)
        atomic_write_json(schema.stats_path(self.root, self.index), stats)

    def abort(self) -> None:
        """Drop the shard in progress: close the writer, delete its temporaries (or abandon the upload)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError:  # e.g. the disk is full: the file is deleted next anyway
                pass
            self._writer = None
        with contextlib.suppress(Exception):
            self._output.__exit__(RuntimeError, RuntimeError("shard aborted"), None)
        remove_temporaries(self.root, self.index)


def read_failures(root: Path, index: int) -> list[dict[str, str]]:
    path = schema.failures_path(root, index)
    if not path.is_file():
        return []
    return read_table(path).to_pylist()


def read_stats(root: Path, index: int) -> dict[str, Any] | None:
    return read_json(schema.stats_path(root, index))


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b": value}``; lists and scalars are leaves."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


@dataclass
class RunTotals:
    """Totals over the finished shards of an output: the one count behind the run summary and the card.

    A shard is finished once its stats file exists (it is written last); ``shards_pending`` counts the
    shards that were started (a data file exists) but are not finished.
    """

    shards_total: int | None = None  # the run's shard count from the manifest (None: unknown)
    shards_done: int = 0
    shards_pending: int = 0
    triplets: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, summed over shards
    stats_sums: dict[str, float] = field(default_factory=dict)  # every numeric stats field, summed

    @property
    def failures(self) -> int:
        return sum(self.failures_by_reason.values())

    @property
    def clips(self) -> int:
        return self.triplets + self.failures


def _shard_counts(root: Path, index: int, stats: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """Triplets and failures by reason of one finished shard: from its stats file, or (stats written by
    other tools) from the data file's metadata and the failures table."""
    triplets = stats.get("num_triplets")
    if triplets is None:
        triplets = read_table(schema.data_path(root, index), columns=["clip_id"]).num_rows
    reasons = stats.get("failures_by_reason")
    if reasons is None:
        reasons = Counter(str(row["reason"]) for row in read_failures(root, index))
    return int(triplets), {str(k): int(v) for k, v in reasons.items()}


def collect_totals(root: str | os.PathLike) -> RunTotals:
    """Sum the stats files of every finished shard of ``root`` (one listing, one read per finished shard)."""
    root = storage.as_path(root)
    manifest = read_json(root / schema.MANIFEST_FILE) or {}
    total = manifest.get("num_shards")
    done = done_shard_indices(root)
    started = existing_shard_indices(root)
    totals = RunTotals(shards_total=int(total) if isinstance(total, int) else None)
    reasons: Counter[str] = Counter()
    sums: Counter[str] = Counter()
    for index in sorted(done):
        stats = read_stats(root, index)
        if stats is None:
            logger.warning("unreadable stats file for shard %d", index)
            continue
        totals.shards_done += 1
        triplets, by_reason = _shard_counts(root, index, stats)
        totals.triplets += triplets
        reasons.update(by_reason)
        for key, value in flatten(stats).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums[key] += value
    totals.shards_pending = sum(1 for index in started - done if schema.data_path(root, index).is_file())
    # The schema's order of reasons, then any others.
    totals.failures_by_reason = {r: reasons[r] for r in schema.FAILURE_REASONS if reasons.get(r)}
    totals.failures_by_reason.update(
        {r: n for r, n in sorted(reasons.items()) if r not in schema.FAILURE_REASONS}
    )
    totals.stats_sums = dict(sums)
    totals.seconds = {k.removeprefix("seconds."): v for k, v in sums.items() if k.startswith("seconds.")}
    return totals
