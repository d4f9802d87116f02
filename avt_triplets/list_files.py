"""List files as users have them: which layout a CSV/TSV/JSONL list is in, its column names, and its rows of cells.

The public lists come in several shapes, and copies in the wild change them further, so the layout is
recognised from the file itself:

- a CSV/TSV with a header naming known columns (``video_path,start_s,labels``; the cleaned AudioSet
  ``YTID,start_seconds,end_seconds,positive_labels``);
- AudioSet's segment lists as Google ships them: three ``#`` comment lines, the last one the header
  (``# YTID, start_seconds, end_seconds, positive_labels``), a space after each comma;
- VGGSound's ``vggsound.csv``: no header, ``ytid,start,label,split`` rows;
- the widely copied VGGSound split files (``train.csv`` / ``test.csv``): no header, ``ytid_start.mp4,label``;
- JSONL, one object per line.

A UTF-8 byte order mark and CRLF line endings are accepted everywhere. ``#`` lines are comments only before
the first row. A list a spreadsheet has mangled (ids starting with ``-`` turned into ``#NAME?``, rows padded
with ``,,,,``) is refused naming its first bad line, since its rows can't be trusted. Rows are lists of cells
(strings without the space after a comma; JSONL values as they are), read with the C csv reader (about 2 µs a row on the
shared sandbox); :meth:`ListTable.arrow_columns` gives a CSV/TSV list's cells as whole columns instead, parsed by pyarrow
(:mod:`avt_triplets.list_columns`) when that reads them alike.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from avt_core.errors import UsageError
from avt_triplets.list_columns import line_offset, parse_columns

PATH_KEYS = ("video_path", "path", "file", "filename")
START_KEYS = ("start_s", "start", "start_seconds", "start_time")
END_KEYS = ("end_s", "end", "end_seconds", "end_time")
LABEL_KEYS = ("labels", "label")
COMMA_LABEL_KEYS = ("positive_labels",)  # AudioSet: ontology ids separated by commas inside one quoted cell
YTID_KEYS = ("ytid", "youtube_id", "YTID", "video_id")
SPLIT_KEYS = ("split",)
WHOLE_VIDEO_KEYS = ("whole_video",)  # per row: is the file the whole video (cut at start) or the trimmed clip
CLIP_FILE = "clip_file"  # the split files' ``ytid_start.mp4`` cell
HEADER_KEYS = frozenset(
    {
        *PATH_KEYS,
        *START_KEYS,
        *END_KEYS,
        *LABEL_KEYS,
        *COMMA_LABEL_KEYS,
        *YTID_KEYS,
        *SPLIT_KEYS,
        *WHOLE_VIDEO_KEYS,
        "clip_id",
    }
)
VGGSOUND_COLUMNS = ("ytid", "start", "label", "split")
SPLIT_FILE_COLUMNS = (CLIP_FILE, "label")
# What a spreadsheet writes into a cell it took for a formula (VGGSound/AudioSet ids starting with '-' or '=').
SPREADSHEET_ERRORS = ("#NAME?", "#VALUE!", "#REF!", "#N/A", "#DIV/0!", "#NUM!", "#NULL!", "#ERROR!")
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]+")
_CLIP_FILE = re.compile(r"(?P<ytid>[A-Za-z0-9_-]{11})_(?P<start>\d+)(?:\.[A-Za-z0-9]+)?")
_NUMBER = re.compile(r"\s*[0-9]+(\.[0-9]*)?\s*")


class InputListError(UsageError, ValueError):
    """The input can't be turned into a clip list (bad row, duplicate clip ids, nothing found)."""


def spreadsheet_hint(where: str, cell: str) -> InputListError:
    """The one-line refusal of a list whose ids a spreadsheet turned into formula errors."""
    return InputListError(
        f"{where}: {cell!r} is not a YouTube id: the list was saved by a spreadsheet, which turns ids starting "
        "with '-' into formulas (#NAME?) and pads rows with ',,,'; use the file as downloaded"
    )


match_youtube_id = _YOUTUBE_ID.fullmatch  # the hot loop's check; truthy for an id


def is_youtube_id(text: str) -> bool:
    return match_youtube_id(text) is not None


def split_clip_file(cell: str) -> tuple[str, int] | None:
    """``ytid_000030.mp4`` (a split file's cell) -> ``("ytid", 30)``; None when the cell is not such a name."""
    match = _CLIP_FILE.fullmatch(cell)
    return None if match is None else (match["ytid"], int(match["start"]))


@dataclass
class ListTable:
    """An open list: its layout (for messages), column names, and an iterator over its rows of cells.

    ``line_number()`` is the file's line of the row last handed out (comment lines and quoted line breaks
    counted), so errors name the line a user sees in an editor.
    """

    path: Path
    layout: str
    columns: tuple[str, ...]
    rows: Iterator[list]
    _offset: int = 0
    _reader: object | None = None
    _jsonl_line: list[int] | None = None
    _data_line: int | None = None  # CSV/TSV: the lines before the first row of data (comments, header)
    _delimiter: str = ","

    def line_number(self) -> int:
        if self._jsonl_line is not None:
            return self._jsonl_line[0]
        return self._offset + getattr(self._reader, "line_num", 0)

    def where(self) -> str:
        return f"{self.path}:{self.line_number()}"

    def arrow_columns(self) -> list | None:
        """Every row's cells as one pyarrow string array per column, parsed in C++ (a million rows in a fraction
        of a second), or None when the file holds anything that reader would read differently from :attr:`rows`
        (see :mod:`avt_triplets.list_columns`); the caller then reads :attr:`rows`, which names a bad line."""
        if self._data_line is None or not self.columns:
            return None
        raw = self.path.read_bytes()
        raw = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
        data = raw[line_offset(raw, self._data_line) :]
        return parse_columns(data, len(self.columns), self._delimiter)

    def column(self, keys: Sequence[str]) -> int | None:
        """Index of the first of ``keys`` that is a column, or None."""
        for key in keys:
            if key in self.columns:
                return self.columns.index(key)
        return None


