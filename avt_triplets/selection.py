"""Choosing captions and clips: the best caption per clip, and top-k% / random-k% subsets.

A subset is a *view* over a generation output, never a copy of its media. It is recorded as a
Parquet row filter in disjunctive normal form (the ``filters`` argument of ``pyarrow.parquet`` and
of datasets' Parquet builder), so the dataset card's YAML ``configs:`` can pass it straight to
``load_dataset(DIR, "top30")`` with no custom code, and the Hub reads it back the same way.

Why filters and not clip-id lists: a filter is a handful of numbers whatever the dataset size.

- ``top{k}``: rank clips by ``clap_score`` descending, ties by ``clip_id`` ascending, keep the first
  ``n = round_half_up(k% · N)``. With ``t`` the score and ``c`` the clip id of the n-th clip, that set
  is exactly ``clap_score > t  OR  (clap_score == t AND clip_id <= c)``: the clips at or above ``t``,
  the dataset's (1 − k/100) quantile, ties at ``t`` cut by clip id (docs/architecture.md's subset contract).
  ``top{k}_{column}`` is the same rule on another numeric column (``avt filter --by audio_caption_score``).
- ``random{k}``: every row carries ``sample_key``, a uniform float in [0, 1) hashed from its clip id
  (:func:`sample_key`, written at generation time). The seed picks a start point ``u`` on the
  circle [0, 1); the sample is the ``n`` clips that follow ``u`` in circular ``sample_key`` order
  (ties by ``clip_id``). That set is again a two- or three-term filter on (``sample_key``,
  ``clip_id``), exact and constant-size at any N. Because the key is a hash of the clip id, the
  sample is independent of content and score; each clip is in it with probability k%, and two
  seeds give different samples. Outputs without a ``sample_key`` column (older runs) fall back to
  an exact ``clip_id in [...]`` list, which is fine for small sets and warned about for large ones.

Only shards whose stats file exists (finished shards) take part; the others are left out with a
warning, and the subset records the exact list of files it was computed over.

A labelled-only output (``avt generate --captioner none``) has no ``clap_score``: nothing ranks its clips, so
``top{k}`` is refused (:class:`NoScoresError`), while ``random{k}`` (keyed on ``sample_key`` alone) still works,
e.g. to draw a fixed-size, seeded training subset of a labelled set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from avt_core import storage
from avt_core.atomic import atomic_write_bytes
from avt_core.errors import UsageError
from avt_triplets import layout, shards

logger = logging.getLogger(__name__)

SCORE_COLUMN = "clap_score"
ID_COLUMN = "clip_id"
SAMPLE_KEY_COLUMN = "sample_key"
SUBSETS_FORMAT_VERSION = 1
DEFAULT_TOP = (10, 30, 50)
DEFAULT_RANDOM = (10, 30, 50)
# Above this many ids an ``in`` list makes the card's YAML heavy; we still write it but warn.
LARGE_ID_LIST = 20_000

Filters = list[list[list[Any]]]


def is_empty_caption(text: str) -> bool:
    """A caption without a letter or digit ("", "...", whitespace): what a broken captioner (NaN weights, one that
    only emits end-of-sequence or special tokens) produces. It describes nothing, so it is never a clip's caption."""
    return not any(character.isalnum() for character in text)


def best_caption(scores: Sequence[float]) -> int:
    """Index of the highest score; the first one on ties (LG-CAV-MAE §2.3 step 4)."""
    if len(scores) == 0:
        raise ValueError("best_caption needs at least one score")
    values = np.asarray(scores, dtype=np.float64)
    if np.isnan(values).all():
        raise ValueError("every caption score is NaN")
    return int(np.nanargmax(values))


