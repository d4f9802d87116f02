"""Where a triplet dataset's rows live: its Parquet files, their row groups, and the rows a config keeps.

Training reads a generation output in place instead of copying it into the ``datasets`` cache. This module
turns one ``--dataset`` argument (a local folder, a Hub dataset id, or an fsspec URL such as ``s3://`` or
``file://``, each with an optional config) into a :class:`BlockIndex`: for every Parquet row group that holds
kept rows, the file, the row group number and the kept rows' offsets inside it. Building it reads the Parquet
footers and, for a config, only the columns its row filter names (``clap_score``, ``clip_id``,
``sample_key``): a few bytes per clip, never the media. A config's filter is the one ``load_dataset`` applies
(the card's YAML ``configs:``), evaluated by the same pyarrow engine, so the rows and their order match
``load_dataset(DIR, config)``.

A row's *global index* counts kept rows in file order, row-group order, row order, over the ``--dataset``
arguments in order: the index ``load_dataset`` + ``concatenate_datasets`` would give the same row.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq

from avt_core.errors import UsageError
from avt_data.rows import DatasetSpec, require_columns
from avt_triplets import layout
from avt_triplets.shards import naming_damaged_file

logger = logging.getLogger(__name__)

ROW_COLUMN = "__avt_row"  # scratch column numbering a file's rows while its filter is evaluated
SCAN_THREADS = 16  # footers are small reads; on object stores they are latency-bound
DAMAGED_HINT = "if it is an avt generation output, rerun the `avt generate` command that made it (it redoes a damaged shard)"


class NotParquetError(ValueError):
    """The dataset's data files are not Parquet: it can only be read through the ``datasets`` cache."""


class NoSuchSplitError(UsageError, ValueError):
    """The dataset has no such split: a usage error, and a ``ValueError`` as ``datasets``' own "Unknown split" is,
    so callers that treat a missing optional split (fine-tuning's eval split) keep working."""


@dataclass(frozen=True)
class ParquetSource:
    """One ``--dataset`` argument resolved: its Parquet files (paths or URLs) and its config's row filter."""

    name: str
    files: list[str]
    filters: Any = None
    storage_options: dict[str, Any] = field(default_factory=dict)


def is_url(path: str) -> bool:
    return "://" in path


def resolve_source(
    spec: str | DatasetSpec, split: str = "train", storage_options: dict[str, Any] | None = None
) -> ParquetSource:
    """Files and row filter of ``spec`` for ``split``: the card's config for a URL, datasets' own resolution
    (``load_dataset_builder``: card configs, Hub revisions, file-name split inference) for a folder or Hub id.
    ``load_dataset_builder`` reads the card only; nothing is downloaded or prepared."""
    spec = spec if isinstance(spec, DatasetSpec) else DatasetSpec.parse(spec)
    options = dict(storage_options or {})
    if is_url(spec.path):
        files, filters = _resolve_url(spec, split, options)
    else:
        files, filters = _resolve_with_datasets(spec, split, options)
    parquet = [f for f in files if layout.is_parquet(f.split("::")[0])]
    if not parquet or len(parquet) != len(files):
        raise NotParquetError(f"dataset {spec}: data files are not all Parquet ({files[:3]} ...)")
    return ParquetSource(name=str(spec), files=parquet, filters=filters or None, storage_options=options)


def _resolve_with_datasets(spec: DatasetSpec, split: str, options: dict[str, Any]):
    import datasets

    try:
        builder = datasets.load_dataset_builder(spec.path, spec.config, storage_options=options or None)
    except FileNotFoundError as error:  # also the Hub's DatasetNotFoundError
        raise UsageError(f"dataset {spec}: {error}") from None
    except ValueError as error:
        if spec.config is None or "BuilderConfig" not in str(error):
            raise
        available = str(error).partition("Available:")[2].strip() or "none"
        raise UsageError(
            f"dataset {spec}: no config {spec.config!r} (it has {available}); `avt filter {spec.path} --top K` or "
            "`--random K` adds top/random configs to a generation output"
        ) from None
    data_files = builder.config.data_files or {}
    if split not in data_files:
        raise NoSuchSplitError(f"dataset {spec} has no split {split!r} (has {sorted(data_files)})")
    return list(data_files[split]), getattr(builder.config, "filters", None)