def _header(cells: Sequence[str]) -> tuple[str, ...] | None:
    """``cells`` as column names when they name at least one column we know, else None."""
    names = tuple(cell.strip() for cell in cells)
    return names if any(name in HEADER_KEYS for name in names) else None


def _headerless_layout(path: Path, first: list[str], line: int) -> tuple[str, tuple[str, ...]]:
    """The layout of a list without a header, from its first row; refused in one line when it is none we know."""
    cells = [cell.strip() for cell in first]
    if len(cells) == 2 and split_clip_file(cells[0]) is not None:
        return "VGGSound split file (ytid_start.mp4,label)", SPLIT_FILE_COLUMNS
    if len(cells) in (2, 3, 4) and is_youtube_id(cells[0]) and _NUMBER.fullmatch(cells[1]):
        return "VGGSound (ytid,start,label,split)", VGGSOUND_COLUMNS[: len(cells)]
    raise InputListError(
        f"{path}:{line}: no header line, and the rows are none of the headerless layouts (VGGSound's "
        f"ytid,start,label,split; a split file's ytid_start.mp4,label): {','.join(cells)[:120]!r}. Add a header "
        "naming the columns, e.g. video_path,start_s,labels"
    )


def _is_comment(line: str) -> bool:
    stripped = line.lstrip()
    return stripped.startswith("#") and not stripped.startswith(SPREADSHEET_ERRORS)


def open_csv_table(handle, path: Path) -> ListTable:
    """The layout and rows of a CSV/TSV list open as ``handle`` (text, ``newline=""``, BOM already removed)."""
    comments: list[str] = []
    first_line = None
    for line in handle:
        if not _is_comment(line):
            first_line = line
            break
        comments.append(line.lstrip()[1:].rstrip("\r\n"))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    lines = itertools.chain([first_line], handle) if first_line is not None else iter(())
    reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True)
    first = next(reader, None)
    offset = len(comments)
    if first is None:
        return ListTable(path, "empty", (), iter(()), offset, reader)
    mangled = next((cell.strip() for cell in first if cell.strip().startswith(SPREADSHEET_ERRORS)), None)
    if mangled is not None:
        raise spreadsheet_hint(f"{path}:{offset + reader.line_num}", mangled)
    columns = _header(first)
    if columns is not None:
        return ListTable(
            path, "header", columns, reader, offset, reader, None, offset + reader.line_num, delimiter
        )
    commented = next(csv.reader(comments[-1:], delimiter=delimiter, skipinitialspace=True), None)
    columns = _header(commented) if commented else None
    if columns is not None:
        layout = "AudioSet segments (# comment header)"
    else:
        layout, columns = _headerless_layout(path, first, offset + reader.line_num)
    table = ListTable(path, layout, columns, reader, offset, reader, None, offset, delimiter)
    # the first row is data: hand it out again, counting it as line offset+1 while it is the current row
    table.rows = itertools.chain([first], reader)
    return table


# JSONL objects name a column by any of its keys, row by row: each role's first non-empty value is its cell.
_JSONL_ROLES = (PATH_KEYS, START_KEYS, END_KEYS, LABEL_KEYS, YTID_KEYS, SPLIT_KEYS)
_JSONL_ROLES += (WHOLE_VIDEO_KEYS, ("clip_id",))


def _first(row: dict, keys: Sequence[str]):
    return next((row[key] for key in keys if row.get(key) not in (None, "")), None)


def _jsonl_rows(handle, path: Path, line: list[int]) -> Iterator[list]:
    for number, text in enumerate(handle, start=1):
        line[0] = number
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputListError(f"{path}:{number}: not JSON: {err}") from err
        if not isinstance(row, dict):
            raise InputListError(f"{path}:{number}: expected an object, got {type(row).__name__}")
        cells = [_first(row, keys) for keys in _JSONL_ROLES]
        audioset = _first(row, COMMA_LABEL_KEYS)  # AudioSet's ids, comma-separated, win over ``labels``
        if isinstance(audioset, str):
            cells[3] = audioset.split(",")
        yield cells


def open_jsonl_table(handle, path: Path) -> ListTable:
    """JSONL rows as cells of one column per role (named by its first key; None where a row has no value)."""
    columns = tuple(keys[0] for keys in _JSONL_ROLES)
    line = [0]
    return ListTable(path, "JSONL", columns, _jsonl_rows(handle, path, line), _jsonl_line=line)


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".json")


def open_text(path: Path):
    """A list file for reading: UTF-8 with or without a byte order mark, any line ending."""
    return path.open("r", newline="", encoding="utf-8-sig")


def open_table(handle, path: Path) -> ListTable:
    return open_jsonl_table(handle, path) if is_jsonl(path) else open_csv_table(handle, path)


__all__ = [
    "HEADER_KEYS",
    "InputListError",
    "ListTable",
    "is_youtube_id",
    "match_youtube_id",
    "open_table",
    "open_text",
    "split_clip_file",
    "spreadsheet_hint",
]
