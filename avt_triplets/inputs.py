"""What ``avt generate`` reads: a folder of videos or a CSV/JSONL list, turned into clip specs.

Every rank of a multi-process run lists the same input and gets the same clips in the same order
(sorted), so cutting the list into shards needs no coordination. ``clip_id``, the dataset's key, is the
video's path relative to the input root without its extension (plus ``_{start:06d}`` when a list
names the same file with several windows), or ``{ytid}_{start:06d}`` for VGGSound/AudioSet-style
rows; it must be unique, and duplicates are reported all at once, before any work starts.

List formats (paths relative to the list's folder, or to ``input_root`` when given):

- CSV with a header: ``video_path`` (or ``path``), optional ``start_s`` (or ``start``), optional
  ``labels`` (``;``-separated), optional ``clip_id``; or ``ytid`` (or ``youtube_id``) + ``start`` rows
  whose files are found through ``path_template``.
- Headerless CSV in VGGSound's own layout: ``ytid,start,label[,split]`` (labels holding commas are quoted).
- AudioSet's segment lists (``balanced_train_segments.csv``, ``eval_segments.csv``, ...): ``#`` comment lines,
  the last of which is the header ``# YTID, start_seconds, end_seconds, positive_labels``, then rows such as
  ``--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"`` (``positive_labels`` separated by commas).
- JSONL: one object per line with the same keys; ``labels`` may be a list or a ``;``-separated string.

A ``split`` column (VGGSound's ``train``/``test``) is honoured: ``split="test"`` keeps the rows of that split,
and a list holding several splits must be given one (or ``all``), so a test set never slips into a training
set unnoticed. AudioSet has no split column: its split is the file. Labels can be mapped onto a class list
(``index,mid,display_name``, :mod:`avt_triplets.labels`): AudioSet's ontology ids become display names.

A dataset may be published, so the paths it records (``video_path`` and the ``clip_id`` made from it) are
always relative to the input root: a listed file outside the root is an error unless the caller allows
absolute paths (``allow_absolute_paths``), which then appear in the dataset as they are.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import posixpath
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from avt_triplets import storage
from avt_triplets.errors import UsageError
from avt_triplets.labels import ClassTable, list_class_table, read_class_table, unknown_labels

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".wmv", ".3gp", ".ogv"}
)
LIST_EXTENSIONS = frozenset({".csv", ".jsonl", ".json", ".tsv"})
# Local file of a ``ytid,start`` row; VGGSound/AudioSet downloaders name trimmed clips like this.
DEFAULT_PATH_TEMPLATE = "{ytid}_{start:06d}.mp4"

_PATH_KEYS = ("video_path", "path", "file", "filename")
_START_KEYS = ("start_s", "start", "start_seconds", "start_time")
_LABEL_KEYS = ("labels", "label")
_COMMA_LABEL_KEYS = ("positive_labels",)  # AudioSet: ontology ids separated by commas inside one quoted cell
_YTID_KEYS = ("ytid", "youtube_id", "YTID", "video_id")
_SPLIT_KEYS = ("split",)
_HEADER_KEYS = frozenset(
    {*_PATH_KEYS, *_START_KEYS, *_LABEL_KEYS, *_COMMA_LABEL_KEYS, *_YTID_KEYS, *_SPLIT_KEYS, "clip_id"}
)
ALL_SPLITS = "all"  # ``--split all``: every row of a list that holds several splits


class InputListError(UsageError, ValueError):
    """The input can't be turned into a clip list (bad row, duplicate clip ids, nothing found)."""


@dataclass(frozen=True, slots=True)  # slots: a million of them in memory at once
class ClipSpec:
    """One clip to generate: where to read it and what to call it.

    ``video_path`` is what the dataset records (relative to the input root when the file is under
    it); ``source`` is the absolute file to decode; ``start_s`` the window start inside that file.
    """

    clip_id: str
    video_path: str
    source: str
    start_s: float = 0.0
    labels: tuple[str, ...] = field(default_factory=tuple)
    split: str | None = None  # the list's split column, kept as a column by ``--split all`` only

    def to_dict(self) -> dict:
        record = {**asdict(self), "labels": list(self.labels)}
        if self.split is None:
            del record["split"]
        return record


@dataclass(frozen=True)
class InputSet:
    """What an input (folder or list) holds: its clips in order, the root their paths are relative to,
    what the user passed, and (for a folder) the files skipped because they are not videos."""

    clips: list[ClipSpec]
    root: Path
    source: str
    skipped: tuple[str, ...] = ()
    classes: ClassTable | None = None  # the class list the labels index into, when one is known


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


def _first(row: dict, keys: Sequence[str]):
    for key in keys:
        value = row.get(key)
        if value not in (None, ""):
            return value
    return None


def _parse_labels(value, separator: str = ";") -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(separator) if part.strip())


def _row_labels(row: dict) -> tuple[str, ...]:
    """A row's labels: AudioSet's comma-separated ``positive_labels``, else ``labels``/``label`` (``;``)."""
    audioset = _first(row, _COMMA_LABEL_KEYS)
    if audioset is not None:
        return _parse_labels(audioset, ",")
    return _parse_labels(_first(row, _LABEL_KEYS))