def sample_key(clip_id: str) -> float:
    """Uniform float in [0, 1) hashed from ``clip_id`` (53 bits of BLAKE2b); the random-k% key.

    Stable across runs, machines and Python versions, so random subsets are reproducible.
    """
    digest = hashlib.blake2b(clip_id.encode("utf-8"), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def seed_offset(seed: int) -> float:
    """Start point on the [0, 1) circle for random subsets drawn with ``seed``."""
    return sample_key(f"avt-random-subset-seed:{int(seed)}")


def subset_size(k: float, total: int) -> int:
    """``round(k% · total)``, halves rounded up, computed exactly (no float surprises)."""
    if not 0 < k <= 100:
        raise ValueError(f"k must be a percentage in (0, 100], got {k}")
    exact = Fraction(str(k)) * total / 100
    return int(math.floor(exact + Fraction(1, 2)))


def subset_name(kind: str, k: float, by: str = SCORE_COLUMN) -> str:
    """Config name of a subset: ``top30``, ``random10``, ``top2.5``; a top-k ranked by another score column
    carries its name (``top30_audio_caption_score``), so subsets of several columns live side by side."""
    k_text = f"{k:g}"
    return f"{kind}{k_text}" if by == SCORE_COLUMN else f"{kind}{k_text}_{by}"


def rank_columns(column_types: dict[str, pa.DataType]) -> list[str]:
    """The columns a top-k can rank by: every numeric column but the subset keys (``sample_key``)."""
    numeric = (pa.types.is_integer, pa.types.is_floating)
    return [
        name
        for name, kind in column_types.items()
        if name not in (SAMPLE_KEY_COLUMN,) and any(is_kind(kind) for is_kind in numeric)
    ]


def check_rank_column(root: str | Path, by: str) -> None:
    """``avt filter --by``: the column exists in the finished shards and holds one number per clip; one line
    naming the columns that would do otherwise (nothing is read but a footer)."""
    files = done_shards(root, warn=False)
    if not files:
        return  # no finished row: nothing to rank, the subsets come out empty
    arrow_schema = shards.read_schema(files[0])
    types = {name: arrow_schema.field(name).type for name in arrow_schema.names}
    usable = ", ".join(rank_columns(types)) or "none"
    if by not in types:
        raise UsageError(f"--by {by}: no such column in {root} (numeric columns there: {usable})")
    if by not in rank_columns(types):
        raise UsageError(
            f"--by {by}: the column holds {types[by]}, not one number per clip (numeric columns there: {usable})"
        )


# ----------------------------------------------------------------------------------------------
# Reading the scores of a generation output


def split_done_shards(root: str | Path) -> tuple[list[Path], list[Path]]:
    """Data files of finished shards (stats file exists) and of unfinished ones, in shard order."""
    root = storage.as_path(root)
    done: list[Path] = []
    pending: list[Path] = []
    finished = shards.done_shard_indices(root)  # one listing, not a look-up per shard
    names = sorted(n for n in storage.names(root / layout.DATA_DIR) if layout.looks_like_data_file(n))
    for name in names:
        index = layout.data_file_index(name)
        (done if index is not None and index in finished else pending).append(root / layout.DATA_DIR / name)
    return done, pending


def done_shards(root: str | Path, warn: bool = True) -> list[Path]:
    """Data files of the finished shards; warns about the unfinished ones it leaves out."""
    done, pending = split_done_shards(root)
    if pending and warn:
        names = ", ".join(p.name for p in pending[:5]) + (" ..." if len(pending) > 5 else "")
        warnings.warn(
            f"{len(pending)} shard(s) in {storage.as_path(root) / layout.DATA_DIR} have no stats file yet (unfinished) "
            f"and are left out: {names}",
            stacklevel=2,
        )
    return done


class NoScoresError(UsageError, ValueError):
    """A top-k subset asked of rows without ``clap_score`` (a ``--captioner none`` output)."""


@dataclass
class ScoreTable:
    """``clip_id``, ``clap_score`` (absent in a labelled-only output), the other score columns asked for and, when
    present, ``sample_key`` of every finished row."""

    table: pa.Table
    files: list[Path]

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    @property
    def has_sample_key(self) -> bool:
        return SAMPLE_KEY_COLUMN in self.table.column_names

    @property
    def has_scores(self) -> bool:
        return SCORE_COLUMN in self.table.column_names

    def has(self, column: str) -> bool:
        return column in self.table.column_names


def read_scores(
    root: str | Path, files: Iterable[Path] | None = None, score_columns: Iterable[str] = ()
) -> ScoreTable:
    """Read only the id / score / key columns of the finished shards (Parquet column projection);
    ``score_columns`` are the columns ranked besides ``clap_score`` (``avt filter --by``).

    At 1M clips this touches a few tens of MB, not the media. Shards without ``clap_score`` (all of them, in
    a ``--captioner none`` output) give a table without it.
    """
    files = done_shards(root) if files is None else [storage.as_path(f) for f in files]
    ranked = tuple(dict.fromkeys((SCORE_COLUMN, *score_columns)))
    tables = []
    for data_file in files:
        available = set(shards.read_schema(data_file).names)
        if ID_COLUMN not in available:
            raise ValueError(f"{data_file} lacks the column {ID_COLUMN!r}; is it a triplet shard?")
        wanted = (ID_COLUMN, *ranked, SAMPLE_KEY_COLUMN)
        tables.append(shards.read_table(data_file, columns=[c for c in wanted if c in available]))
    if not tables:
        empty = {ID_COLUMN: pa.array([], pa.string())} | {c: pa.array([], pa.float32()) for c in ranked}
        return ScoreTable(pa.table(empty), [])
    if len({tuple(t.column_names) for t in tables}) > 1:
        # Mixed old/new shards: only some carry sample_key, so random subsets use id lists.
        common = [c for c in tables[0].column_names if all(c in t.column_names for t in tables)]
        for column in ranked:
            if column not in common and any(column in t.column_names for t in tables):
                raise ValueError(f"some finished shards have {column} and others do not: a mixed output")
        tables = [t.select([c for c in common if c != SAMPLE_KEY_COLUMN]) for t in tables]
    table = pa.concat_tables(tables, promote_options="permissive")
    ids = table.column(ID_COLUMN)
    if pc.count_distinct(ids).as_py() != table.num_rows:
        raise ValueError(
            "clip_id is not unique across the finished shards; refusing to rank an ambiguous set"
        )
    return ScoreTable(table, files)


# ----------------------------------------------------------------------------------------------
# Subsets


@dataclass
class Subset:
    """One top-k% or random-k% view: its size, how it was drawn, and the row filter that reads it."""

    name: str
    kind: str  # "top" | "random"
    k: float
    size: int
    total: int
    filters: Filters
    seed: int | None = None
    threshold: dict[str, Any] = field(default_factory=dict)
    by: str = SCORE_COLUMN  # the column a top-k ranks by (subsets.json before `--by`: clap_score)

    def describe(self, ties: bool = True) -> str:
        """How the rows were chosen, for people (the filter command's table and the dataset card)."""
        if self.kind == "top" and self.size:
            rule = f"{self.by} >= {self.threshold[self.by]:.4f}"
            return f"{rule} (ties by clip_id)" if ties else rule
        if self.kind == "random":
            return f"seed {self.seed}"
        return "empty"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Subset:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


# A filter that matches no row (an empty subset, e.g. 10% of 4 clips): a contradiction on clip_id
# (an empty ``in`` list has no type and pyarrow refuses it).
MATCH_NOTHING: Filters = [[[ID_COLUMN, "==", ""], [ID_COLUMN, "!=", ""]]]


def _valid_scores(scores: ScoreTable, by: str = SCORE_COLUMN) -> pa.Table:
    """Rows with a finite score in ``by``; NaN / null scores cannot be ranked and are left out with a warning.
    Rows of a labelled-only output (no scores at all) are all valid for random subsets."""
    table = scores.table
    if not scores.has(by):
        return table
    values = table.column(by)
    finite = pc.is_valid(values)
    if pa.types.is_floating(values.type):
        finite = pc.and_(finite, pc.invert(pc.is_nan(values)))
    kept = table.filter(pc.fill_null(finite, False))
    if kept.num_rows != table.num_rows:
        warnings.warn(
            f"{table.num_rows - kept.num_rows} row(s) have a NaN or missing {by} and are never selected",
            stacklevel=3,
        )
    return kept


def _nth_in_order(values: np.ndarray, ids: pa.ChunkedArray | pa.Array, n: int) -> tuple[Any, str]:
    """Value and clip id of the n-th row (1-based) in ascending (value, clip_id) order.

    O(N) with a partition instead of a full sort; only the rows tied with the boundary value are
    sorted by clip id, so 1M clips take well under a second.
    """
    boundary = np.partition(values, n - 1)[n - 1]
    before = int(np.count_nonzero(values < boundary))
    tied = np.flatnonzero(values == boundary)
    tied_ids = ids.take(pa.array(tied))
    tied_sorted = tied_ids.take(pc.array_sort_indices(tied_ids))
    return boundary, str(tied_sorted[n - before - 1].as_py())


def select_top(scores: ScoreTable, k: float, by: str = SCORE_COLUMN) -> Subset:
    """The top k% by ``by`` (``clap_score``, or another score column; ties by ``clip_id``); exactly
    ``round(k% · N)`` rows."""
    if not scores.has(by):
        if by != SCORE_COLUMN:
            raise UsageError(f"top{k:g} ranks clips by {by}, and these rows have no such column")
        raise NoScoresError(
            f"top{k:g} ranks clips by clap_score, and these rows have none (made with `avt generate "
            "--captioner none`: labelled clips without captions); random-k subsets still work (--random K)"
        )
    table = _valid_scores(scores, by)
    total = table.num_rows
    size = subset_size(k, total)
    name = subset_name("top", k, by)
    if size == 0:
        return Subset(name, "top", k, 0, total, MATCH_NOTHING, by=by)
    # float32 as the scores are stored (an integer column ranks the same way in float64)
    stored = np.float32 if pa.types.is_floating(table.column(by).type) else np.float64
    values = table.column(by).to_numpy().astype(stored, copy=False)
    negated, c = _nth_in_order(-values, table.column(ID_COLUMN), size)
    t = float(-negated)
    if pa.types.is_integer(table.column(by).type):
        t = int(t)
    filters: Filters = [
        [[by, ">", t]],
        [[by, "==", t], [ID_COLUMN, "<=", c]],
    ]
    return Subset(name, "top", k, size, total, filters, threshold={by: t, ID_COLUMN: c}, by=by)


def select_random(scores: ScoreTable, k: float, seed: int = 0) -> Subset:
    """A seeded random k% of the clips, the same size as ``top{k}`` (see the module docstring)."""
    table = _valid_scores(scores)
    total = table.num_rows
    size = subset_size(k, total)
    name = subset_name("random", k)
    if size == 0:
        return Subset(name, "random", k, 0, total, MATCH_NOTHING, seed=seed)
    if SAMPLE_KEY_COLUMN not in table.column_names:
        return _select_random_by_ids(table, k, seed, size, name)
    start = seed_offset(seed)
    keys = table.column(SAMPLE_KEY_COLUMN).to_numpy().astype(np.float64, copy=False)
    ids = table.column(ID_COLUMN)
    after = keys >= start  # circular order: [start, 1) first, then [0, start)
    num_after = int(np.count_nonzero(after))
    if size <= num_after:
        t, c = _nth_in_order(keys[after], ids.filter(pa.array(after)), size)
    else:
        t, c = _nth_in_order(keys[~after], ids.filter(pa.array(~after)), size - num_after)
    t = float(t)
    boundary = [[SAMPLE_KEY_COLUMN, "==", t], [ID_COLUMN, "<=", c]]
    if t >= start:  # the window [start, t] does not wrap
        filters: Filters = [[[SAMPLE_KEY_COLUMN, ">=", start], [SAMPLE_KEY_COLUMN, "<", t]], boundary]
    else:  # it wraps: [start, 1) then [0, t]
        filters = [[[SAMPLE_KEY_COLUMN, ">=", start]], [[SAMPLE_KEY_COLUMN, "<", t]], boundary]
    threshold = {"start": start, SAMPLE_KEY_COLUMN: t, ID_COLUMN: c}
    return Subset(name, "random", k, size, total, filters, seed=seed, threshold=threshold)


def _select_random_by_ids(table: pa.Table, k: float, seed: int, size: int, name: str) -> Subset:
    """Fallback for outputs without ``sample_key``: a seeded sample written as an ``in`` list."""
    if size > LARGE_ID_LIST:
        warnings.warn(
            f"{name}: the shards have no '{SAMPLE_KEY_COLUMN}' column, so the subset is stored as a list of "
            f"{size} clip ids; regenerate with a current avt for a constant-size filter",
            stacklevel=3,
        )
    ids = np.asarray(table.column(ID_COLUMN).to_pylist(), dtype=object)
    ids.sort()  # the draw must not depend on shard order
    rng = np.random.default_rng(seed)
    chosen = sorted(ids[rng.choice(len(ids), size=size, replace=False)].tolist())
    return Subset(name, "random", k, size, len(ids), [[[ID_COLUMN, "in", chosen]]], seed=seed)


def compute_subsets(
    scores: ScoreTable,
    top: Iterable[float] = DEFAULT_TOP,
    random: Iterable[float] = DEFAULT_RANDOM,
    seed: int = 0,
    top_by: dict[str, list[float]] | None = None,
) -> list[Subset]:
    """All requested subsets over one score table: top ones by ``clap_score``, then by each ``top_by`` column,
    then random ones."""
    subsets = [select_top(scores, k) for k in sorted(set(top))]
    for column, ks in sorted((top_by or {}).items()):
        subsets += [select_top(scores, k, column) for k in sorted(set(ks))]
    subsets += [select_random(scores, k, seed) for k in sorted(set(random))]
    return subsets


def subset_clip_ids(scores: ScoreTable, subset: Subset) -> set[str]:
    """The clip ids a subset's filter keeps, evaluated by pyarrow exactly as the Parquet loader does."""
    expression = pq.filters_to_expression(subset.filters)
    kept = ds.dataset(scores.table).to_table(filter=expression, columns=[ID_COLUMN])
    return set(kept.column(ID_COLUMN).to_pylist())


# ----------------------------------------------------------------------------------------------
# subsets.json


@dataclass
class SubsetsFile:
    """Contents of ``subsets.json``: what was asked for, over which files, and the resulting views."""

    seed: int
    top: list[float]
    random: list[float]
    total: int
    data_files: list[str]  # relative to the output root, the finished shards the subsets cover
    excluded_files: list[str]
    subsets: list[Subset]
    version: int = SUBSETS_FORMAT_VERSION
    top_by: dict[str, list[float]] = field(default_factory=dict)  # other score column -> its top k values

    def to_json(self) -> str:
        data = asdict(self)
        data["subsets"] = {s.name: s.to_dict() for s in self.subsets}
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> SubsetsFile:
        data = json.loads(text)
        subsets = [Subset.from_dict(s) for s in data.get("subsets", {}).values()]
        return cls(
            seed=int(data.get("seed", 0)),
            top=list(data.get("top", [])),
            random=list(data.get("random", [])),
            total=int(data.get("total", 0)),
            data_files=list(data.get("data_files", [])),
            excluded_files=list(data.get("excluded_files", [])),
            subsets=subsets,
            version=int(data.get("version", SUBSETS_FORMAT_VERSION)),
            top_by={str(c): list(ks) for c, ks in (data.get("top_by") or {}).items()},
        )

    def get(self, name: str) -> Subset | None:
        return next((s for s in self.subsets if s.name == name), None)


def build_subsets(
    root: str | Path,
    top: Iterable[float] = DEFAULT_TOP,
    random: Iterable[float] = DEFAULT_RANDOM,
    seed: int = 0,
    top_by: dict[str, list[float]] | None = None,
) -> SubsetsFile:
    """Compute the subsets over the finished shards of ``root`` (does not write anything); ``top_by`` holds the
    top-k values of the score columns other than ``clap_score``."""
    root = storage.as_path(root)
    done, pending = split_done_shards(root)
    if pending:
        names = ", ".join(p.name for p in pending[:5]) + (" ..." if len(pending) > 5 else "")
        warnings.warn(
            f"{len(pending)} unfinished shard(s) (no stats file) are left out of the subsets: {names}",
            stacklevel=2,
        )
    top_by = {c: sorted(set(ks)) for c, ks in (top_by or {}).items() if ks}
    scores = read_scores(root, done, score_columns=top_by)
    top, random = sorted(set(top)), sorted(set(random))
    return SubsetsFile(
        seed=int(seed),
        top=top,
        random=random,
        total=scores.num_rows,
        data_files=[f"{layout.DATA_DIR}/{p.name}" for p in done],
        excluded_files=[f"{layout.DATA_DIR}/{p.name}" for p in pending],
        subsets=compute_subsets(scores, top, random, seed, top_by),
        top_by=top_by,
    )


def write_subsets(root: str | Path, subsets: SubsetsFile) -> Path:
    """Write ``subsets.json`` atomically."""
    return atomic_write_bytes(
        storage.as_path(root) / layout.SUBSETS_FILE, (subsets.to_json() + "\n").encode("utf-8")
    )


def read_subsets(root: str | Path) -> SubsetsFile | None:
    """``subsets.json`` of ``root``, or None when ``avt filter`` has not run."""
    path = storage.as_path(root) / layout.SUBSETS_FILE
    if not path.is_file():
        return None
    return SubsetsFile.from_json(path.read_text(encoding="utf-8"))
