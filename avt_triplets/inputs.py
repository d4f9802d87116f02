"""What ``avt generate`` reads: a folder of videos or a CSV/JSONL list, turned into clip specs.

Every rank of a multi-process run lists the same input and gets the same clips in the same order
(sorted), so cutting the list into shards needs no coordination. ``clip_id`` (DESIGN.md §3) is the
video's path relative to the input root without its extension (plus ``_{start:06d}`` when a list
names the same file with several windows), or ``{ytid}_{start:06d}`` for VGGSound/AudioSet-style
rows; it must be unique, and duplicates are reported all at once, before any work starts.

List formats (paths relative to the list's folder unless absolute or ``input_root`` is given):

- CSV with a header: ``video_path`` (or ``path``), optional ``start_s`` (or ``start``), optional
  ``labels`` (``;``-separated), optional ``clip_id``; or ``ytid`` (or ``youtube_id``) + ``start`` rows
  whose files are found through ``path_template``.
- Headerless CSV in VGGSound's own layout: ``ytid,start,label[,split]``.
- JSONL: one object per line with the same keys; ``labels`` may be a list or a ``;``-separated string.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".wmv", ".3gp", ".ogv"}
)
LIST_EXTENSIONS = frozenset({".csv", ".jsonl", ".json", ".tsv"})
# Local file of a ``ytid,start`` row; VGGSound/AudioSet downloaders name trimmed clips like this.
DEFAULT_PATH_TEMPLATE = "{ytid}_{start:06d}.mp4"

_PATH_KEYS = ("video_path", "path", "file", "filename")
_START_KEYS = ("start_s", "start", "start_seconds", "start_time")
_LABEL_KEYS = ("labels", "label", "positive_labels")
_YTID_KEYS = ("ytid", "youtube_id", "YTID", "video_id")


class InputListError(ValueError):
    """The input can't be turned into a clip list (bad row, duplicate clip ids, nothing found)."""


@dataclass(frozen=True)
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

    def to_dict(self) -> dict:
        return {**asdict(self), "labels": list(self.labels)}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # outside the root: keep the full path
        return path.as_posix()


def _without_extension(relative_path: str) -> str:
    stem, dot, ext = relative_path.rpartition(".")
    return stem if dot and "/" not in ext else relative_path


def list_video_folder(
    folder: str | os.PathLike, extensions: Iterable[str] = VIDEO_EXTENSIONS
) -> list[ClipSpec]:
    """Every video under ``folder`` (recursively, hidden files and folders skipped), sorted by path."""
    root = Path(folder)
    wanted = {e.lower() for e in extensions}
    clips = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in wanted:
                continue
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            clips.append(
                ClipSpec(clip_id=_without_extension(rel), video_path=rel, source=str(path.resolve()))
            )
    clips.sort(key=lambda c: c.video_path)
    return clips


def _first(row: dict, keys: Sequence[str]):
    for key in keys:
        value = row.get(key)
        if value not in (None, ""):
            return value
    return None


def _parse_labels(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(";") if part.strip())


def _format_start(start: float) -> str:
    return f"{int(start):06d}" if float(start).is_integer() else f"{start:.3f}"


def _row_to_clip(row: dict, where: str, root: Path, path_template: str, trimmed: bool) -> ClipSpec:
    raw_start = _first(row, _START_KEYS)
    try:
        start = float(raw_start) if raw_start is not None else 0.0
    except ValueError as err:
        raise InputListError(f"{where}: start {raw_start!r} is not a number") from err
    if start < 0:
        raise InputListError(f"{where}: negative start {start}")
    labels = _parse_labels(_first(row, _LABEL_KEYS))
    explicit_id = _first(row, ("clip_id",))
    path_value = _first(row, _PATH_KEYS)
    if path_value is not None:
        path = Path(str(path_value))
        source = path if path.is_absolute() else root / path
        rel = _relative(source, root)
        clip_id = explicit_id or _without_extension(rel)
        return ClipSpec(str(clip_id), rel, str(source.absolute()), start, labels)
    ytid = _first(row, _YTID_KEYS)
    if ytid is None:
        raise InputListError(f"{where}: needs a video_path (or path) or a ytid column; got {sorted(row)}")
    try:
        rel = path_template.format(ytid=ytid, start=int(start), start_s=start)
    except (KeyError, IndexError, ValueError) as err:
        raise InputListError(f"{where}: bad --path-template {path_template!r}: {err}") from err
    source = Path(rel) if Path(rel).is_absolute() else root / rel
    clip_id = explicit_id or f"{ytid}_{_format_start(start)}"
    # A downloaded VGGSound/AudioSet clip already starts at the row's start: decode it from 0.
    return ClipSpec(
        str(clip_id), _relative(source, root), str(source.absolute()), 0.0 if trimmed else start, labels
    )