def _format_start(start: float) -> str:
    return f"{int(start):06d}" if float(start).is_integer() else f"{start:.3f}"


def _parse_start(row: dict, where: str) -> float:
    raw_start = _first(row, _START_KEYS)
    try:
        start = float(raw_start) if raw_start is not None else 0.0
    except (TypeError, ValueError) as err:
        raise InputListError(f"{where}: start {raw_start!r} is not a number") from err
    if not math.isfinite(start):
        raise InputListError(f"{where}: start {raw_start!r} is not a finite number of seconds")
    if start < 0:
        raise InputListError(f"{where}: negative start {start}")
    return start


def _row_to_clip(
    row: dict, where: str, root: Path, path_template: str, trimmed: bool, allow_absolute: bool = False
) -> ClipSpec:
    start = _parse_start(row, where)
    labels = _row_labels(row)
    explicit_id = _first(row, ("clip_id",))
    path_value = _first(row, _PATH_KEYS)
    if path_value is not None:
        rel = _plainly_inside(str(path_value), root)
        if rel is not None:
            source_text = os.path.join(_local_root_text(root), rel)
        else:
            source = _source(str(path_value), root)
            rel, source_text = _recorded_path(source, root, where, allow_absolute), _source_text(source)
        clip_id = explicit_id or _without_extension(rel)
        return ClipSpec(str(clip_id), rel, source_text, start, labels)
    ytid = _first(row, _YTID_KEYS)
    if ytid is None:
        raise InputListError(f"{where}: needs a video_path (or path) or a ytid column; got {sorted(row)}")
    try:
        rel = path_template.format(ytid=ytid, start=int(start), start_s=start)
    except (KeyError, IndexError, ValueError) as err:
        raise InputListError(f"{where}: bad --path-template {path_template!r}: {err}") from err
    source = _source(rel, root)
    clip_id = explicit_id or f"{ytid}_{_format_start(start)}"
    # A downloaded VGGSound/AudioSet clip already starts at the row's start: decode it from 0.
    rel = _recorded_path(source, root, where, allow_absolute)
    return ClipSpec(str(clip_id), rel, _source_text(source), 0.0 if trimmed else start, labels)


class _UncommentedLines:
    """The lines of a list file without ``#`` comment lines (kept in ``comments``); ``number`` is the file's line
    number of the last line handed out, for messages."""

    def __init__(self, handle):
        self.handle = handle
        self.number = 0
        self.comments: list[str] = []

    def __iter__(self):
        for number, line in enumerate(self.handle, start=1):
            self.number = number
            stripped = line.lstrip()
            if stripped.startswith("#"):
                self.comments.append(stripped[1:])
                continue
            yield line


def _header(cells: Sequence[str]) -> list[str] | None:
    """``cells`` as column names when they name at least one column we know, else None."""
    names = [cell.strip() for cell in cells]
    return names if any(name in _HEADER_KEYS for name in names) else None


def _read_csv_rows(path: Path) -> Iterable[tuple[str, dict]]:
    with path.open("r", newline="", encoding="utf-8") as handle:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        lines = _UncommentedLines(handle)
        reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True)
        first = next(reader, None)
        if first is None:
            return
        header = _header(first)
        rows: Iterable[list[str]] = reader
        if header is None:
            rows = itertools.chain([first], reader)
            # AudioSet: the last comment line before the rows is the header ("# YTID, start_seconds, ...")
            commented = next(csv.reader(lines.comments[-1:], skipinitialspace=True), None)
            header = _header(commented) if commented else None
        if header is None:  # VGGSound's own csv: ytid,start,label[,split], no header
            if len(first) < 2:
                raise InputListError(f"{path}: no header and not ytid,start,label rows")
            header = ["ytid", "start", "label", "split"][: max(len(first), 2)]
        for cells in rows:
            if not cells or all(not c.strip() for c in cells):
                continue
            yield f"{path}:{lines.number}", dict(zip(header, (c.strip() for c in cells)))


def _read_jsonl_rows(path: Path) -> Iterable[tuple[str, dict]]:
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputListError(f"{path}:{number}: not JSON: {err}") from err
            if not isinstance(row, dict):
                raise InputListError(f"{path}:{number}: expected an object, got {type(row).__name__}")
            yield f"{path}:{number}", row


