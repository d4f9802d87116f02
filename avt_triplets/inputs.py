"""What ``avt generate`` reads: a folder of videos or a CSV/JSONL list, turned into clip specs.

Every rank of a multi-process run lists the same input and gets the same clips in the same order
(sorted), so cutting the list into shards needs no coordination. ``clip_id``, the dataset's key, is the
video's path relative to the input root without its extension (plus ``_{start:06d}`` when a list
names the same file with several windows), or ``{ytid}_{start:06d}`` for VGGSound/AudioSet-style
rows; it must be unique, and duplicates are reported all at once, before any work starts.

List formats (paths relative to the list's folder, or to ``input_root`` when given; the layouts and their
quirks are recognised by :mod:`avt_triplets.list_files`):

- CSV with a header: ``video_path`` (or ``path``), optional ``start_s`` (or ``start``), optional
  ``labels`` (``;``-separated), optional ``clip_id``, optional ``whole_video``; or ``ytid`` (or ``youtube_id``)
  + ``start`` [+ ``end``] rows whose files are found through ``path_template``
  (:mod:`avt_triplets.path_templates`).
- Headerless CSV in VGGSound's own layout: ``ytid,start,label[,split]`` (labels holding commas are quoted),
  and VGGSound's split files ``ytid_start.mp4,label`` (a ``ytid,start`` row, its file found the same way).
- AudioSet's segment lists (``balanced_train_segments.csv``, ``eval_segments.csv``, ...): ``#`` comment lines,
  the last of which is the header ``# YTID, start_seconds, end_seconds, positive_labels``, then rows such as
  ``--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"`` (``positive_labels`` separated by commas); also the
  cleaned copy with a plain ``YTID,start_seconds,end_seconds,positive_labels`` header.
- JSONL: one object per line with the same keys; ``labels`` may be a list or a ``;``-separated string.

Where a clip's window starts: a ``ytid,start`` row names a downloaded clip that already starts at ``start``
(decoded from 0) unless ``trimmed=False`` (``--untrimmed``: the files are whole videos); a ``video_path`` row's
start is a time inside its file. A ``whole_video`` column (true/false) says it per row. Either way the clip keeps
the row's start as ``original_start_s`` (the YouTube start) next to ``start_s`` (the start inside the file).

A ``split`` column (VGGSound's ``train``/``test``) is honoured: ``split="test"`` keeps the rows of that split,
and a list holding several splits must be given one (or ``all``), so a test set never slips into a training
set unnoticed. AudioSet has no split column: its split is the file. Labels can be mapped onto a class list
(``index,mid,display_name``, :mod:`avt_triplets.labels`): AudioSet's ontology ids become display names.

A dataset may be published, so the paths it records (``video_path`` and the ``clip_id`` made from it) are
always relative to the input root: a listed file outside the root is an error unless the caller allows
absolute paths (``allow_absolute_paths``), which then appear in the dataset as they are.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import itertools
import json
import logging
import math
import operator
import os
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from avt_core import storage
from avt_triplets.labels import ClassTable, list_class_table, read_class_table, unknown_labels
from avt_triplets.list_files import (
    CLIP_FILE,
    COMMA_LABEL_KEYS,
    END_KEYS,
    LABEL_KEYS,
    PATH_KEYS,
    SPLIT_KEYS,
    SPREADSHEET_ERRORS,
    START_KEYS,
    WHOLE_VIDEO_KEYS,
    YTID_KEYS,
    InputListError,
    ListTable,
    is_youtube_id,
    match_youtube_id,
    open_table,
    open_text,
    split_clip_file,
    spreadsheet_hint,
)
from avt_triplets.missing_videos import MissingVideos
from avt_triplets.path_templates import PathTemplate

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".wmv", ".3gp", ".ogv"}
)
LIST_EXTENSIONS = frozenset({".csv", ".jsonl", ".json", ".tsv"})
# Local file of a ``ytid,start`` row; VGGSound/AudioSet downloaders name trimmed clips like this.
DEFAULT_PATH_TEMPLATE = "{ytid}_{start:06d}.mp4"
DEFAULT_CLIP_SECONDS = 10.0  # AudioSet's and VGGSound's segment length

ALL_SPLITS = "all"  # ``--split all``: every row of a list that holds several splits


# slots: a million of them in memory at once. Not frozen (treat it as read-only all the same): a frozen
# dataclass's __init__ costs five times a plain one, a second per million clips of a list.
@dataclass(slots=True, unsafe_hash=True)
class ClipSpec:
    """One clip to generate: where to read it and what to call it.

    ``video_path`` is what the dataset records (relative to the input root when the file is under
    it); ``source`` is the absolute file to decode; ``start_s`` the window start inside that file;
    ``original_start_s`` where the window starts in the whole video (a list row's start, the YouTube start of a
    trimmed VGGSound/AudioSet clip; None: ``start_s``).
    """

    clip_id: str
    video_path: str
    source: str
    start_s: float = 0.0
    labels: tuple[str, ...] = field(default_factory=tuple)
    original_start_s: float | None = None
    split: str | None = None  # the list's split column, kept as a column by ``--split all`` only

    @property
    def start_in_video(self) -> float:
        """Where the window starts in the whole video."""
        return self.start_s if self.original_start_s is None else self.original_start_s

    def to_dict(self) -> dict:
        record = {**asdict(self), "labels": list(self.labels)}
        if self.split is None:
            del record["split"]
        return record


@dataclass(frozen=True)
class InputSet:
    """What an input (folder or list) holds: its clips in order, the root their paths are relative to,
    what the user passed, (for a folder) the files skipped because they are not videos, (for a list) whether
    it names files itself or through the path template, and how many of its videos are missing (checked
    before models load, :mod:`avt_triplets.missing_videos`)."""

    clips: list[ClipSpec]
    root: Path
    source: str
    skipped: tuple[str, ...] = ()
    classes: ClassTable | None = None  # the class list the labels index into, when one is known
    is_list: bool = False
    path_template: str | None = None  # a list of ytid rows: the template that named their files
    missing: MissingVideos | None = None


def _relative_to(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` (as written, else with symlinks resolved), or None when outside."""
    if storage.is_remote(root) or storage.is_remote(path):
        inner, outer = posixpath.normpath(str(path)), posixpath.normpath(str(root))
        return posixpath.relpath(inner, outer) if inner.startswith(outer.rstrip("/") + "/") else None
    for real in (False, True):
        inner = path.resolve() if real else Path(os.path.normpath(path.absolute()))
        outer = root.resolve() if real else Path(os.path.normpath(root.absolute()))
        try:
            return inner.relative_to(outer).as_posix()
        except ValueError:
            continue
    return None


