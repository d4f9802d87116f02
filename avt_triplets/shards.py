"""Files of a generation output: shards, failures and stats (names in ``layout``; the manifest in ``manifest``).

Crash safety comes from the order of writes: a shard's data and failures tables appear whole (a local
temporary renamed into place, or a completed upload on an object store, :mod:`avt_core.storage`), and its
stats file is written last.
A shard counts as done only once its stats file exists, so a process killed at any point leaves
either a finished shard or one that the next run redoes from scratch, overwriting whatever partial
files it left. Each shard's rows live in exactly one file, so no clip is ever written twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.arrow_writer import ParquetWriter

from avt_core import storage
from avt_core.atomic import atomic_write_json
from avt_core.errors import UsageError
from avt_triplets import layout, schema
from avt_triplets.output_lock import pid_is_running

logger = logging.getLogger(__name__)

# The stats key recording each written file of a shard: {relative path: {"bytes": size, "sha256": hex digest}}.
FILES_KEY = "files"
_CHECK_THREADS = 16  # stats reads and size look-ups are latency-bound on object stores


REDO_HINT = "rerun the same `avt generate` command: it redoes a damaged shard"


class DamagedOutputError(UsageError):
    """A file of a generation output is missing, truncated or changed: named in one line, with what to do."""

    def __init__(self, problem: str, hint: str = REDO_HINT):
        super().__init__(f"{problem}; {hint}")
        self.problem = problem

    def __reduce__(self):  # crosses process boundaries intact (DataLoader workers, Ray tasks)
        return type(self), (self.problem, str(self).removeprefix(f"{self.problem}; "))


@contextlib.contextmanager
def naming_damaged_file(path: Any, hint: str = REDO_HINT) -> Iterator[None]:
    """Errors of reading the Parquet file ``path`` (truncated, garbled, deleted) as one :class:`DamagedOutputError`
    line that names it, instead of a library traceback that does not."""
    try:
        yield
    except DamagedOutputError:
        raise
    except FileNotFoundError as error:
        raise DamagedOutputError(f"{path} is missing", hint) from error
    except (pa.ArrowException, OSError, EOFError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DamagedOutputError(f"{path} is damaged, not a readable Parquet file ({first})", hint) from error


class _HashingStream:
    """A binary output stream that counts and hashes what goes through it, so a shard's size and checksum cost no
    second read of the file."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha256.update(view)
        self.bytes += view.nbytes
        return self.inner.write(data)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        self.inner.flush()

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def record(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "sha256": self.sha256.hexdigest()}


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def recorded_row_layout(root: Path) -> int:
    """The row columns an output was started with (its manifest's ``row_layout``; 1 before the key existed), so
    the shards a resumed run adds have the columns of the shards already there."""
    manifest = read_json(storage.as_path(root) / layout.MANIFEST_FILE) or {}
    return int(manifest.get("row_layout", 1 if manifest else schema.ROW_LAYOUT))


def recorded_caption_kinds(root: Path) -> tuple[str, ...]:
    """The further caption kinds an output's rows carry (``audio``, ...): those whose model the manifest records
    (``schema.CAPTION_KIND_RECORDS``), so every shard of the output has the same columns."""
    manifest = read_json(storage.as_path(root) / layout.MANIFEST_FILE) or {}
    return tuple(
        kind for kind, records in schema.CAPTION_KIND_RECORDS.items() if any(manifest.get(r) for r in records)
    )


def is_done(root: Path, index: int) -> bool:
    return layout.stats_path(root, index).is_file()


def done_shard_indices(root: Path) -> set[int]:
    """Indices of the finished shards (those with a stats file), from one listing of the stats folder."""
    listing = storage.names(storage.as_path(root) / layout.STATS_DIR)
    return {index for index in map(layout.stats_file_index, listing) if index is not None}


