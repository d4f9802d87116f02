"""Which listed videos are not there, found with one ``stat`` per file before any model loads.

A VGGSound or AudioSet download always misses some clips (videos taken down), so a run goes on without them and
records each as an ``unreadable_path`` failure. When most are missing, the usual cause is a wrong
``--input-root`` or ``--path-template``: the run still writes what it could, but then exits non-zero naming
the root and template it tried, one path it expected and one file that is there, and the flag that accepts
it (``--max-missing-fraction``). A local stat costs microseconds (200,000 in seconds, in threads so that a
network filesystem's latency overlaps); videos at a URL are not checked here (their decode workers say so).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from avt_core import storage

_THREADS = 16
_WALK_LIMIT = 20_000  # entries looked at to find one existing video under the root


@dataclass(frozen=True)
class MissingVideos:
    """How many of a list's videos are missing under its root, and what to show the user about it."""

    total: int
    missing: int
    root: str
    path_template: str | None  # None: the list names its files itself (video_path rows)
    first_missing: str | None = None
    one_present: str | None = None  # a video that is there under the root (found when most are missing)

    @property
    def fraction(self) -> float:
        return self.missing / self.total if self.total else 0.0

    def exceeds(self, max_fraction: float) -> bool:
        return self.missing > 0 and self.fraction > max_fraction

    def _where(self) -> str:
        template = f" (--path-template {self.path_template})" if self.path_template else ""
        return f"under {self.root}{template}"

    def count_line(self) -> str:
        """Printed before any model loads."""
        return f"{self.missing} of {self.total} listed videos are missing {self._where()}" + (
            f"; first missing: {self.first_missing}" if self.first_missing else ""
        )

    def error_line(self, max_fraction: float) -> str:
        """Why the run is refused (nothing there) or exits non-zero (more missing than allowed)."""
        present = f", while {self.one_present} is there" if self.one_present else ", and no video is there"
        allowed = min(1.0, math.ceil(self.fraction * 100) / 100)
        return (
            f"{self.missing} of {self.total} listed videos ({self.fraction:.0%}) are missing {self._where()}: "
            f"expected {self.first_missing}{present}. Check --input-root and --path-template, or pass "
            f"--max-missing-fraction {allowed:g} to accept it (now {max_fraction:g})"
        )


def _absent(paths: Sequence[str]) -> list[str]:
    return [path for path in paths if not os.path.exists(path)]


def absent_files(paths: Iterable[str]) -> list[str]:
    """The local ``paths`` that do not exist, in order (stat calls in threads)."""
    paths = list(paths)
    if len(paths) < 4 * _THREADS:
        return _absent(paths)
    step = math.ceil(len(paths) / _THREADS)
    with ThreadPoolExecutor(_THREADS) as pool:
        parts = pool.map(_absent, [paths[i : i + step] for i in range(0, len(paths), step)])
        return [path for part in parts for path in part]


def one_video_under(root: Path, extensions: Iterable[str]) -> str | None:
    """Some video file under ``root`` (breadth first, at most a few thousand entries looked at), or None."""
    wanted, folders, seen = {e.lower() for e in extensions}, [str(root)], 0
    while folders and seen < _WALK_LIMIT:
        try:
            entries = sorted(os.scandir(folders.pop(0)), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif os.path.splitext(entry.name)[1].lower() in wanted:
                return entry.path
    return None


def find_missing(
    sources: Sequence[str], root: Path, path_template: str | None, extensions: Iterable[str]
) -> MissingVideos | None:
    """Stat every local source once; videos at a URL are left out (None when every video is at one)."""
    if storage.is_remote(root):
        return None
    local = [source for source in sources if not storage.is_url(source)]
    if not local:
        return None
    absent = absent_files(dict.fromkeys(local))
    absent_set = set(absent)
    missing = sum(1 for source in local if source in absent_set) if absent else 0
    report = MissingVideos(len(local), missing, str(root), path_template, absent[0] if absent else None)
    if missing * 2 > len(local):  # most are missing: find one that is there to show next to the expected one
        report = replace(report, one_present=one_video_under(root, extensions))
    return report


__all__ = ["MissingVideos", "absent_files", "find_missing", "one_video_under"]