def _recorded_path(path: Path, root: Path, where: str, allow_absolute: bool) -> str:
    """The path the dataset records for ``path``: relative to the root; absolute only when allowed."""
    relative = _relative_to(path, root)
    if relative is not None:
        return relative
    if allow_absolute:
        return str(path) if storage.is_remote(path) else Path(os.path.normpath(path.absolute())).as_posix()
    raise InputListError(
        f"{where}: {path} is outside the input root {root}; clip ids and video paths are stored relative to "
        "it so that a published dataset never holds this machine's folders. Pass --input-root with a folder "
        "that holds every video, or --allow-absolute-paths to store absolute paths."
    )


def _without_extension(relative_path: str) -> str:
    stem, dot, ext = relative_path.rpartition(".")
    return stem if dot and "/" not in ext else relative_path


def list_video_folder(
    folder: str | os.PathLike, extensions: Iterable[str] = VIDEO_EXTENSIONS
) -> tuple[list[ClipSpec], list[str]]:
    """Every video under ``folder`` (recursively, hidden files and folders left out), sorted by path, and
    the other files (not a video extension: ``.txt``, an audio-only ``.m4a``), skipped, relative and sorted."""
    root = storage.as_path(folder)
    if storage.is_remote(root):
        return _list_store_folder(root, {e.lower() for e in extensions})
    wanted = {e.lower() for e in extensions}
    clips, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() not in wanted:
                skipped.append(rel)
                continue
            clips.append(
                ClipSpec(clip_id=_without_extension(rel), video_path=rel, source=str(path.resolve()))
            )
    clips.sort(key=lambda c: c.video_path)
    return clips, sorted(skipped)


def _list_store_folder(root: Path, wanted: set[str]) -> tuple[list[ClipSpec], list[str]]:
    """:func:`list_video_folder` on an object store: one recursive listing, hidden keys left out."""
    prefix = root.path.rstrip("/") + "/"
    clips, skipped = [], []
    for key in sorted(root.fs.find(root.path)):
        rel = key[len(prefix) :] if key.startswith(prefix) else posixpath.basename(key)
        if not rel or any(part.startswith(".") for part in rel.split("/")):
            continue
        if posixpath.splitext(rel)[1].lower() not in wanted:
            skipped.append(rel)
            continue
        clips.append(ClipSpec(clip_id=_without_extension(rel), video_path=rel, source=str(root / rel)))
    return clips, skipped


def _source(value: str, root: Path) -> Path:
    """The file a list row names: a URL, an absolute path, or a path relative to the root."""
    if storage.is_url(value):
        return storage.as_path(value, getattr(root, "storage_options", None))
    path = Path(value)
    if path.is_absolute():
        return path
    return root / value


@functools.lru_cache(maxsize=8)
def _local_root_text(root: Path) -> str:
    return os.path.normpath(root.absolute())


def _plainly_inside(value: str, root: Path) -> str | None:
    """``value`` as the recorded path when it is a relative local path that stays inside the root (no ``..``):
    the common case, answered with string operations (a list of millions of rows)."""
    if storage.is_remote(root) or storage.is_url(value) or os.path.isabs(value):
        return None
    rel = posixpath.normpath(value.replace(os.sep, "/"))
    if rel == ".." or rel.startswith("../") or rel == ".":
        return None
    return rel


def _source_text(source: Path) -> str:
    return str(source) if storage.is_remote(source) else str(source.absolute())


def _format_start(start: float) -> str:
    return f"{int(start):06d}" if float(start).is_integer() else f"{start:.3f}"


_TRUE, _FALSE = frozenset({"1", "true", "yes", "y", "t"}), frozenset({"0", "false", "no", "n", "f"})