def _temporary_owner_is_gone(tmp: Path) -> bool:
    """Whether the process that named the temporary ``.name.<pid>.<hex>.tmp`` no longer runs on this host (an
    unparsable name counts as gone; another live process's temporary is never touched)."""
    parts = tmp.name.rsplit(".", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return True
    pid = int(parts[1])
    if pid == os.getpid():
        return False  # this process's own writes remove their temporaries themselves
    return not pid_is_running(pid)


def remove_temporaries(root: Path, index: int) -> None:
    """Leftovers of a killed writer of shard ``index``: temporaries of processes that are gone (a live writer's,
    another run's included, are left alone); an object store has none."""
    if storage.is_remote(root):
        return
    for folder in layout.SHARD_FOLDERS:
        for tmp in (root / folder).glob(layout.shard_temporaries_glob(index)):
            if _temporary_owner_is_gone(tmp):
                tmp.unlink(missing_ok=True)


def existing_shard_indices(root: Path) -> set[int]:
    found = set()
    for folder in layout.SHARD_FOLDERS:
        for name in storage.names(root / folder):
            index = layout.shard_file_index(name)
            if index is not None:
                found.add(index)
    return found


def remove_shard(root: Path, index: int) -> None:
    """Delete every file of shard ``index``, stats first so it never looks done while half-deleted."""
    storage.unlink(layout.stats_path(root, index))
    storage.unlink(layout.data_path(root, index))
    storage.unlink(layout.failures_path(root, index))
    remove_temporaries(root, index)
    remove_parts(root, index)


def remove_parts(root: Path, index: int) -> None:
    """Delete the chunk parts of shard ``index`` (after its commit, or when it is started over)."""
    storage.remove_tree(layout.parts_dir(root, index))


def _write_table_file(
    path: Path, features: datasets.Features, rows: Iterable[dict[str, Any]]
) -> tuple[int, dict[str, Any]]:
    """``rows`` (already encoded) as the Parquet file ``path``, atomically; returns how many and the file's size and
    checksum."""
    count = 0
    with storage.atomic_output(path) as output:
        stream = _HashingStream(output)
        writer = ParquetWriter(stream=stream, features=features)
        try:
            for row in rows:
                writer.write(row)
                count += 1
            writer.finalize(close_stream=False)
        except BaseException:
            writer.close()
            raise
    return count, stream.record()


def _is_encoded_audio(value: Any) -> bool:
    return (
        isinstance(value, dict) and isinstance(value.get("bytes"), bytes) and set(value) <= {"bytes", "path"}
    )


def row_encoder(features: datasets.Features) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``features.encode_example``, but rows whose audio is already the stored ``{"bytes", "path"}`` dict (what
    decoding makes) pass it through as is: ``datasets.Audio.encode_example`` imports torch and torchcodec even
    then (~500 MB in a ``--captioner none`` run that otherwise never needs them)."""
    audio = [name for name, feature in features.items() if isinstance(feature, datasets.Audio)]
    stored = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    plain = datasets.Features({name: stored if name in audio else f for name, f in features.items()})

    def encode(row: dict[str, Any]) -> dict[str, Any]:
        if all(row.get(name) is None or _is_encoded_audio(row[name]) for name in audio):
            return plain.encode_example(row)
        return features.encode_example(row)

    return encode


def write_rows(path: Path, rows: Iterable[dict[str, Any]], features: datasets.Features | None = None) -> int:
    """Write ``rows`` to the Parquet file ``path`` atomically, encoded with ``features`` (the triplet schema's by
    default) the way :class:`ShardWriter` encodes them; returns how many."""
    features = features or schema.triplet_features()
    encode = row_encoder(features)
    return _write_table_file(path, features, (encode(row) for row in rows))[0]


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file (local or on a store) as an Arrow table; a damaged one is a :class:`DamagedOutputError`."""
    with naming_damaged_file(path), storage.open_for_reading(path) as source:
        return pq.read_table(source, columns=columns)


def read_schema(path: Path) -> pa.Schema:
    """The Arrow schema of a Parquet file (local or on a store), from its footer."""
    with naming_damaged_file(path), storage.open_for_reading(path) as source:
        return pq.read_schema(source)


def read_num_rows(path: Path) -> int:
    """The row count a Parquet file's footer records (a few bytes read)."""
    with naming_damaged_file(path), storage.open_for_reading(path) as source:
        return pq.read_metadata(source).num_rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a Parquet file as plain dicts (media as ``{"bytes", "path"}``): what :func:`write_rows` took."""
    return read_table(path).to_pylist()


class ShardWriter:
    """Streams one shard's rows into Parquet through ``datasets``' own writer, then commits it.

    Rows are encoded with the schema's features and flushed every ``layout.ROW_GROUP_ROWS`` rows (one Parquet
    row group), so memory doesn't grow with the shard. The files
    are what ``load_dataset`` reads: the Parquet schema carries the features.
    """

    def __init__(self, root: Path, index: int, features: datasets.Features | None = None):
        self.root = root
        self.index = index
        self.features = features or schema.triplet_features()
        self.data_file = layout.data_path(root, index)
        storage.makedirs(self.data_file.parent)
        self._output = contextlib.ExitStack()
        self._stream = _HashingStream(self._output.enter_context(storage.atomic_output(self.data_file)))
        self._writer = ParquetWriter(
            stream=self._stream, features=self.features, writer_batch_size=layout.ROW_GROUP_ROWS
        )
        self._encode = row_encoder(self.features)
        self.rows = 0
        self.failures: list[dict[str, str]] = []

    def write_row(self, row: dict[str, Any]) -> None:
        self._writer.write(self._encode(row))
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
        """Make data, then failures, then stats (the done marker) appear: each whole or not at all. The stats
        record each file's size and checksum (``stats["files"]``), so a damaged file is found and its shard redone."""
        self._writer.finalize(close_stream=False)
        self._writer = None
        storage.unlink(layout.stats_path(self.root, self.index))  # redoing a done shard
        self._output.close()  # the data file appears
        failures_file = layout.failures_path(self.root, self.index)
        storage.makedirs(failures_file.parent)
        _, failures_record = _write_table_file(failures_file, schema.FAILURE_FEATURES, self.failures)
        stats[FILES_KEY] = {
            layout.relative_name(self.data_file): self._stream.record(),
            layout.relative_name(failures_file): failures_record,
        }
        atomic_write_json(layout.stats_path(self.root, self.index), stats)

    def abort(self) -> None:
        """Drop the shard in progress: close the writer, delete its own temporary (or abandon the upload)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError:  # e.g. the disk is full: the file is deleted next anyway
                pass
            self._writer = None
        with contextlib.suppress(Exception):  # removes this writer's own temporary, never another's
            self._output.__exit__(RuntimeError, RuntimeError("shard aborted"), None)


def read_failures(root: Path, index: int) -> list[dict[str, str]]:
    path = layout.failures_path(root, index)
    if not path.is_file():
        return []
    return read_table(path).to_pylist()


def read_stats(root: Path, index: int) -> dict[str, Any] | None:
    return read_json(layout.stats_path(root, index))


# ----------------------------------------------------------------------------------------------
# Finished shards whose files do not match their stats


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _file_problem(path: Path, record: dict[str, Any], verify: bool) -> str | None:
    size = storage.size(path)
    if size is None:
        return f"{path} is missing (its shard's stats file records it)"
    if size != record.get("bytes"):
        return f"{path} has {size} bytes where its stats file records {record.get('bytes')} (truncated or replaced)"
    if verify and _sha256(path) != record.get("sha256"):
        return f"{path} does not match the checksum in its stats file (its content changed)"
    return None


def _unrecorded_problem(root: Path, index: int, stats: dict[str, Any], verify: bool) -> str | None:
    """Stats of an older avt record no sizes: the data file's footer must be readable and hold the recorded
    row count (``verify``: every page must decode too)."""
    path = layout.data_path(root, index)
    try:
        rows = read_num_rows(path)
        if verify:
            read_table(path)
    except DamagedOutputError as error:
        return error.problem
    expected = stats.get("num_triplets")
    if isinstance(expected, int) and rows != expected:
        return f"{path} holds {rows} rows where its stats file records {expected}"
    return None


def shard_problem(root: Path, index: int, verify: bool = False) -> tuple[str | None, bool]:
    """What is wrong with finished shard ``index`` (its stats file exists), or None, and whether its stats record
    file sizes. Wrong are: a stats file that is empty or not JSON, a data or failures file that is missing or of
    another size than recorded, and (``verify``: every byte read) a checksum that does not match."""
    stats = read_stats(root, index)
    if not isinstance(stats, dict):
        return f"{layout.stats_path(root, index)} is empty or not valid JSON", True
    recorded = stats.get(FILES_KEY)
    if not isinstance(recorded, dict):
        return _unrecorded_problem(root, index, stats, verify), False
    for relative, record in recorded.items():
        problem = _file_problem(root / relative, record if isinstance(record, dict) else {}, verify)
        if problem:
            return problem, True
    return None, True


@dataclass
class ShardCheck:
    """The finished shards checked: which are damaged (index -> what is wrong), which have stats of an older avt
    that records no file sizes (checked by their Parquet footers instead)."""

    checked: int = 0
    damaged: dict[int, str] = field(default_factory=dict)
    unrecorded: list[int] = field(default_factory=list)

    def first_error(self) -> DamagedOutputError | None:
        """The first damaged shard as one line (how many more there are, what to do), or None."""
        if not self.damaged:
            return None
        index = min(self.damaged)
        more = f" (and {len(self.damaged) - 1} more damaged shard(s))" if len(self.damaged) > 1 else ""
        return DamagedOutputError(f"finished shard {index} is damaged: {self.damaged[index]}{more}")


def check_finished_shards(
    root: Path, indices: Iterable[int] | None = None, verify: bool = False
) -> ShardCheck:
    """Check the files of the finished shards ``indices`` (default: all) against their stats: sizes (a stat per
    file), and with ``verify`` checksums (every byte read)."""
    root = storage.as_path(root)
    indices = sorted(done_shard_indices(root) if indices is None else indices)
    with ThreadPoolExecutor(max(1, min(_CHECK_THREADS, len(indices)))) as pool:
        results = list(pool.map(lambda i: shard_problem(root, i, verify), indices))
    check = ShardCheck(checked=len(indices))
    for index, (problem, has_sizes) in zip(indices, results, strict=True):
        if problem:
            check.damaged[index] = problem
        elif not has_sizes:
            check.unrecorded.append(index)
    return check


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
        triplets = read_table(layout.data_path(root, index), columns=["clip_id"]).num_rows
    reasons = stats.get("failures_by_reason")
    if reasons is None:
        reasons = Counter(str(row["reason"]) for row in read_failures(root, index))
    return int(triplets), {str(k): int(v) for k, v in reasons.items()}


def collect_totals(root: str | os.PathLike) -> RunTotals:
    """Sum the stats files of every finished shard of ``root`` (one listing, one read per finished shard): what the
    output holds, whoever wrote it (listings a store's filesystem cached earlier in this process are dropped)."""
    root = storage.as_path(root)
    storage.forget_listings(
        root
    )  # count what the output holds now, also what other processes and nodes wrote
    manifest = read_json(root / layout.MANIFEST_FILE) or {}
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
    totals.shards_pending = sum(1 for index in started - done if layout.data_path(root, index).is_file())
    # The schema's order of reasons, then any others.
    totals.failures_by_reason = {r: reasons[r] for r in schema.FAILURE_REASONS if reasons.get(r)}
    totals.failures_by_reason.update(
        {r: n for r, n in sorted(reasons.items()) if r not in schema.FAILURE_REASONS}
    )
    totals.stats_sums = dict(sums)
    totals.seconds = {k.removeprefix("seconds."): v for k, v in sums.items() if k.startswith("seconds.")}
    return totals
