"""Atomic file writes: readers see the old file or the new one, never a partial one, and nothing is left over.

The data goes to a hidden temporary next to the target (unique per process and call, so concurrent writers
never share one), is flushed to disk, and is renamed over the target. If writing fails (a full disk, a
signal), the temporary is removed before the error propagates. Hidden names ending in ``.tmp`` are never
read as data by ``datasets`` or :mod:`avt_triplets.selection`.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any


def temporary_path(path: Path) -> Path:
    """A hidden sibling of ``path`` that no reader picks up: ``.name.<pid>.<random>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))


__all__ = ["atomic_write_bytes", "atomic_write_json", "temporary_path"]
