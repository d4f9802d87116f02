"""Resolve the Hub commit a model was loaded from, for the provenance in the dataset card.

A branch name such as ``main`` moves; the commit hash does not. Loaders resolve the revision once, load every
file from that commit, and record it. Local folders have no commit: they resolve to ``None``.
"""

from __future__ import annotations

import logging
import os
import re

logger = logging.getLogger(__name__)

_COMMIT_HASH = re.compile(r"^[0-9a-f]{40}$")


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
