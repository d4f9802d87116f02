"""Where a model came from, so a dataset card can say it and a resumed run can insist on it.

- Hub models: the commit a branch or tag resolved to (a branch such as ``main`` moves; a commit does not).
  Loaders resolve the revision once, load every file from that commit and record it.
- Local folders and files: a content digest (names, sizes and SHA-256 of every file), so resuming an output
  with other weights in the same place is caught. Hashing a multi-GB checkpoint takes seconds to minutes, so
  file hashes are cached by (path, size, mtime, inode) under ``$HF_HOME/avt`` and computed once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from avt_core.atomic import atomic_write_json

logger = logging.getLogger(__name__)

_COMMIT_HASH = re.compile(r"^[0-9a-f]{40}$")
_CACHED_FILE_BYTES = 1 << 20  # smaller files are rehashed each time: cheaper than a cache entry
_CHUNK = 1 << 22


def resolve_commit_hash(name_or_path: str | os.PathLike, revision: str | None = None) -> str | None:
    """The commit hash ``revision`` of the Hub repo ``name_or_path`` points to, or ``None`` when unknown.

    Works offline from the local cache when the Hub is unreachable; never raises (loading reports real errors).
    """
    if os.path.exists(name_or_path):
        return None
    if revision is not None and _COMMIT_HASH.match(revision):
        return revision
    try:
        from huggingface_hub import resolve_revision
    except ImportError:  # huggingface_hub < 2 has no resolve_revision
        return None
    for local_files_only in (False, True):
        try:
            return resolve_revision(
                str(name_or_path), revision=revision, local_files_only=local_files_only
            ).resolved
        except Exception:  # noqa: BLE001 - unreachable Hub, unknown repo, ...: provenance is best effort
            logger.debug("could not resolve %s@%s", name_or_path, revision, exc_info=True)
    return None


def commit_hash_from_cache_path(path: str | os.PathLike) -> str | None:
    """The commit of a file inside a Hub cache (``.../snapshots/<commit>/file``), else ``None``."""
    parts = os.path.normpath(os.fspath(path)).split(os.sep)
    for parent, child in zip(parts, parts[1:]):
        if parent == "snapshots" and _COMMIT_HASH.match(child):
            return child
    return None


# ----------------------------------------------------------------------------------------------
# Content digests of local files


def _cache_file() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "avt" / "file-digests.json"


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files_of(paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """(name recorded in the digest, file) for files and, recursively, non-hidden files of folders."""
    found = []
    for path in paths:
        if path.is_file():
            found.append((path.name, path))
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    file = Path(dirpath) / name
                    found.append((file.relative_to(path).as_posix(), file))
    return found


def content_digest(*paths: str | os.PathLike, remember: bool = True) -> str:
    """SHA-256 over the names, sizes and SHA-256 of every file of ``paths`` (files or folders).

    Large files' hashes are cached by (resolved path, size, mtime, inode): a resume re-reads nothing unless a
    file changed, and any change of content, size or time is hashed again. ``remember`` False reads the cache but
    writes nothing (a dry run).
    """
    cache_file = _cache_file()
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    changed = False
    digest = hashlib.sha256()
    for name, file in _files_of(Path(p) for p in paths):
        stat = file.stat()
        stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        key = str(file.resolve())
        entry = cache.get(key) if stat.st_size >= _CACHED_FILE_BYTES else None
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            file_hash = entry["sha256"]
        else:
            file_hash = _hash_file(file)
            if stat.st_size >= _CACHED_FILE_BYTES:
                cache[key] = {"stamp": stamp, "sha256": file_hash}
                changed = True
        digest.update(json.dumps([name, stat.st_size, file_hash]).encode("utf-8") + b"\n")
    if changed and remember:
        try:
            atomic_write_json(cache_file, cache)
        except OSError as error:  # a read-only home only costs rehashing next time
            logger.warning("could not update the digest cache %s: %s", cache_file, error)
    return digest.hexdigest()


def local_digest(name_or_path: str | os.PathLike | None, remember: bool = True) -> str | None:
    """:func:`content_digest` of a local file or folder; None for Hub ids (their commit identifies them)."""
    if name_or_path is None or not os.path.exists(name_or_path):
        return None
    return content_digest(name_or_path, remember=remember)


# ----------------------------------------------------------------------------------------------
# A model named before it loads (the dry runs)


@dataclass(frozen=True)
class ModelSource:
    """One model a run would load, as its manifest will name it: a local folder's content digest or a Hub commit."""

    role: str
    name: str
    where: str  # "local", "hub", or "msclap" (msclap finds its own weights)
    revision: str | None  # local: sha256 content digest; hub: the resolved commit (None: not resolvable now)
    requested: str | None = None  # --*-revision as given
    model_type: str | None = None  # from a local config.json

    def describe(self) -> str:
        if self.where == "msclap":
            return f"{self.role} {self.name} (msclap: weights from --scorer-weights, else downloaded when it loads)"
        if self.where == "local":
            kind = f"{self.model_type}, " if self.model_type else ""
            return f"{self.role} {self.name} (local, {kind}content digest {(self.revision or '?')[:16]})"
        asked = self.requested or "main"
        found = (
            f"commit {self.revision}"
            if self.revision
            else "commit not resolved (Hub unreachable, not cached)"
        )
        return f"{self.role} {self.name} (Hub, revision {asked}: {found})"


def model_source(role: str, name: str, revision: str | None = None, digest: str | None = None) -> ModelSource:
    """Where ``name`` loads from; ``digest``: the local digest already computed (planned_models), else computed here
    without updating the digest cache."""
    if os.path.exists(name):
        return ModelSource(
            role, name, "local", digest or local_digest(name, remember=False), None, _model_type(name)
        )
    return ModelSource(role, name, "hub", resolve_commit_hash(name, revision), revision)


def _model_type(path: str) -> str | None:
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as handle:
            value = json.load(handle).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None
