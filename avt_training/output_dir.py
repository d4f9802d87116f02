"""Which folders the training commands write into: ``avt generate``'s rule (``avt_triplets.output_folder``) for
``--output-dir``.

A new or empty folder is used as is. A folder that an earlier run of the same command wrote (its marker file, or for
runs of older avt versions its layout: checkpoints, summaries, feature cache) is continued with ``--resume`` or
emptied with ``--overwrite``, never silently trained over beside the old checkpoints. Anything else, a folder avt did
not write or the output of another command, is refused in one line before any model loads.

Under several processes every process checks before the process group forms (``check``) and the main process
writes the marker after it has (``claim``): no process can see the folder another one of the same run just claimed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from avt_core.errors import UsageError
from avt_core.run_config import CONFIG_FILE
from avt_triplets.output_folder import (
    check_writable,
    check_writable_without_writing,
    foreign_entries,
    is_avt_output,
)

MARKER_FILE = (
    ".avt-training.json"  # {"format": "avt-training/1", "command": ...}; dot: Hub pushes leave it out
)
FORMAT = "avt-training/1"


def _has_checkpoint_folders(root: Path, prefix: str) -> bool:
    return any(p.is_dir() and p.name.startswith(prefix) for p in root.iterdir())


def _summary_has(root: Path, key: str) -> bool:
    try:
        return key in json.loads((root / "train_summary.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


# How outputs written before the marker existed look (checked only when there is no marker).
_LAYOUTS: dict[str, Callable[[Path], bool]] = {
    "pretrain": lambda root: (root / "checkpoints").is_dir() or _summary_has(root, "contrastive_scope"),
    "finetune": lambda root: (
        (root / "eval_results.json").is_file() or _has_checkpoint_folders(root, "checkpoint-")
    ),
    "pretrain-slava": lambda root: (root / "feature_cache").is_dir() or _summary_has(root, "variant"),
}


def _written_entries(root: Path) -> list[str]:
    """What is in ``root`` besides avt's temporaries, its marker, its run config and empty folders: a run refused or
    stopped before it wrote anything leaves a folder that counts as empty, so the corrected command simply runs."""

    def holds_files(path: Path) -> bool:
        return not path.is_dir() or any(p.is_file() for p in path.rglob("*"))

    if not root.is_dir():
        return []
    return [
        name
        for name in foreign_entries(root)
        if name not in (MARKER_FILE, CONFIG_FILE) and holds_files(root / name)
    ]


def written_by(root: Path) -> str | None:
    """The avt command whose output ``root`` is (``generate`` for a generation output), or None."""
    try:
        marker = json.loads((root / MARKER_FILE).read_text())
        if isinstance(marker, dict) and marker.get("format") == FORMAT:
            return str(marker.get("command"))
    except (OSError, ValueError):
        pass
    if is_avt_output(root):
        return "generate"
    return next((command for command, looks_like in _LAYOUTS.items() if looks_like(root)), None)


def output_state(
    root: str | Path, command: str, resume: bool, overwrite: bool, resume_flag: str | None
) -> str:
    """What ``--output-dir root`` is to ``command``, read without writing: ``new``, ``empty``, ``resumed`` (this
    command's earlier output, continued) or ``overwritten`` (started over); :class:`UsageError` with the refusal
    otherwise (a file, a folder avt did not write, another command's output, an earlier run without ``resume_flag``
    or --overwrite). ``resume_flag`` is how this command continues a run (None: it cannot)."""
    root = Path(root)
    continue_hint = f"pass {resume_flag} to continue it or --overwrite" if resume_flag else "pass --overwrite"
    if resume and overwrite:
        raise UsageError(f"pass only one of {resume_flag or '--resume'} and --overwrite")
    if root.is_file():
        raise UsageError(f"--output-dir {root} is a file, not a folder")
    entries = _written_entries(root)
    if not entries:
        return "empty" if root.is_dir() else "new"
    owner = written_by(root)
    if owner is None:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise UsageError(
            f"--output-dir {root} is not empty ({shown}) and is not an avt {command} output; avt writes only "
            "into a new or empty folder or one it wrote itself, so nothing of yours is overwritten. Choose "
            "another --output-dir."
        )
    if owner != command:
        raise UsageError(
            f"--output-dir {root} is an avt {owner} output, not an avt {command} one: choose another --output-dir"
        )
    if not (resume or overwrite):
        raise UsageError(
            f"--output-dir {root} holds an earlier avt {command} run: {continue_hint} to start over "
            "(deleting what it wrote)"
        )
    return "resumed" if resume else "overwritten"


def check(
    root: str | Path,
    command: str,
    resume: bool,
    overwrite: bool,
    resume_flag: str | None,
    dry_run: bool = False,
) -> Path:
    """Refuse ``--output-dir root`` unless it is new, empty, or this command's output continued (``resume``) or
    started over (``overwrite``) (:func:`output_state`), or when it cannot be written; ``dry_run`` judges that from
    permissions instead of writing a probe file."""
    root = Path(root)
    output_state(root, command, resume, overwrite, resume_flag)
    # created by `claim`, once every check passed: a refused run leaves no folder behind
    existing = next(folder for folder in (root, *root.parents) if folder.exists())
    if dry_run:
        check_writable_without_writing(existing)
    else:
        check_writable(existing)
    return root


def claim(root: str | Path, command: str, overwrite: bool, keep: tuple[str, ...] = ()) -> None:
    """On the main process, after ``check``: with ``overwrite`` delete the earlier run's files (except ``keep``,
    e.g. a cache worth reusing), then mark the folder as this command's output."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for entry in root.iterdir():
            if entry.name in keep or entry.name == MARKER_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    (root / MARKER_FILE).write_text(json.dumps({"format": FORMAT, "command": command}) + "\n")


__all__ = ["MARKER_FILE", "check", "claim", "output_state", "written_by"]