def _resolve_url(spec: DatasetSpec, split: str, options: dict[str, Any]):
    """The card's YAML ``configs:`` of a dataset folder behind an fsspec URL (what the Hub and
    ``load_dataset`` read for a folder), or datasets' default file patterns when it has no card."""
    import fsspec
    from datasets import DownloadConfig
    from datasets.data_files import DataFilesDict, get_data_patterns, sanitize_patterns
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard, DatasetCardData

    root = spec.path.rstrip("/")
    fs, fs_root = fsspec.core.url_to_fs(root, **options)
    card_path = f"{fs_root}/{layout.CARD_FILE}"
    card_data = (
        DatasetCard(fs.cat_file(card_path).decode()).data if fs.isfile(card_path) else DatasetCardData()
    )
    configs = MetadataConfigs.from_dataset_card_data(card_data)
    protocol = root.split("://", 1)[0]
    download_config = DownloadConfig(storage_options={protocol: options})
    filters = None
    if configs:
        name = spec.config or configs.get_default_config_name() or next(iter(configs))
        if name not in configs:
            raise UsageError(f"dataset {spec}: no config {name!r} in its card (has {sorted(configs)})")
        patterns = sanitize_patterns(configs[name]["data_files"])
        filters = configs[name].get("filters")
    elif spec.config:
        raise UsageError(f"dataset {spec}: config {spec.config!r} given but {root} has no card with configs")
    else:
        patterns = get_data_patterns(root, download_config=download_config)
    data_files = DataFilesDict.from_patterns(patterns, base_path=root, download_config=download_config)
    if split not in data_files:
        raise NoSuchSplitError(f"dataset {spec} has no split {split!r} (has {sorted(data_files)})")
    return list(data_files[split]), filters


# --------------------------------------------------------------------------------------------------
# Opening files
# --------------------------------------------------------------------------------------------------


def reading(url: str):
    """Errors of reading the Parquet file ``url`` (truncated, garbled, deleted) as one ``error:`` line naming it."""
    return naming_damaged_file(url, DAMAGED_HINT)


# Local files are read through a buffered stream of this many bytes instead of one whole column chunk at a time:
# a read's transient memory is the table it returns plus this, not twice the row group.
READ_BUFFER_BYTES = 1 << 20


def open_parquet(url: str, storage_options: dict[str, Any] | None = None) -> pq.ParquetFile:
    """A ``ParquetFile`` over a local path or any fsspec URL (``hf://``, ``s3://``, ``file://``, ...); a damaged
    file is a one-line :class:`~avt_triplets.shards.DamagedOutputError` naming it.

    An open file keeps no data between reads (a reader keeps up to ``MAX_OPEN_FILES`` open: with pyarrow's
    default ``pre_buffer``, each one held the raw bytes of the last row group it read, a second copy of them).
    Local files are read without pre-buffering, through a ``READ_BUFFER_BYTES`` stream; remote files are opened
    without fsspec's read-ahead cache and keep ``pre_buffer`` (it coalesces one row group's column chunks into a few large
    requests), each read going through a fresh reader over the same open file and footer
    (:class:`DetachedReadsParquetFile`).
    """
    with reading(url):
        return _open_parquet(url, storage_options)