def _read_csv_rows(path: Path) -> Iterable[tuple[str, dict]]:
    with open(path, newline="", encoding="utf-8") as handle:
        sample = handle.read(4096)
        handle.seek(0)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        reader = csv.reader(handle, delimiter=delimiter, skipinitialspace=True)
        first = next(reader, None)
        if first is None:
            return
        known = {*_PATH_KEYS, *_START_KEYS, *_LABEL_KEYS, *_YTID_KEYS, "clip_id"}
        if any(cell.strip() in known for cell in first):
            header = [cell.strip() for cell in first]
            rows = reader
            offset = 2
        else:  # VGGSound's own csv: ytid,start,label[,split], no header
            if len(first) < 2 or not sample:
                raise InputListError(f"{path}: no header and not ytid,start,label rows")
            header = ["ytid", "start", "label", "split"][: max(len(first), 2)]
            rows = [first, *reader]
            offset = 1
        for number, cells in enumerate(rows, start=offset):
            if not cells or all(not c.strip() for c in cells):
                continue
            yield f"{path}:{number}", dict(zip(header, (c.strip() for c in cells)))


def _read_jsonl_rows(path: Path) -> Iterable[tuple[str, dict]]:
    with open(path, encoding="utf-8") as handle:
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


def read_clip_list(
    list_path: str | os.PathLike,
    *,
    input_root: str | os.PathLike | None = None,
    path_template: str = DEFAULT_PATH_TEMPLATE,
    trimmed: bool = True,
) -> list[ClipSpec]:
    """Clips of a CSV/TSV/JSONL list, in the list's order. See the module docstring for formats.

    ``trimmed``: ``ytid,start`` rows point at files that already start at ``start`` (the usual
    downloaded clips); set it False for full-length videos so the window is cut at ``start``.
    """
    path = Path(list_path)
    root = Path(input_root) if input_root is not None else path.parent
    rows = _read_jsonl_rows(path) if path.suffix.lower() in (".jsonl", ".json") else _read_csv_rows(path)
    clips = []
    for where, row in rows:
        clips.append(
            (_row_to_clip(row, where, root, path_template, trimmed), _first(row, ("clip_id",)) is not None)
        )
    # A file listed with several windows gets one id per window: "{path}_{start:06d}".
    windows = Counter(clip.video_path for clip, explicit in clips if not explicit)
    return [
        replace(clip, clip_id=f"{clip.clip_id}_{_format_start(clip.start_s)}")
        if not explicit and windows[clip.video_path] > 1 and _first_key_is_path(clip)
        else clip
        for clip, explicit in clips
    ]


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
) -> tuple[list[ClipSpec], Path]:
    """The clips of ``source`` (a folder or a list file) and the input root paths are relative to."""
    path = Path(source)
    if path.is_dir():
        clips = list_video_folder(path)
        root = path
    elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS:
        clips = read_clip_list(path, input_root=input_root, path_template=path_template, trimmed=trimmed)
        root = Path(input_root) if input_root is not None else path.parent
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
        raise InputListError(f"no clips found in {path}")
    check_unique(clips)
    return clips, root


def inputs_digest(clips: Sequence[ClipSpec]) -> str:
    """sha256 over what decides the output rows (ids, paths, windows, labels), not absolute locations.

    A rerun must see the same list for its finished shards to stay valid; moving the input folder
    elsewhere does not change the digest.
    """
    digest = hashlib.sha256()
    for clip in clips:
        record = [clip.clip_id, clip.video_path, round(clip.start_s, 6), list(clip.labels)]
        digest.update(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()
