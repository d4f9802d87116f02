"""Class lists: the official ``index,mid,display_name`` CSV (AudioSet's ``class_labels_indices.csv``) and mapping
the labels of input rows onto it.

AudioSet's segment lists name classes by ontology id (``/m/09x0r``); its class list gives each id a display
name (``Speech``) and an index. ``avt generate --label-csv`` stores display names in the dataset, and
``avt finetune --label-csv`` fixes the classifier's classes and their order; both read the file here.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from avt_triplets.errors import UsageError

REQUIRED_COLUMNS = ("index", "mid", "display_name")


@dataclass(frozen=True)
class ClassTable:
    """Classes in index order: their display names, ontology ids, and the index of every id and name."""

    names: tuple[str, ...]
    mids: tuple[str, ...]
    index: dict[str, int]  # a mid or a display name -> its class index

    def __len__(self) -> int:
        return len(self.names)

    def display_name(self, label: str) -> str | None:
        """The display name of ``label`` (a mid or a display name), None when it is not a class of the table."""
        found = self.index.get(label)
        return None if found is None else self.names[found]


def read_class_table(path: str | os.PathLike) -> ClassTable:
    """The classes of an ``index,mid,display_name`` CSV (display names may be quoted and hold commas; a UTF-8
    byte order mark and CRLF are fine; a copy without its header line is recognised by its rows' shape);
    :class:`UsageError` when the file is missing, lacks a column or its indices are not 0..N-1."""
    path = Path(path)
    where = f"--label-csv {path}"  # both commands that read a class list take it as --label-csv
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            first = next(csv.reader(handle, skipinitialspace=True), [])
            handle.seek(0)
            headerless = _is_class_row(first)
            names = REQUIRED_COLUMNS if headerless else None
            reader = csv.DictReader(handle, fieldnames=names, skipinitialspace=True)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise UsageError(
                    f"{where}: needs the columns {', '.join(REQUIRED_COLUMNS)} named in its first line (like "
                    f"AudioSet's class_labels_indices.csv); missing {', '.join(missing)}"
                )
            rows = list(reader)
    except OSError as error:
        raise UsageError(f"{where}: {error.strerror or error}") from None
    try:
        rows.sort(key=lambda r: int(r["index"]))
    except (TypeError, ValueError) as error:
        raise UsageError(f"{where}: the index column must hold integers ({error})") from None
    if [int(r["index"]) for r in rows] != list(range(len(rows))):
        raise UsageError(f"{where}: the index column must be 0..N-1")
    names = tuple(r["display_name"].strip() for r in rows)
    mids = tuple(r["mid"].strip() for r in rows)
    index: dict[str, int] = {}
    for i, (mid, name) in enumerate(zip(mids, names)):
        index.setdefault(mid, i)
        index.setdefault(name, i)
    return ClassTable(names=names, mids=mids, index=index)


def _is_class_row(cells: list[str]) -> bool:
    """A first line that is a class, not a header: ``0,/m/09x0r,"Speech"`` (copies in the wild drop the header)."""
    return len(cells) == 3 and cells[0].strip().isdigit() and cells[1].strip().startswith("/")


def unknown_labels(labels: Iterable[str], table: ClassTable) -> list[str]:
    """The labels that are neither an id nor a display name of ``table``, sorted."""
    return sorted({label for label in labels if label not in table.index})


__all__ = ["ClassTable", "read_class_table", "unknown_labels"]
