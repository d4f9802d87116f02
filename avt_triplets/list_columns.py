"""A CSV/TSV list's data rows read whole columns at a time by pyarrow's C++ CSV reader, cell for cell the same as
the row reader of :mod:`avt_triplets.list_files` (Python's ``csv`` with ``skipinitialspace``), or not at all.

The row reader costs about 2 µs a row on the shared sandbox before any row is looked at; pyarrow parses a million
rows in a fraction of a second. The two agree on unquoted cells once the spaces after a delimiter are trimmed, and on
quoted cells that are whole cells (a quote opens a cell, after a delimiter or the line start and any spaces, and
closes it, before the next delimiter or the line end; no quote, line break, or leading or trailing space inside).
Every line is checked against that shape first (RE2, through pyarrow): a file with any other quoting, a NUL, invalid
UTF-8 or a row of another width is handed back (None) to the row reader, which reads it as before and names its
first bad line. AudioSet's ``, "/m/..,/m/.."`` and VGGSound's ``"heart sounds, heartbeat"`` are whole cells.
"""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\r|\n")  # the line ends of a text file opened with newline=""
_LINES_DELIMITER = (
    "\x1f"  # the lines pass splits on nothing a list holds (a file that holds it is handed back)
)


def line_offset(raw: bytes, lines: int) -> int:
    """The byte offset of the line after the first ``lines`` lines of ``raw``."""
    position = 0
    for _ in range(lines):
        found = _LINE_END.search(raw, position)
        if found is None:
            return len(raw)
        position = found.end()
    return position


def _whole_cells_pattern(delimiter: str) -> str:
    """RE2: a line of cells that are unquoted (no quote) or quoted whole, as the module docstring says."""
    sep = "\\t" if delimiter == "\t" else re.escape(delimiter)
    quoted = ' *"(?:[^" ]|[^" ][^"]*[^" ])?"'
    cell = f'(?:{quoted}|[^"{sep}]*)'
    return f"^{cell}(?:{sep}{cell})*$"


def _quotes_whole(data: bytes, delimiter: str) -> bool:
    """Whether every line's quotes are those of whole quoted cells (one pyarrow pass over the lines)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pa_csv

    try:
        lines = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=["line"]),
            parse_options=pa_csv.ParseOptions(delimiter=_LINES_DELIMITER, quote_char=False),
            convert_options=pa_csv.ConvertOptions(column_types={"line": pa.string()}),
        ).column(0)
    except pa.ArrowException:  # a parse error, invalid UTF-8
        return False
    return pc.all(pc.match_substring_regex(lines, _whole_cells_pattern(delimiter))).as_py() is True


def _unspaced_quotes(data: bytes) -> bytes:
    """``, "a,b"`` as ``,"a,b"``: pyarrow opens a quoted cell only at its first byte (the row reader skips the
    spaces). Only for data whose quotes :func:`_quotes_whole` accepted: there a quote after a space opens a cell
    and the spaces before it are the ones the row reader skips."""
    while b' "' in data:
        data = data.replace(b' "', b'"')
    return data


def parse_columns(data: bytes, width: int, delimiter: str) -> list | None:
    """The rows of ``data`` (a list's data lines, UTF-8 without a BOM) as ``width`` pyarrow string arrays, each
    cell as the row reader gives it; None when the row reader must read the file (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pa_csv

    if b"\0" in data or not data.strip():
        return None
    if b'"' in data:
        if not _quotes_whole(data, delimiter):
            return None
        data = _unspaced_quotes(data)
    names = [f"c{i}" for i in range(width)]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=names),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
        )
    except pa.ArrowException:  # a parse error, invalid UTF-8
        return None
    return [pc.utf8_ltrim(column.combine_chunks(), characters=" ") for column in table.columns]


__all__ = ["line_offset", "parse_columns"]