class _RowError(Exception):
    """A bad row; the reader adds the file and line."""


def _seconds(cell, name: str) -> float:
    """A start or end cell as seconds >= 0 (JSONL may give a number)."""
    try:
        value = float(cell)
    except (TypeError, ValueError):
        raise _RowError(f"{name} {cell!r} is not a number") from None
    if not 0.0 <= value < math.inf:
        if value < 0:
            raise _RowError(f"negative {name} {value}")
        raise _RowError(f"{name} {cell!r} is not a finite number of seconds")
    return value


def _labels(cell, separator: str) -> tuple[str, ...]:
    if cell is None:
        return ()
    if isinstance(cell, list | tuple):
        return tuple(str(v).strip() for v in cell if str(v).strip())
    if separator not in cell:
        label = cell.strip()
        return (label,) if label else ()
    return tuple(filter(None, map(str.strip, cell.split(separator))))


def _stripped_labels(label: str, separator: str) -> tuple[str, ...]:
    """:func:`_labels` of a stripped CSV cell, the common cells without its work (AudioSet's "/m/09x0r,/m/05zppz")."""
    if separator not in label:
        return (label,) if label else ()
    if " " in label or (parts := label.split(separator)).count(""):
        return _labels(label, separator)
    return tuple(parts)


def _flag(cell, name: str) -> bool | None:
    """A yes/no cell (``whole_video``); None when empty."""
    if cell is None or isinstance(cell, bool):
        return cell
    text = str(cell).strip().lower()
    if not text:
        return None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise _RowError(f"{name} {cell!r} is not true or false")


NUMBER_PATTERN = r"^[0-9]+(?:\.[0-9]+)?$"  # a start the columns take: plain digits, what float() reads alike
WHOLE_SECONDS_PATTERN = r"^[0-9]+(?:\.0+)?$"


def _all_match(cells, pattern: str) -> bool:
    """Whether every cell of a pyarrow string array matches ``pattern`` (RE2, in C++)."""
    import pyarrow.compute as pc

    return len(cells) == 0 or pc.all(pc.match_substring_regex(cells, pattern)).as_py() is True


def _any_match(cells, pattern: str) -> bool:
    import pyarrow.compute as pc

    return pc.any(pc.match_substring_regex(cells, pattern)).as_py() is True


def _class_names(labels: list[tuple], classes: ClassTable) -> list[tuple]:
    """:func:`_with_class_names` of a column of labels, each distinct tuple mapped once."""
    names: dict[tuple, tuple] = {}
    for row in set(labels):
        names[row] = tuple(classes.display_name(label) or label for label in row)
    return list(map(names.__getitem__, labels))


