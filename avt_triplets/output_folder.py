"""Which folders avt writes into: a new or empty folder, or a generation output it wrote itself.

A generation output is recognised by its ``manifest.json`` (``format: avt-triplets/...``). Anything else, a
user's README or another project's ``data/`` folder, is never written to, and a folder avt cannot write to is
reported up front. The commands run these checks before loading any model, so a wrong ``--output-dir`` or
``DIR`` costs seconds, not a model load.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

from avt_core import storage
from avt_core.errors import UsageError
from avt_triplets import layout
from avt_triplets.output_lock import LOCK_FILE


def is_avt_output(root: str | os.PathLike) -> bool:
    """True when ``root`` holds a manifest written by ``avt generate``; a manifest that is there but damaged
    (truncated, not JSON) raises :class:`UsageError` naming it, rather than passing for "no manifest"."""
    path = storage.as_path(root) / layout.MANIFEST_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} cannot be read ({error})") from error
    try:
        manifest = json.loads(text)
    except ValueError as error:
        raise UsageError(
            f"{path} is damaged ({len(text.encode('utf-8'))} bytes, not valid JSON: {error}); restore it from a "
            "copy, or start this output over with `avt generate ... --overwrite`"
        ) from None
    return isinstance(manifest, dict) and str(manifest.get("format", "")).startswith("avt-triplets/")


def foreign_entries(root: Path) -> list[str]:
    """Entries of ``root`` other than avt's own in-flight temporaries (``.name.<pid>...tmp``) and output lock."""
    return sorted(
        name
        for name in storage.names(root)
        if not (name.startswith(".") and name.endswith(".tmp")) and name != LOCK_FILE
    )


def check_writable(root: Path) -> None:
    """Create ``root`` if needed and prove a file can be written in it, or raise :class:`UsageError`."""
    try:
        if storage.is_remote(root):  # a bucket that is missing, read-only or not ours fails here, in seconds
            probe = root / f".avt-write-check-{uuid.uuid4().hex[:8]}.tmp"
            probe.write_bytes(b"")
            storage.unlink(probe)
            return
        root.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=root, prefix=".avt-write-check-", suffix=".tmp")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        refused = storage.refused_access(error, root)
        raise UsageError(
            f"cannot write to {root}: {refused or getattr(error, 'strerror', None) or error}"
        ) from error


def generation_output_state(root: Path) -> str:
    """What ``--output root`` is to ``avt generate``, read without writing anything: ``new`` (not there yet),
    ``empty``, or ``avt output`` (its manifest: a rerun resumes it); :class:`UsageError` for a file or a folder
    holding anything else (the refusal a real run gives)."""
    if root.is_file():
        raise UsageError(f"--output-dir {root} is a file, not a folder")
    # Listed before the manifest is read: another run of this output (or another process of this launch) may write
    # its manifest meanwhile, and a listing taken after a "no manifest" answer would show it as a foreign file.
    entries = foreign_entries(root)
    if is_avt_output(root):
        return "avt output"
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise UsageError(
            f"--output-dir {root} is not empty ({shown}) and is not an avt generation output (no avt "
            f"{layout.MANIFEST_FILE}); avt writes only into a new or empty folder or one it wrote itself, "
            "so nothing of yours is overwritten. Choose another --output-dir."
        )
    return "empty" if root.exists() else "new"


def check_generation_output(root: Path, dry_run: bool = False) -> str:
    """The folder ``avt generate`` may write into: new, empty, or an avt output; created and writable. Returns
    what it is (:func:`generation_output_state`). ``dry_run``: nothing created or probed, permissions judged."""
    state = generation_output_state(root)
    if dry_run:
        check_writable_without_writing(root)
    else:
        check_writable(root)
    return state


def check_writable_without_writing(root: Path) -> None:
    """:func:`check_writable`'s refusal, judged from permissions alone (a dry run writes nothing): the folder, or
    the nearest existing folder above it that a run would create it in, must be writable. A store is not probed."""
    if storage.is_remote(root):
        return
    existing = next((folder for folder in (root, *root.parents) if folder.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to {root}: Permission denied ({existing} is not writable)")


def require_avt_output(root: str | os.PathLike) -> Path:
    """A generation output that ``avt filter`` / ``avt publish`` may rewrite (card, subsets), writable."""
    root = storage.as_path(root)
    with storage.access_refusals_as_usage_errors(root):
        return _require_avt_output(root)


def _require_avt_output(root: Path) -> Path:
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; run `avt generate --output-dir {root}` first")
    if not is_avt_output(root):
        raise UsageError(
            f"{root} is not an avt generation output (no avt {layout.MANIFEST_FILE}); run `avt generate` "
            "first. avt only rewrites the card of folders it wrote itself."
        )
    check_writable(root)
    return root


__all__ = [
    "check_generation_output",
    "check_writable",
    "check_writable_without_writing",
    "generation_output_state",
    "foreign_entries",
    "is_avt_output",
    "require_avt_output",
]