def _read_rows(path: Path) -> Iterable[tuple[str, dict]]:
    """``(where, row)`` of a list file: JSONL by its extension, else CSV/TSV."""
    return _read_jsonl_rows(path) if path.suffix.lower() in (".jsonl", ".json") else _read_csv_rows(path)


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
) -> list[ClipSpec]:
    """Clips of a CSV/TSV/JSONL list, in the list's order. See the module docstring for formats.

    ``trimmed``: ``ytid,start`` rows point at files that already start at ``start`` (the usual
    downloaded clips); set it False for full-length videos so the window is cut at ``start``.
    ``allow_absolute_paths``: accept files outside the input root, recorded with their absolute path.
    ``split``: keep the rows whose ``split`` column has this value (:data:`ALL_SPLITS`: every row, each clip
    keeping its split, grouped by split); a list holding several splits needs one. ``classes``: store every label
    as its display name in this class list (a label that is neither an id nor a name of it is an error).
    ``labels_of_every_row``: a set that receives the labels of every row, whatever its split.
    """
    path = storage.as_path(list_path, storage_options)
    root = storage.as_path(input_root, storage_options) if input_root is not None else path.parent
    rows = _read_rows(path)
    clips = []
    splits: Counter[str | None] = Counter()
    for where, row in rows:
        row_split = _first(row, _SPLIT_KEYS)
        splits[row_split] += 1
        if labels_of_every_row is not None:
            labels_of_every_row.update(_row_labels(row))
        if split not in (None, ALL_SPLITS) and row_split != split:
            continue
        clip = _row_to_clip(row, where, root, path_template, trimmed, allow_absolute_paths)
        if split == ALL_SPLITS and row_split is not None:
            clip = replace(clip, split=str(row_split))
        clips.append((clip, _first(row, ("clip_id",)) is not None))
    _check_split(path, split, splits)
    if classes is not None:
        clips = [(replace(clip, labels=_class_names(clip.labels, classes)), e) for clip, e in clips]
        _check_labels(path, [clip for clip, _ in clips], classes)
    # A file listed with several windows gets one id per window: "{path}_{start:06d}".
    windows = Counter(clip.video_path for clip, explicit in clips if not explicit)
    return group_by_split(
        [
            replace(clip, clip_id=f"{clip.clip_id}_{_format_start(clip.start_s)}")
            if not explicit and windows[clip.video_path] > 1 and _first_key_is_path(clip)
            else clip
            for clip, explicit in clips
        ]
    )


def group_by_split(clips: list[ClipSpec]) -> list[ClipSpec]:
    """``--split all``: each split's clips together (splits in order of first appearance, rows in list order), so
    shards never mix splits and the card can name each split's files; other lists are returned as they are."""
    order: dict[str | None, int] = {}
    for clip in clips:
        order.setdefault(clip.split, len(order))
    return clips if len(order) <= 1 else sorted(clips, key=lambda clip: order[clip.split])


def split_counts(list_path: str | os.PathLike) -> Counter[str | None]:
    """Rows per value of a list's split column (None counts rows without one): which splits ``--split`` can
    pick. Only the list is read, no video is looked at."""
    path = storage.as_path(list_path)
    rows = _read_rows(path)
    return Counter(_first(row, _SPLIT_KEYS) for _, row in rows)


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


def _class_names(labels: tuple[str, ...], classes: ClassTable) -> tuple[str, ...]:
    """Labels as display names (unknown ones kept as they are, for :func:`_check_labels` to report)."""
    return tuple(classes.display_name(label) or label for label in labels)


def _check_labels(path: Path, clips: Sequence[ClipSpec], classes: ClassTable) -> None:
    unknown = unknown_labels((label for clip in clips for label in clip.labels), classes)
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise InputListError(
            f"{path}: {len(unknown)} label(s) are neither an id nor a display name of the --label-csv class "
            f"list ({len(classes)} classes): {shown}"
        )


def _first_key_is_path(clip: ClipSpec) -> bool:
    """Ids of ytid rows already carry their start."""
    return clip.clip_id == _without_extension(clip.video_path)


def check_unique(clips: Sequence[ClipSpec]) -> None:
    """Raise :class:`InputListError` naming every duplicated ``clip_id`` (not just the first)."""
    counts = Counter(c.clip_id for c in clips)
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
) -> InputSet:
    """The clips of ``source`` (a folder or a list file, local or a URL), the root their paths are relative
    to, and the files a folder input skipped (each logged at INFO level). ``split`` and ``label_csv`` apply to
    lists (see :func:`read_clip_list`)."""
    path = storage.as_path(source, storage_options)
    skipped: list[str] = []
    classes = read_class_table(label_csv) if label_csv is not None else None
    if path.is_dir() and (split is not None or classes is not None):
        given = "--split" if split is not None else "--label-csv"
        raise InputListError(f"{given} applies to a list of clips (CSV/JSONL), but {path} is a folder")
    if path.is_dir():
        clips, skipped = list_video_folder(path)
        root = path
        for name in skipped:
            logger.info("skipped %s: not a video file (extension not in %s)", name, sorted(VIDEO_EXTENSIONS))
    elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
        root = storage.as_path(input_root, storage_options) if input_root is not None else path.parent
        if input_root is not None and not root.is_dir():
            raise InputListError(f"--input-root {root} is not a folder")
        every_label: set[str] = set()
        clips = read_clip_list(
            path,
            input_root=root,
            path_template=path_template,
            trimmed=trimmed,
            allow_absolute_paths=allow_absolute_paths,
            split=split,
            classes=classes,
            storage_options=storage_options,
            labels_of_every_row=every_label,
        )
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
    return InputSet(clips=clips, root=root, source=str(source), skipped=tuple(skipped), classes=classes)


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