class _ListClips:
    """Turns the rows of one list into clip specs. The columns are found once per file. A clean CSV list's rows are
    made a column at a time (:meth:`columnar`: pyarrow's columns, whole-column string operations; a million
    VGGSound or AudioSet rows in a few seconds of CPU); otherwise row by row, where the common row (a YouTube id, a
    start, labels) takes a path made for it (:meth:`fast`)."""

    def __init__(
        self,
        list_path: Path,
        root: Path,
        template: PathTemplate,
        trimmed: bool,
        clip_seconds: float,
        allow_absolute: bool,
    ):
        self.list_path, self.root, self.template = list_path, root, template
        self.trimmed, self.clip_seconds, self.allow_absolute = trimmed, clip_seconds, allow_absolute

    def open(self, table: ListTable) -> None:
        """Find the columns of the list's table (once per file)."""
        column = table.column
        self.table = table
        self.path, self.ytid, self.clip_file = column(PATH_KEYS), column(YTID_KEYS), column((CLIP_FILE,))
        self.start, self.end, self.split = column(START_KEYS), column(END_KEYS), column(SPLIT_KEYS)
        self.explicit_id, self.whole_video = column(("clip_id",)), column(WHOLE_VIDEO_KEYS)
        self.labels, self.separator = column(COMMA_LABEL_KEYS), ","
        if self.labels is None:
            self.labels, self.separator = column(LABEL_KEYS), ";"
        self.width = None if table.layout == "JSONL" else len(table.columns)
        self.local_root = None if storage.is_remote(self.root) else _local_root_text(self.root)
        self.plain_path_clips: list[ClipSpec] = []  # path rows without a clip_id: one id per window later
        self._check_columns()

    def _check_columns(self) -> None:
        where, columns = self.table.path, ", ".join(self.table.columns)
        if self.path is None and self.ytid is None and self.clip_file is None:
            raise InputListError(f"{where}: needs a video_path (or path) or a ytid column; got {columns}")
        for name, column in (("split", self.split), ("label", self.labels)):
            if self.path is None and name in self.template.fields and column is None:
                raise InputListError(
                    f"--path-template {self.template.text!r} uses {{{name}}}, but {where} has no {name} column"
                )

    def fit(self, cells: list) -> list | None:
        """A row whose width differs from the header's: shorter rows miss trailing cells; a blank row is
        skipped (None); a longer row is refused (a spreadsheet pads rows with ',,,')."""
        if not any(str(cell).strip() for cell in cells):
            return None
        if len(cells) < self.width:
            return cells + [""] * (self.width - len(cells))
        extra, columns = cells[self.width :], ", ".join(self.table.columns)
        if all(not cell.strip() for cell in extra):
            raise _RowError(
                f"{len(extra)} empty cell(s) after the {self.width} columns ({columns}): the list was saved "
                "by a spreadsheet, which pads rows with ',,,'; use the file as downloaded"
            )
        raise _RowError(f"{len(cells)} cells where the list has {self.width} columns ({columns})")

    def split_of(self, cells: list) -> str | None:
        value = cells[self.split]
        return (value.strip() or None) if isinstance(value, str) else value

    def fast(self) -> Callable[[list, str | None], ClipSpec | None]:
        """The clip of a ``ytid,start`` row with nothing unusual, else of :meth:`clip` (which also raises)."""
        if self.path is not None and self.ytid is None and self.clip_file is None:
            return self._fast_paths()
        default = self.template.text == DEFAULT_PATH_TEMPLATE
        prefix = self._plain_prefix()
        special = (self.path, self.explicit_id, self.whole_video)  # columns only the full path knows
        checked = not default and (self.end is not None or "label" in self.template.fields)  # cells to check
        if self.ytid is None or self.start is None or prefix is None or checked or special != (None,) * 3:
            return self.clip
        slow, valid, clip_seconds, inf = self.clip, match_youtube_id, self.clip_seconds, math.inf
        yi, si, ei, li, separator = self.ytid, self.start, self.end, self.labels, self.separator
        whole, name = not self.trimmed, self.template.format

        def make(cells: list, split: str | None) -> ClipSpec | None:
            ytid = cells[yi]
            try:
                start = float(cells[si])
            except ValueError:
                return slow(cells, split)
            if not (valid(ytid) and 0.0 <= start < inf) or (ei is not None and not cells[ei]):
                return slow(cells, split)
            labels = () if li is None else _stripped_labels(cells[li].strip(), separator)
            whole_second = start.is_integer()
            clip_id = f"{ytid}_{int(start):06d}" if whole_second else f"{ytid}_{start:.3f}"
            if not default:
                rel = name(ytid, start, start + clip_seconds, labels, split)
            else:
                rel = clip_id + ".mp4" if whole_second else f"{ytid}_{int(start):06d}.mp4"
            return ClipSpec(clip_id, rel, prefix + rel, start if whole else 0.0, labels, start)

        return make

    def _fast_paths(self) -> Callable[[list, str | None], ClipSpec | None]:
        """:meth:`fast` for rows naming their files: a plain relative path (no ``.`` segment, no ``//``) is
        recorded as it is; anything else takes :meth:`clip`."""
        if (
            self.local_root is None
            or self.width is None
            or (self.explicit_id, self.whole_video) != (None, None)
        ):
            return self.clip  # a store, JSONL values, or columns only the full path knows
        slow, prefix, plain = self.clip, self.local_root.rstrip("/") + "/", self.plain_path_clips.append
        pi, si, li, separator, inf = self.path, self.start, self.labels, self.separator, math.inf

        def make(cells: list, split: str | None) -> ClipSpec | None:
            value = cells[pi]
            if (
                not value
                or value[0] in "./\\ "
                or value[-1] in " /"
                or "\\" in value
                or "/." in value
                or "//" in value
                or ":" in value
            ):
                return slow(cells, split)
            try:
                start = 0.0 if si is None or not cells[si] else float(cells[si])
            except ValueError:
                return slow(cells, split)
            if not 0.0 <= start < inf:
                return slow(cells, split)
            labels = () if li is None else _labels(cells[li], separator)
            stem, dot, extension = value.rpartition(".")
            clip = ClipSpec(
                stem if dot and "/" not in extension else value, value, prefix + value, start, labels, start
            )
            plain(clip)
            return clip

        return make

    def columnar(
        self, split: str | None, classes: ClassTable | None, every_label: set[str] | None
    ) -> tuple[list[ClipSpec], Counter[str | None]] | None:
        """:func:`_read_clips` of a whole CSV list at once, from pyarrow's columns
        (:meth:`ListTable.arrow_columns`), when every row is one :meth:`fast` takes without a second look; None:
        the list is read row by row (which also names a bad row's line)."""
        kind = self._columnar_kind(split, classes)
        if kind is None or (arrays := self.table.arrow_columns()) is None:
            return None
        import pyarrow  # only here: the module is imported by every avt command

        rows = len(arrays[0])
        row_splits = (
            [cell.strip() or None for cell in arrays[self.split].to_pylist()]
            if self.split is not None
            else None
        )
        splits = Counter(row_splits) if row_splits is not None else Counter({None: rows})
        labels = self._column_labels(arrays, rows, kind, split in (None, ALL_SPLITS))
        if labels is None:
            return None
        if every_label is not None and self.labels is not None:
            every_label.update(itertools.chain.from_iterable(labels))
        row_splits = row_splits or [None] * rows
        if split not in (None, ALL_SPLITS):
            keep = [row_split == split for row_split in row_splits]
            arrays = [array.filter(pyarrow.array(keep, pyarrow.bool_())) for array in arrays]
            labels, row_splits = (
                list(itertools.compress(labels, keep)),
                list(itertools.compress(row_splits, keep)),
            )
        clip_splits = row_splits if split == ALL_SPLITS else [None] * len(labels)
        if classes is not None:
            labels = _class_names(labels, classes)
        make = self._columnar_ytid_clips if kind == "ytid" else self._columnar_path_clips
        clips = make(arrays, labels, row_splits, clip_splits)
        return None if clips is None else (clips, splits)

    def _columnar_kind(self, split: str | None, classes: ClassTable | None) -> str | None:
        """Which rows :meth:`columnar` can take: the ``ytid,start`` rows :meth:`fast` takes, or the plain path
        rows of :meth:`_fast_paths` (whose clips keep their split and labels as made); None: neither."""
        if (
            self.width is None
            or self.local_root is None
            or (self.explicit_id, self.whole_video) != (None, None)
        ):
            return None
        if self.path is not None and self.ytid is None and self.clip_file is None:
            renamed = classes is not None or (split == ALL_SPLITS and self.split is not None)
            return None if renamed else "path"
        checked = self.template.text != DEFAULT_PATH_TEMPLATE and (
            self.end is not None or "label" in self.template.fields
        )
        if self.path is not None or self.ytid is None or self.start is None or checked:
            return None
        return "ytid" if self._plain_prefix() is not None else None

    def _column_labels(self, arrays: list, rows: int, kind: str, keep_all: bool) -> list[tuple] | None:
        """Every row's labels as :meth:`fast` (``ytid``) or :func:`_labels` (``path``) makes them, each distinct cell
        once (a list has a few thousand label sets; rows share their tuples)."""
        if self.labels is None:
            return [()] * rows
        separator, cells = self.separator, arrays[self.labels].to_pylist()
        distinct = set(cells)
        if kind == "path":
            made = {cell: _labels(cell, separator) for cell in distinct}
        else:
            made = {cell: _stripped_labels(cell.strip(), separator) for cell in distinct}
            # the row reader gives the rows of other splits _labels' labels
            if not keep_all and any(made[cell] != _labels(cell, separator) for cell in distinct):
                return None
        return list(map(made.__getitem__, cells))

    def _columnar_ytid_clips(self, arrays: list, labels: list, row_splits: list, clip_splits: list):
        """The clips of kept ``ytid,start`` rows (:meth:`fast`'s rules, whole columns); None if a row needs more."""
        ytid_cells, start_cells = arrays[self.ytid], arrays[self.start]
        if not _all_match(ytid_cells, "^[A-Za-z0-9_-]+$") or not _all_match(start_cells, NUMBER_PATTERN):
            return None
        if self.end is not None and not _all_match(arrays[self.end], "."):
            return None  # an empty end: the row reader looks at the row again
        ytids, start_texts = ytid_cells.to_pylist(), start_cells.to_pylist()
        seconds = {
            text: float(text) for text in set(start_texts)
        }  # each distinct start once (str.format: 1 µs)
        if math.inf in seconds.values():
            return None
        padded = {text: f"_{int(start):06d}" for text, start in seconds.items()}
        starts = list(map(seconds.__getitem__, start_texts))
        ytid_seconds = list(map(operator.add, ytids, map(padded.__getitem__, start_texts)))
        every_whole = _all_match(start_cells, WHOLE_SECONDS_PATTERN)
        if every_whole:
            ids = ytid_seconds
        else:
            ids = [f"{ytid}_{_format_start(start)}" for ytid, start in zip(ytids, starts)]
        if self.template.text == DEFAULT_PATH_TEMPLATE:
            rels = list(map(operator.add, ytid_seconds, itertools.repeat(".mp4")))
        else:
            ends = [start + self.clip_seconds for start in starts]
            rels = list(map(self.template.format, ytids, starts, ends, labels, row_splits))
        sources = list(map(str(self._plain_prefix()).__add__, rels))
        in_file = starts if not self.trimmed else [0.0] * len(starts)
        return list(map(ClipSpec, ids, rels, sources, in_file, labels, starts, clip_splits))

    def _columnar_path_clips(self, arrays: list, labels: list, row_splits: list, clip_splits: list):
        """The clips of kept plain path rows (:meth:`_fast_paths`' rules, whole columns); None if one needs more."""
        import pyarrow.compute as pc

        path_cells = arrays[self.path]
        if _any_match(path_cells, r"^$|^[./\\ ]|[ /]$|\\|/\.|//|:"):
            return None
        starts = [0.0] * len(path_cells)
        if self.start is not None:
            if not _all_match(arrays[self.start], f"^$|{NUMBER_PATTERN}"):
                return None
            starts = [float(cell) if cell else 0.0 for cell in arrays[self.start].to_pylist()]
            if starts and max(starts) == math.inf:
                return None
        values, prefix = path_cells.to_pylist(), self.local_root.rstrip("/") + "/"
        ids = pc.replace_substring_regex(path_cells, r"\.[^./]*$", "").to_pylist()  # _without_extension
        sources = list(map(prefix.__add__, values))
        clips = list(map(ClipSpec, ids, values, sources, starts, labels, starts, clip_splits))
        self.plain_path_clips.extend(clips)
        return clips

    def _plain_prefix(self) -> str | None:
        """The local root + '/' when every path the template makes is plainly inside the root (its fixed text
        is relative without '..', its fields ids, numbers and safe labels); None when paths need checking."""
        text = self.template.text
        if (
            self.local_root is None
            or _plainly_inside(text, self.root) != text
            or "\\" in text
            or "./" in text
        ):
            return None
        return self.local_root.rstrip("/") + "/"

    def clip(self, cells: list, split: str | None) -> ClipSpec | None:
        """The clip of any row (None for a blank one); :class:`_RowError` for a bad one."""
        labels = _labels(cells[self.labels], self.separator) if self.labels is not None else ()
        explicit = cells[self.explicit_id] if self.explicit_id is not None else None
        if self.path is not None and cells[self.path]:
            return self._path_clip(cells, labels, explicit)
        if self.ytid is not None and cells[self.ytid]:
            ytid, start = str(cells[self.ytid]).strip(), self._start(cells)
        elif self.clip_file is not None and cells[self.clip_file]:
            ytid, start = self._clip_file(cells[self.clip_file])
        elif all(cell in (None, "") or not str(cell).strip() for cell in cells):
            return None
        else:
            raise _RowError(f"needs a video_path (or path) or a ytid; got {cells!r}")
        if not is_youtube_id(ytid):
            if ytid.startswith(SPREADSHEET_ERRORS):
                raise spreadsheet_hint("", ytid)
            raise _RowError(f"{ytid!r} is not a YouTube id")
        end = _seconds(cells[self.end], "end") if self.end is not None and cells[self.end] else None
        rel = self._template_path(
            ytid, start, start + self.clip_seconds if end is None else end, labels, split
        )
        clip_id = explicit or f"{ytid}_{_format_start(start)}"
        rel, source = self._recorded(rel)
        return ClipSpec(
            clip_id, rel, source, start if self._whole(cells, not self.trimmed) else 0.0, labels, start
        )

    def _start(self, cells: list) -> float:
        cell = cells[self.start] if self.start is not None else None
        return 0.0 if cell is None or cell == "" else _seconds(cell, "start")

    def _clip_file(self, cell: str) -> tuple[str, float]:
        parsed = split_clip_file(cell.strip())
        if parsed is None:
            if cell.strip().startswith(SPREADSHEET_ERRORS):
                raise spreadsheet_hint("", cell.strip())
            raise _RowError(f"{cell!r} is not a clip file name ytid_start.mp4")
        return parsed[0], float(parsed[1])

    def _whole(self, cells: list, default: bool) -> bool:
        if self.whole_video is None:
            return default
        value = _flag(cells[self.whole_video], "whole_video")
        return default if value is None else value

    def _template_path(self, ytid: str, start: float, end: float, labels: tuple, split: str | None) -> str:
        if "label" in self.template.fields and not labels:
            raise _RowError(f"no label for {{label}} of --path-template {self.template.text!r}")
        return self.template.format(ytid, start, end, labels, split)

    def _path_clip(self, cells: list, labels: tuple, explicit) -> ClipSpec:
        start = self._start(cells)
        rel, source = self._recorded(str(cells[self.path]).strip())
        # a video_path row names a file: its start is a time inside it, unless its whole_video cell says no
        whole = self._whole(cells, True)
        clip = ClipSpec(
            explicit or _without_extension(rel), rel, source, start if whole else 0.0, labels, start
        )
        if not explicit:
            self.plain_path_clips.append(clip)
        return clip

    def _recorded(self, value: str) -> tuple[str, str]:
        """The recorded (relative) path and the file to decode of a row's file."""
        if self.local_root is not None:
            rel = _plainly_inside(value, self.root)
            if rel is not None:
                return rel, os.path.join(self.local_root, rel)
        source = _source(value, self.root)
        return _recorded_path(source, self.root, "", self.allow_absolute), _source_text(source)


