"""Where avt reads and writes: local folders, or fsspec URLs (``s3://``, ``gs://``, ``hf://datasets/...``).

A location becomes a path object once, here: a :class:`pathlib.Path` for a local folder (or ``file://``), a
``upath.UPath`` (pathlib's API over fsspec) for a URL, carrying the storage options (credentials, endpoint) it was
opened with, so every path derived from it (``root / "data"``) reaches the same store. The rest of avt uses the
path API and the few helpers below, and works the same on both.

Credentials come from the environment (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``HF_TOKEN``) or from
``--storage-options`` (JSON), and live only in these objects: ``str(path)`` is the bare URL, which is all that
manifests, cards, stats and logs ever record.

Crash safety: a local file is written to a hidden temporary and renamed; an object store has no rename, but an
object appears only once its upload completed, so it is written in place (an interrupted upload leaves nothing,
or an unfinished shard that readers ignore because its stats object, written last, is missing).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

LOCAL_PROTOCOLS = ("", "file", "local")


def temporary_path(path: Path) -> Path:
    """A hidden sibling of ``path`` that no reader picks up: ``.name.<pid>.<random>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def is_url(location: Any) -> bool:
    text = str(location)
    return "://" in text and not text.startswith("file://")


def as_path(location: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> Path:
    """``location`` as a path: :class:`Path` when local, ``UPath`` (with ``storage_options``) for a URL."""
    if is_remote(location):
        return location  # already a store path: keeps its own options
    text = os.fspath(location) if not isinstance(location, str) else location
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    if not is_url(text):
        return Path(text)
    from upath import UPath

    return UPath(text, **(storage_options or {}))


def is_remote(path: Any) -> bool:
    """True for a path on an fsspec store other than the local disk."""
    protocol = getattr(path, "protocol", None)
    return protocol is not None and protocol not in LOCAL_PROTOCOLS


def forget_listings(path: Path) -> None:
    """Drop what the store's filesystem object cached about listings (s3fs, gcsfs keep them per process), so
    what other processes and nodes wrote since is seen: counting finished shards must list the store, not a memory."""
    if is_remote(path):
        path.fs.invalidate_cache()


def names(folder: Path) -> list[str]:
    """The entries of ``folder`` (one fresh listing, also on a store whose listings are cached); [] when it does
    not exist."""
    if is_remote(folder):
        folder.fs.invalidate_cache(folder.path)
    try:
        return [entry.name for entry in folder.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def size(path: Path) -> int | None:
    """The size of the file ``path`` in bytes; None when there is none."""
    try:
        if is_remote(path):
            path.fs.invalidate_cache(path.path)  # a listing cached earlier in this process would be stale
        return path.stat().st_size if path.is_file() else None
    except FileNotFoundError:
        return None


def remove_tree(folder: Path) -> None:
    """Delete ``folder`` and everything under it, if it exists."""
    if is_remote(folder):
        with contextlib.suppress(FileNotFoundError):
            folder.fs.rm(folder.path, recursive=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)


def unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def makedirs(folder: Path) -> None:
    """Create a local folder (with parents); object stores have no folders to create."""
    if not is_remote(folder):
        folder.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary stream whose content becomes ``path`` only if the block ends without an error."""
    if is_remote(path):
        handle = path.open("wb")
        try:
            yield handle
        except BaseException:
            discard = getattr(handle, "discard", None)  # s3fs/gcsfs: abort the upload, nothing appears
            if discard is not None:
                discard()
            else:
                handle.close()
                unlink(path)
            raise
        handle.close()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def open_for_reading(path: Path) -> Iterator[Any]:
    """What pyarrow reads, for the block: the local path itself, or an fsspec file closed afterwards."""
    if not is_remote(path):
        yield path
        return
    with path.open("rb") as handle:
        yield handle


__all__ = [
    "as_path",
    "atomic_output",
    "forget_listings",
    "is_remote",
    "is_url",
    "makedirs",
    "names",
    "open_for_reading",
    "remove_tree",
    "size",
    "temporary_path",
    "unlink",
]
