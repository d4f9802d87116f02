"""Class lists, and the one mapping of dataset labels onto class indices.

AudioSet's segment lists name classes by ontology id (``/m/09x0r``); its ``class_labels_indices.csv``
(``index,mid,display_name``) gives each id a display name (``Speech``) and an index. VGGSound publishes no class
list: its classes are the distinct labels of ``vggsound.csv`` (all rows, every split). A :class:`ClassTable` holds
the classes in index order with their display names and, when known, their ids; :meth:`ClassTable.indices` is the
one place a label (an id, a display name or a class index) becomes a class index, so a dataset labelled with mids
and a model whose classes are display names (or the reverse) meet. It travels:

- with a fine-tuned model: ``config.id2label`` / ``label2id`` (display names) plus ``config.class_mids``
  (:meth:`ClassTable.config_fields`, read back by :meth:`ClassTable.from_model_config`);
- with a generation output: ``manifest.json``'s ``classes`` (:meth:`ClassTable.record`), which the dataset card
  turns into a ``Sequence(ClassLabel)`` feature of ``labels``.
"""

from __future__ import annotations

import csv
import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from avt_core.errors import UsageError

REQUIRED_COLUMNS = ("index", "mid", "display_name")


@dataclass(frozen=True)
class ClassTable:
    """Classes in index order: their display names, their ontology ids (empty when the list has none), where the
    list came from (for messages), and the index of every id and name (``index``)."""

    names: tuple[str, ...]
    mids: tuple[str, ...] = ()
    source: str = "the training labels"
    aliases: tuple[tuple[str, int], ...] = ()  # more labels of a class: another list's ids / names (bridged)
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "mids", tuple(self.mids or ()))
        if self.mids and len(self.mids) != len(self.names):
            raise ValueError(f"{len(self.mids)} class ids for {len(self.names)} class names")
        index: dict[str, int] = {}
        for i, mid in enumerate(self.mids):  # ids first: an id is never shadowed by another class's name
            index.setdefault(mid, i)
        for i, name in enumerate(self.names):
            index.setdefault(name, i)
        for alias, i in self.aliases:
            index.setdefault(alias, i)
        object.__setattr__(self, "index", index)

    def __len__(self) -> int:
        return len(self.names)

    def class_index(self, label: Any) -> int | None:
        """The class index of one label: an ontology id or a display name (str), or a class index (int); None
        when it is none of this table's classes."""
        if isinstance(label, str):
            return self.index.get(label.strip())
        if isinstance(label, numbers.Integral) and not isinstance(label, bool):
            return int(label) if 0 <= int(label) < len(self.names) else None
        return None

    def indices(self, labels: Iterable[Any] | None) -> tuple[list[int], list[Any]]:
        """The class indices of a clip's labels (each class once, in label order) and the labels that map to no
        class: what fine-tuning, its evaluation and ``avt evaluate classification`` all call."""
        known: list[int] = []
        unknown: list[Any] = []
        for label in labels or ():
            found = self.class_index(label)
            if found is None:
                unknown.append(label)
            elif found not in known:
                known.append(found)
        return known, unknown

    def display_name(self, label: Any) -> str | None:
        """The display name of ``label`` (an id, a name or an index), None when it is not a class of the table."""
        found = self.class_index(label)
        return None if found is None else self.names[found]

    def bridged(self, other: ClassTable | None) -> ClassTable:
        """This table also accepting ``other``'s id and display name of every class they share (a class of
        ``other`` is shared when its id or name is one of ours): a set labelled with display names (its class
        list recorded with the ids) meets a model whose classes are ids, and the reverse."""
        if other is None:
            return self
        extra = []
        for k, name in enumerate(other.names):
            labels = (other.mids[k], name) if other.mids else (name,)
            found = next((self.index[label] for label in labels if label in self.index), None)
            if found is not None:
                extra += [(label, found) for label in labels if label not in self.index]
        return replace(self, aliases=(*self.aliases, *extra)) if extra else self

    @classmethod
    def from_labels(
        cls, labels: Iterable[Iterable[str] | None], source: str = "the training labels"
    ) -> ClassTable:
        """The sorted distinct labels of some rows, as classes without ids."""
        return cls(names=tuple(sorted({label for row in labels for label in (row or ())})), source=source)

    # ---- travelling with a model -----------------------------------------------------------------

    def config_fields(self) -> dict[str, Any]:
        """What a classifier's config records: ``id2label`` / ``label2id`` (display names, as transformers and
        the Hub show them) and ``class_mids`` (the ids in index order, None when the list has none)."""
        return {
            "id2label": dict(enumerate(self.names)),
            "label2id": {name: i for i, name in enumerate(self.names)},
            "class_mids": list(self.mids) or None,
        }

    @classmethod
    def from_model_config(cls, config: Any) -> ClassTable | None:
        """The classes a classifier's config records (None without a complete ``id2label``); checkpoints saved
        before ``class_mids`` existed give names only."""
        id2label: Mapping[Any, str] = getattr(config, "id2label", None) or {}
        num_labels = getattr(config, "num_labels", len(id2label))
        by_index = {int(i): str(name) for i, name in id2label.items()}
        if not by_index or sorted(by_index) != list(range(num_labels)):
            return None
        mids = getattr(config, "class_mids", None) or ()
        return cls(
            names=tuple(by_index[i] for i in range(num_labels)),
            mids=tuple(mids) if len(mids) == num_labels else (),
            source="the model's classes (config id2label" + (" + class_mids)" if mids else ")"),
        )

    # ---- travelling with a dataset ---------------------------------------------------------------

    def record(self, description: str) -> dict[str, Any]:
        """``manifest.json``'s ``classes``: where the list came from (``description``, no machine's folders),
        the display names and the ids."""
        return {
            "source": description,
            "num_classes": len(self),
            "names": list(self.names),
            "mids": list(self.mids),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> ClassTable | None:
        """The table a manifest's ``classes`` describes (None for outputs without one)."""
        if not record or not record.get("names"):
            return None
        return cls(
            names=tuple(record["names"]),
            mids=tuple(record.get("mids") or ()),
            source=str(record.get("source")),
        )


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
    return ClassTable(
        names=tuple(r["display_name"].strip() for r in rows),
        mids=tuple(r["mid"].strip() for r in rows),
        source=where,
    )


def list_class_table(labels_of_every_row: Iterable[str], list_name: str) -> ClassTable | None:
    """The class list of a list that publishes none (VGGSound): its distinct labels over every row, whatever the
    split and whether the video is on disk, sorted, so every split made from it shares one index. None without
    labels."""
    names = sorted(set(labels_of_every_row))
    if not names:
        return None
    return ClassTable(
        names=tuple(names), source=f"the distinct labels of every row of {list_name} (all splits)"
    )


def _is_class_row(cells: list[str]) -> bool:
    """A first line that is a class, not a header: ``0,/m/09x0r,"Speech"`` (copies in the wild drop the header)."""
    return len(cells) == 3 and cells[0].strip().isdigit() and cells[1].strip().startswith("/")


def unknown_labels(labels: Iterable[str], table: ClassTable) -> list[str]:
    """The labels that are neither an id nor a display name of ``table``, sorted."""
    return sorted({label for label in labels if table.class_index(label) is None})


__all__ = ["ClassTable", "list_class_table", "read_class_table", "unknown_labels"]