def _read_clips(
    table: ListTable,
    maker: _ListClips,
    split: str | None,
    classes: ClassTable | None,
    every_label: set[str] | None = None,
) -> tuple[list[ClipSpec], Counter[str | None]]:
    """Every kept row's clip, and the rows per split; ``every_label`` receives the labels of every row, kept or
    not (one class index for all the splits of a list)."""
    clips: list[ClipSpec] = []
    splits: Counter[str | None] = Counter()
    width, fit, make, append = maker.width, maker.fit, maker.fast(), clips.append
    split_index = maker.split if maker.split is not None and width is not None else None
    split_of = maker.split_of if maker.split is not None else None
    keep_all = split in (None, ALL_SPLITS)
    try:
        for cells in table.rows:
            if len(cells) != width and width is not None and (cells := fit(cells)) is None:
                continue
            if split_index is not None:  # CSV: strings
                row_split = cells[split_index].strip() or None
            else:
                row_split = split_of(cells) if split_of is not None else None
            splits[row_split] += 1
            if not keep_all and row_split != split:
                if every_label is not None and maker.labels is not None:
                    every_label.update(_labels(cells[maker.labels], maker.separator))
                continue
            clip = make(cells, row_split)
            if clip is None:
                continue
            if every_label is not None:
                every_label.update(clip.labels)
            if split == ALL_SPLITS and row_split is not None:
                clip = replace(clip, split=str(row_split))
            append(clip if classes is None else _with_class_names(clip, classes))
    except (_RowError, InputListError) as err:
        text = str(err)
        raise InputListError(f"{table.where()}{text if text.startswith(':') else ': ' + text}") from None
    return clips, splits


