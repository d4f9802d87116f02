"""The on-disk layout of a generation output: its folder and file names, the shard-name pattern, the globs and
the parsing of names, and the Parquet row-group policy (docs/architecture.md, "A generation output on disk").

The one owner of the format: the writer (:mod:`avt_triplets.shards`, :mod:`avt_triplets.stages.writer`), every
reader (:mod:`~avt_triplets.shards`, :mod:`~avt_triplets.selection`, :mod:`~avt_triplets.dataset_card`,
:mod:`~avt_triplets.publish`, :mod:`builders.avt_triplets`) and :mod:`avt_data` take names from here, so changing the format is a change of this
file (``tests/repository/test_layout_owner.py`` fails on a second copy of the shard-name pattern). The row
columns are :mod:`avt_triplets.schema`'s.

::

    DIR/README.md                     dataset card; its YAML ``configs`` make ``load_dataset(DIR[, cfg])`` work
    DIR/manifest.json                 the run's options and input list digest (a rerun must match them)
    DIR/data/shard-00000.parquet      triplet rows of shard 0 (written atomically)
    DIR/failures/shard-00000.parquet  clips of shard 0 that could not be used: clip_id, video_path, reason, detail
    DIR/stats/shard-00000_stats.json  written last and atomically: the shard is done once it exists (it records
                                      each file's size and sha256; a shard whose files differ is redone)
    DIR/subsets.json                  the top-k / random-k configs written by ``avt filter``
    DIR/.parts/shard-00000/<chunk>.parquet + <chunk>.json
                                      finished chunks of an uncommitted shard (ray distributor; hidden from
                                      load_dataset, removed once the shard is committed)
"""

from __future__ import annotations

import re
from pathlib import Path

from avt_core.storage import as_path

CARD_FILE = "README.md"
MANIFEST_FILE = "manifest.json"
# ``format`` of manifest.json; a folder whose manifest carries it is an avt output avt may write into.
MANIFEST_FORMAT = "avt-triplets/1"
SUBSETS_FILE = "subsets.json"
HISTOGRAM_FILE = "clap_score_hist.png"  # the card's clap_score histogram
DATA_DIR = "data"
FAILURES_DIR = "failures"
STATS_DIR = "stats"
PARTS_DIR = ".parts"
SHARD_FOLDERS = (DATA_DIR, FAILURES_DIR, STATS_DIR)  # the folders whose files belong to shards

PARQUET_SUFFIX = ".parquet"
STATS_SUFFIX = "_stats.json"
PART_RECORD_SUFFIX = ".json"  # a chunk part's record; its existence marks the part finished
_SHARD_PREFIX = "shard-"
_INDEX_DIGITS = 5  # zero-padded, so lexical order is shard order (up to 100 000 shards)
_SHARD_FILE = re.compile(rf"^{_SHARD_PREFIX}(\d+)(?:{re.escape(PARQUET_SUFFIX)}|{re.escape(STATS_SUFFIX)})$")
_DATA_FILE = re.compile(rf"^{_SHARD_PREFIX}(\d+){re.escape(PARQUET_SUFFIX)}$")
_STATS_FILE = re.compile(rf"^{_SHARD_PREFIX}(\d+){re.escape(STATS_SUFFIX)}$")

# The data files of every shard, relative to the output root: what a card's config names when every shard is
# finished (stays valid as shards are added).
DATA_GLOB = f"{DATA_DIR}/*{PARQUET_SUFFIX}"

# Rows per Parquet row group (~16 MB at paper clip size: 10 JPEGs + 10 s WAV). The training sampler's contract
# (avt_data/block_sampler.py, avt_data/parquet_rows.py): a row group is the unit a reader fetches and the block
# the epoch order shuffles; a shuffle window (``--shuffle-window``, default ``block_sampler.DEFAULT_WINDOW`` = 512
# rows) mixes window / ROW_GROUP_ROWS row groups (16) into its batches, and a reader holds two windows plus two
# row groups in memory (``BlockShuffleSampler.cache_rows``). Smaller groups mix batches from more places and keep
# a batch's reads small; larger ones mix less and hold more. Outputs written with other sizes (datasets' default
# of 100 rows) still read: the sampler takes whatever row groups the footers list.
ROW_GROUP_ROWS = 32


def shard_name(index: int) -> str:
    """File stem of shard ``index``."""
    return f"{_SHARD_PREFIX}{index:0{_INDEX_DIGITS}d}"


def data_path(root: str | Path, index: int) -> Path:
    return as_path(root) / DATA_DIR / f"{shard_name(index)}{PARQUET_SUFFIX}"


def failures_path(root: str | Path, index: int) -> Path:
    return as_path(root) / FAILURES_DIR / f"{shard_name(index)}{PARQUET_SUFFIX}"


def stats_path(root: str | Path, index: int) -> Path:
    return as_path(root) / STATS_DIR / f"{shard_name(index)}{STATS_SUFFIX}"


def shard_paths(root: str | Path, index: int) -> tuple[Path, Path, Path]:
    """Data, failures and stats file of shard ``index``, in the order they are written (stats last)."""
    return data_path(root, index), failures_path(root, index), stats_path(root, index)


def parts_dir(root: str | Path, index: int) -> Path:
    """Where the finished chunks of shard ``index`` wait for the shard's commit."""
    return as_path(root) / PARTS_DIR / shard_name(index)


def part_paths(root: str | Path, shard: int, chunk_key: str) -> tuple[Path, Path]:
    """The rows and the record (written last) of a finished chunk of ``shard``."""
    folder = parts_dir(root, shard)
    return folder / f"{chunk_key}{PARQUET_SUFFIX}", folder / f"{chunk_key}{PART_RECORD_SUFFIX}"


def finished_part_keys(names: list[str]) -> set[str]:
    """Chunk keys of the finished parts among the names of one shard's parts folder (those with a record)."""
    return {n.removesuffix(PART_RECORD_SUFFIX) for n in names if n.endswith(PART_RECORD_SUFFIX)}


def chunk_key(shard: int, start: int, clips: int, digest: str) -> str:
    """Name of a chunk's part files: its shard, its first clip's position in the shard, its size and a digest."""
    return f"{shard_name(shard)}-{start:06d}-{clips:06d}-{digest}"


def shard_file_index(name: str) -> int | None:
    """Shard of a data, failures or stats file name (``shard-00012.parquet``, ``shard-00012_stats.json``); None
    for any other name (temporaries, foreign files)."""
    match = _SHARD_FILE.match(name)
    return int(match.group(1)) if match else None


def stats_file_index(name: str) -> int | None:
    """Shard of a stats file name, else None: what marks a shard done."""
    match = _STATS_FILE.match(name)
    return int(match.group(1)) if match else None


def data_file_index(name: str) -> int | None:
    """Shard of a data file name (``shard-00012.parquet``), else None."""
    match = _DATA_FILE.match(name)
    return int(match.group(1)) if match else None


def looks_like_data_file(name: str) -> bool:
    """A name in the data folder that a reader counts as a shard (finished or not), parsable or not."""
    return name.startswith(_SHARD_PREFIX) and name.endswith(PARQUET_SUFFIX)


def is_parquet(name: str) -> bool:
    return name.endswith(PARQUET_SUFFIX)


def relative_name(path: Path) -> str:
    """``data/shard-00000.parquet``: a shard file's name relative to the output root, as its stats record it."""
    return f"{path.parent.name}/{path.name}"


def shard_temporaries_glob(index: int) -> str:
    """Temporaries a writer of shard ``index`` leaves in a shard folder (:func:`avt_core.storage.temporary_path`)."""
    return f".{shard_name(index)}*.tmp"