def _open_parquet(url: str, storage_options: dict[str, Any] | None) -> pq.ParquetFile:
    if not is_url(url):
        return pq.ParquetFile(url, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if isinstance(fs, LocalFileSystem):
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    return DetachedReadsParquetFile(fs.open(path, "rb", cache_type="none"))


class DetachedReadsParquetFile(pq.ParquetFile):
    """A pre-buffered ``ParquetFile`` whose reads leave nothing in it: pyarrow keeps a pre-buffered read's byte
    ranges in the reader until its next read, so every read uses a short-lived reader over the same open file
    and the footer already parsed (no request, no parsing)."""

    def __init__(self, source: Any):
        super().__init__(source, pre_buffer=True)
        self._source = source

    def _detached(self) -> pq.ParquetFile:
        return pq.ParquetFile(self._source, metadata=self.metadata, pre_buffer=True)

    def read_row_group(self, i, columns=None, use_threads=True, use_pandas_metadata=False):
        return self._detached().read_row_group(i, columns, use_threads, use_pandas_metadata)

    def read_row_groups(self, row_groups, columns=None, use_threads=True, use_pandas_metadata=False):
        return self._detached().read_row_groups(row_groups, columns, use_threads, use_pandas_metadata)

    def read(self, columns=None, use_threads=True, use_pandas_metadata=False):
        return self._detached().read(columns, use_threads, use_pandas_metadata)


# --------------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------------


@dataclass
class BlockIndex:
    """Kept rows grouped by Parquet row group ("blocks"), in global-index order.

    Block ``b`` is row group ``block_row_group[b]`` of file ``files[block_file[b]]``; it holds global indices
    ``block_starts[b] .. block_starts[b + 1] - 1``, whose row offsets inside the row group are ``row_offsets``.
    About 4 bytes per clip plus 16 per row group: small next to one clip's media.
    """

    files: list[str]
    storage_options: list[dict[str, Any]]
    column_names: list[str]  # the columns asked for (all the files' common ones when none were)
    available_columns: list[str]  # every column all the files have
    block_file: np.ndarray
    block_row_group: np.ndarray
    block_starts: np.ndarray
    block_file_row: np.ndarray  # first row of the block's row group inside its file
    row_offsets: np.ndarray
    parts: list[tuple[str, int]]  # (dataset name, kept rows) per --dataset, in order

    def __len__(self) -> int:
        return int(self.block_starts[-1])

    def blocks_of(self, indices: np.ndarray) -> np.ndarray:
        """Block of each global index."""
        return np.searchsorted(self.block_starts, indices, side="right") - 1

    @classmethod
    def concatenate(cls, indexes: list[BlockIndex]) -> BlockIndex:
        """One index over several datasets, global indices continuing in order; columns common to all."""
        first = indexes[0]
        columns = [c for c in first.column_names if all(c in i.column_names for i in indexes)]
        available = [c for c in first.available_columns if all(c in i.available_columns for i in indexes)]
        file_offsets = np.cumsum([0] + [len(i.files) for i in indexes])
        row_offsets = np.cumsum([0] + [len(i) for i in indexes])
        starts = [i.block_starts[:-1] + row_offsets[n] for n, i in enumerate(indexes)] + [row_offsets[-1:]]
        return cls(
            files=[f for i in indexes for f in i.files],
            storage_options=[o for i in indexes for o in i.storage_options],
            column_names=columns,
            available_columns=available,
            block_file=np.concatenate([i.block_file + file_offsets[n] for n, i in enumerate(indexes)]),
            block_row_group=np.concatenate([i.block_row_group for i in indexes]),
            block_starts=np.concatenate(starts).astype(np.int64),
            block_file_row=np.concatenate([i.block_file_row for i in indexes]),
            row_offsets=np.concatenate([i.row_offsets for i in indexes]),
            parts=[p for i in indexes for p in i.parts],
        )


def filter_columns(filters: Any) -> list[str]:
    """Column names a DNF filter (``[[[col, op, value], ...], ...]`` or one conjunction) compares."""
    names: list[str] = []

    def visit(node: Any) -> None:
        if (
            isinstance(node, list | tuple)
            and len(node) == 3
            and isinstance(node[0], str)
            and isinstance(node[1], str)
        ):
            if node[0] not in names:
                names.append(node[0])
        elif isinstance(node, list | tuple):
            for child in node:
                visit(child)

    visit(filters)
    return names


@dataclass
class _FileScan:
    column_names: list[str]
    row_group_sizes: list[int]
    kept: np.ndarray | None  # kept row positions in the file; None = every row


def _scan_file(url: str, options: dict[str, Any], filters: Any) -> _FileScan:
    parquet = open_parquet(url, options)
    names = parquet.schema_arrow.names
    sizes = [parquet.metadata.row_group(g).num_rows for g in range(parquet.metadata.num_row_groups)]
    kept = None
    if filters:
        columns = filter_columns(filters)
        missing = [c for c in columns if c not in names]
        if missing:
            raise UsageError(f"{url}: the config's row filter needs column(s) {missing} the file lacks")
        with reading(url):
            table = parquet.read(columns=columns)
        table = table.append_column(ROW_COLUMN, pa.array(np.arange(table.num_rows, dtype=np.int64)))
        expression = pq.filters_to_expression(filters)
        kept_table = pa_ds.dataset(table).to_table(filter=expression, columns=[ROW_COLUMN])
        kept = kept_table.column(ROW_COLUMN).to_numpy()
    return _FileScan(names, sizes, kept)


def build_index(source: ParquetSource, columns: list[str] | tuple[str, ...] | None = None) -> BlockIndex:
    """Scan the footers (and filter columns) of ``source``'s files in parallel into a :class:`BlockIndex`.

    ``columns`` must exist in every file: a dataset missing one (e.g. a metadata-only export without
    ``audio`` / ``frames``) is a clear error naming it, before anything is trained.
    """
    threads = max(1, min(SCAN_THREADS, len(source.files)))
    with ThreadPoolExecutor(threads) as pool:
        scans = list(pool.map(lambda f: _scan_file(f, source.storage_options, source.filters), source.files))
    if not scans:
        raise UsageError(f"dataset {source.name}: no data file")
    common = [c for c in scans[0].column_names if all(c in s.column_names for s in scans)]
    require_columns(source.name, common, columns or ())
    block_file, block_row_group, block_file_row, counts, offsets = [], [], [], [], []
    for file_number, scan in enumerate(scans):
        starts = np.concatenate([[0], np.cumsum(scan.row_group_sizes)]).astype(np.int64)
        kept = np.arange(starts[-1], dtype=np.int64) if scan.kept is None else np.sort(scan.kept)
        group_of_row = np.searchsorted(starts, kept, side="right") - 1
        groups, group_counts = np.unique(group_of_row, return_counts=True)
        block_file += [file_number] * len(groups)
        block_row_group += groups.tolist()
        block_file_row += starts[groups].tolist()
        counts += group_counts.tolist()
        offsets.append((kept - starts[group_of_row]).astype(np.int32))
    total = int(sum(counts))
    logger.info(
        "dataset %s: %d rows kept in %d row groups of %d file(s), read in place",
        source.name, total, len(counts), len(source.files),
    )  # fmt: skip
    return BlockIndex(
        files=list(source.files),
        storage_options=[source.storage_options] * len(source.files),
        column_names=list(columns) if columns else common,
        available_columns=common,
        block_file=np.asarray(block_file, dtype=np.int32),
        block_row_group=np.asarray(block_row_group, dtype=np.int32),
        block_starts=np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64),
        block_file_row=np.asarray(block_file_row, dtype=np.int64),
        row_offsets=np.concatenate(offsets) if offsets else np.zeros(0, np.int32),
        parts=[(source.name, total)],
    )