def read_clip_list(
    list_path: str | os.PathLike,
    *,
    input_root: str | os.PathLike | None = None,
    path_template: str = DEFAULT_PATH_TEMPLATE,
    trimmed: bool = True,
    allow_absolute_paths: bool = False,
    split: str | None = None,
    classes: ClassTable | None = None,
    storage_options: dict | None = None,
    labels_of_every_row: set[str] | None = None,
    clip_seconds: float = DEFAULT_CLIP_SECONDS,
) -> list[ClipSpec]:
    """Clips of a CSV/TSV/JSONL list, in the list's order. See the module docstring for formats.

    ``trimmed``: ``ytid,start`` rows point at files that already start at ``start`` (the usual
    downloaded clips); set it False for full-length videos so the window is cut at ``start``. A ``video_path``
    row's start is a time inside its file unless the row's ``whole_video`` column says false.
    ``allow_absolute_paths``: accept files outside the input root, recorded with their absolute path.
    ``split``: keep the rows whose ``split`` column has this value (:data:`ALL_SPLITS`: every row, each clip
    keeping its split, grouped by split); a list holding several splits needs one. ``classes``: store every label
    as its display name in this class list (a label that is neither an id nor a name of it is an error).
    ``labels_of_every_row``: a set that receives the labels of every row, whatever its split. ``clip_seconds``: the
    window length, the end of rows without one (``{end}`` of the path template).
    """
    path = storage.as_path(list_path, storage_options)
    root = storage.as_path(input_root, storage_options) if input_root is not None else path.parent
    maker = _ListClips(
        path, root, PathTemplate.parse(path_template), trimmed, clip_seconds, allow_absolute_paths
    )
    return _read_list(maker, split, classes, labels_of_every_row)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a list's clips are made: they hold no cycles, and its passes over
    the ever more objects (a million clip specs and their label tuples) took two thirds of the listing's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read_list(
    maker: _ListClips, split: str | None, classes: ClassTable | None, every_label: set[str] | None = None
) -> list[ClipSpec]:
    path = maker.list_path
    with _collector_paused(), open_text(path) as handle:
        maker.open(open_table(handle, path))
        read = maker.columnar(split, classes, every_label)
        clips, splits = read or _read_clips(maker.table, maker, split, classes, every_label)
    _check_split(path, split, splits)
    if classes is not None:
        _check_labels(path, clips, classes)
    return group_by_split(_one_id_per_window(clips, maker.plain_path_clips))


