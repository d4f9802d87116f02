"""Atomic file writes: readers see the old file or the new one, never a partial one, and nothing is left over.

The data goes to a hidden temporary next to the target (unique per process and call, so concurrent writers
never share one), is flushed to disk, and is renamed over the target. If writing fails (a full disk, a
signal), the temporary is removed before the error propagates. Hidden names ending in ``.tmp`` are never
read as data by ``datasets`` or :mod:`avt_triplets.selection`. On an object store the object is uploaded in place
and appears only once complete (:func:`avt_core.storage.atomic_output`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from avt_core.storage import as_path, atomic_output, temporary_path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = as_path(path)
    with atomic_output(path) as handle:
        handle.write(data)
    return path


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))


__all__ = ["atomic_write_bytes", "atomic_write_json", "temporary_path"]
