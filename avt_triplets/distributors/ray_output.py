"""Ray's own output of the driver process goes to a file in Ray's log folder, not onto the run's terminal.

Even with ``log_to_driver=False``, Ray's C++ core in the driver writes its errors to file descriptor 2 (an actor
restart warning, a dead node's or a signal's stack dump: dozens of lines per event), and its error subscriber
prints messages published by the raylets (a worker or node that died) to ``sys.stdout``. While avt holds a Ray
connection, descriptor 2 and ``sys.stdout`` point at ``<ray session>/logs/avt-driver-<pid>.log``; avt's own lines
(progress bar, log records, ``error:`` lines) keep going to the original stderr through a duplicate of it. What
matters to the user is reported by avt in one line (:mod:`avt_triplets.distributors.ray_watch`).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import IO


def ray_log_folder() -> Path:
    """The Ray session's log folder on this machine (where Ray's own files are), else the temporary folder."""
    try:
        from ray._private.worker import _global_node

        return Path(_global_node.get_logs_dir_path())
    except Exception:  # noqa: BLE001 - not connected yet, or Ray moved it: any folder of logs will do
        return Path(tempfile.gettempdir())


def _is_descriptor_2(stream: IO[str]) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


class DriverOutputToLog:
    """Moves descriptor 2 and ``sys.stdout`` to a log file between :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._saved_fd: int | None = None
        self._terminal: IO[str] | None = None
        self._log: IO[str] | None = None
        self._previous: tuple[IO[str], IO[str]] | None = None
        self._handlers: list[logging.StreamHandler] = []

    def start(self, path: Path) -> None:
        """From now on, Ray's output goes to ``path``; nothing changes unless ``sys.stderr`` is descriptor 2 itself
        (a notebook's or a test's captured stream stays as it is)."""
        if not _is_descriptor_2(sys.stderr):
            return
        sys.stdout.flush()
        sys.stderr.flush()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._log = open(path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        self._saved_fd = os.dup(2)
        self._terminal = os.fdopen(
            os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="backslashreplace"
        )
        self._previous = (sys.stdout, sys.stderr)
        self._handlers = [  # logging's handlers hold the stream they were made with: keep them on the terminal
            handler
            for handler in logging.getLogger().handlers
            if type(handler) is logging.StreamHandler and handler.stream is sys.stderr
        ]
        for handler in self._handlers:
            handler.setStream(self._terminal)
        os.dup2(self._log.fileno(), 2)
        sys.stdout, sys.stderr = self._log, self._terminal

    def move(self, path: Path) -> None:
        """Go on in ``path`` (Ray's session folder, known once connected), keeping what was written so far."""
        if self._previous is None or path == self.path:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._log.flush()
        moved = open(path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        moved.write(self.path.read_text(encoding="utf-8", errors="replace"))
        os.dup2(moved.fileno(), 2)
        sys.stdout = moved
        self._log.close()
        self.path.unlink(missing_ok=True)
        self._log, self.path = moved, path

    def stop(self) -> None:
        if self._previous is None:
            return
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(self._saved_fd, 2)
        os.close(self._saved_fd)
        sys.stdout, sys.stderr = self._previous
        for handler in self._handlers:
            handler.setStream(self._previous[1])
        self._terminal.close()
        self._log.close()
        self._previous = None


__all__ = ["DriverOutputToLog", "ray_log_folder"]