_SPLIT_OF, _VIDEO_PATH_OF, _CLIP_ID_OF = (
    operator.attrgetter(name) for name in ("split", "video_path", "clip_id")
)


def group_by_split(clips: list[ClipSpec]) -> list[ClipSpec]:
    """``--split all``: each split's clips together (splits in order of first appearance, rows in list order), so
    shards never mix splits and the card can name each split's files; other lists are returned as they are."""
    splits = list(map(_SPLIT_OF, clips))
    order = dict.fromkeys(splits)
    if len(order) <= 1:
        return clips
    grouped = (itertools.compress(clips, map(operator.eq, splits, itertools.repeat(name))) for name in order)
    return list(itertools.chain.from_iterable(grouped))


def _one_id_per_window(clips: list[ClipSpec], plain_path_clips: list[ClipSpec]) -> list[ClipSpec]:
    """A file listed with several windows gets one id per window: ``{path}_{start:06d}`` (path rows without a
    ``clip_id`` only: ids of ytid rows already carry their start)."""
    paths = list(map(_VIDEO_PATH_OF, plain_path_clips))
    if len(set(paths)) == len(paths):
        return clips
    windows = Counter(paths)
    renamed = {id(clip) for clip in plain_path_clips if windows[clip.video_path] > 1}
    if not renamed:
        return clips
    return [
        replace(clip, clip_id=f"{clip.clip_id}_{_format_start(clip.start_in_video)}")
        if id(clip) in renamed
        else clip
        for clip in clips
    ]


def split_counts(list_path: str | os.PathLike) -> Counter[str | None]:
    """Rows per value of a list's split column (None counts rows without one): which splits ``--split`` can
    pick. Only the list is read, no video is looked at."""
    path = storage.as_path(list_path)
    with open_text(path) as handle:
        table = open_table(handle, path)
        index = table.column(SPLIT_KEYS)
        if index is None:
            return Counter({None: sum(1 for _ in table.rows)})
        return Counter(
            (str(cells[index]).strip() or None) if len(cells) > index and cells[index] is not None else None
            for cells in table.rows
        )


def _describe_splits(splits: Counter[str | None]) -> str:
    return ", ".join(f"{name} ({count} rows)" for name, count in sorted(splits.items()) if name is not None)


def _check_split(path: Path, split: str | None, splits: Counter[str | None]) -> None:
    """The split asked for exists; without one, the list holds at most one split."""
    named = {name for name in splits if name is not None}
    if split is None:
        if len(named) > 1:
            raise InputListError(
                f"{path} holds the splits {_describe_splits(splits)}: pass --split NAME to make one output per "
                f"split (fine-tuning and evaluation sets stay apart), or --split {ALL_SPLITS} to keep every row"
            )
        return
    if split == ALL_SPLITS:
        return
    if not named:
        raise InputListError(
            f"--split {split}: {path} has no split column (AudioSet's split is the file: pass "
            "balanced_train_segments.csv or eval_segments.csv instead)"
        )
    if not splits.get(split):
        raise InputListError(
            f"--split {split}: no row of {path} has that split; it has {_describe_splits(splits)}"
        )


def _with_class_names(clip: ClipSpec, classes: ClassTable) -> ClipSpec:
    """The clip with its labels as display names (unknown ones kept as they are, for :func:`_check_labels`)."""
    return replace(clip, labels=tuple(classes.display_name(label) or label for label in clip.labels))


def _check_labels(path: Path, clips: Sequence[ClipSpec], classes: ClassTable) -> None:
    unknown = unknown_labels((label for clip in clips for label in clip.labels), classes)
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise InputListError(
            f"{path}: {len(unknown)} label(s) are neither an id nor a display name of the --label-csv class "
            f"list ({len(classes)} classes): {shown}"
        )


def check_unique(clips: Sequence[ClipSpec]) -> None:
    """Raise :class:`InputListError` naming every duplicated ``clip_id`` (not just the first)."""
    ids = list(map(_CLIP_ID_OF, clips))
    if len(set(ids)) == len(ids):
        return
    counts = Counter(ids)
    duplicates = {cid: n for cid, n in counts.items() if n > 1}
    if duplicates:
        shown = ", ".join(f"{cid!r} x{n}" for cid, n in sorted(duplicates.items())[:20])
        more = f" (and {len(duplicates) - 20} more)" if len(duplicates) > 20 else ""
        raise InputListError(f"{len(duplicates)} duplicate clip_id(s) in the input: {shown}{more}")


def load_inputs(
    source: str | os.PathLike,
    *,
    input_root: str | os.PathLike | None = None,
    path_template: str = DEFAULT_PATH_TEMPLATE,
    trimmed: bool = True,
    limit: int | None = None,
    allow_absolute_paths: bool = False,
    split: str | None = None,
    label_csv: str | os.PathLike | None = None,
    storage_options: dict | None = None,
    clip_seconds: float = DEFAULT_CLIP_SECONDS,
) -> InputSet:
    """The clips of ``source`` (a folder or a list file, local or a URL), the root their paths are relative
    to, and the files a folder input skipped (each logged at INFO level). ``split``, ``label_csv`` and
    ``clip_seconds`` apply to lists (see :func:`read_clip_list`)."""
    path = storage.as_path(source, storage_options)
    skipped: list[str] = []
    templated, is_folder = False, path.is_dir()
    classes = read_class_table(label_csv) if label_csv is not None else None
    if is_folder and (split is not None or classes is not None):
        given = "--split" if split is not None else "--label-csv"
        raise InputListError(f"{given} applies to a list of clips (CSV/JSONL), but {path} is a folder")
    if is_folder:
        clips, skipped = list_video_folder(path)
        root = path
        for name in skipped:
            logger.info("skipped %s: not a video file (extension not in %s)", name, sorted(VIDEO_EXTENSIONS))
    elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
        root = storage.as_path(input_root, storage_options) if input_root is not None else path.parent
        if input_root is not None and not root.is_dir():
            raise InputListError(f"--input-root {root} is not a folder")
        every_label: set[str] = set()
        template = PathTemplate.parse(path_template)
        maker = _ListClips(path, root, template, trimmed, clip_seconds, allow_absolute_paths)
        clips = _read_list(maker, split, classes, every_label if split is not None else None)
        templated = maker.path is None
        if classes is None and split is not None:  # a list of several splits: one index for all of them
            classes = list_class_table(every_label, path.name)
    elif path.is_file():
        raise InputListError(
            f"{path} is neither a folder nor a list ({', '.join(sorted(LIST_EXTENSIONS))}); "
            "to process one video, pass the folder that holds it"
        )
    else:
        raise InputListError(f"input {path} does not exist")
    if limit is not None:
        clips = clips[: max(0, limit)]
    if not clips:
        hint = f" ({len(skipped)} files skipped: not video files)" if skipped else ""
        raise InputListError(f"no clips found in {path}{hint}")
    check_unique(clips)
    return InputSet(
        clips=list(clips),
        root=root,
        source=str(source),
        skipped=tuple(skipped),
        classes=classes,
        is_list=not is_folder,
        path_template=path_template if templated else None,
    )


def inputs_digest(clips: Sequence[ClipSpec]) -> str:
    """sha256 over what decides the output rows (ids, paths, windows, labels), not absolute locations.

    A rerun must see the same list for its finished shards to stay valid; moving the input folder
    elsewhere does not change the digest.
    """
    digest = hashlib.sha256()
    for clip in clips:
        record = [clip.clip_id, clip.video_path, round(clip.start_s, 6), list(clip.labels)]
        if clip.split is not None:  # only --split all outputs: older digests stay valid
            record.append(clip.split)
        digest.update(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()
