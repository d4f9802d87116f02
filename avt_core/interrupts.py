"""Ctrl-C and SIGTERM in every `avt` command: one line that says what was kept and how to go on, no traceback.

SIGTERM (a scheduler stopping the job, ``kill``) is turned into the ``KeyboardInterrupt`` Ctrl-C raises, so one
``except`` handles both; ``avt.cli`` does it for the whole command, imports included, so even a Ctrl-C
during the first seconds prints one line. A command that keeps something worth resuming raises
:class:`Interrupted` with what it kept; the exit code is the shell's 128 + signal number (130 for SIGINT, 143 for
SIGTERM). This module imports nothing heavy: it is in place before any subcommand's imports start.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from collections.abc import Iterator, Sequence


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt("SIGTERM")`` while the block runs; the caller's handler comes back after."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def signal_name(interrupt: BaseException) -> str:
    """``SIGTERM`` for an interrupt raised by :func:`sigterm_as_interrupt` (or named so), else ``SIGINT``."""
    return "SIGTERM" if interrupt.args[:1] == ("SIGTERM",) else "SIGINT"


def exit_code(name: str) -> int:
    """The shell's code for a process stopped by the signal ``name``: 128 + its number."""
    return 128 + int(signal.Signals[name])


class Interrupted(Exception):
    """A run stopped by a signal. ``detail`` says what was kept; ``resume_flag`` (e.g. ``--resume latest``) is added
    to the user's command line, in place of any ``--resume``/``--overwrite`` it had, to continue."""

    def __init__(self, signal: str, detail: str, resume_flag: str | None = None):
        super().__init__(detail)
        self.signal, self.detail, self.resume_flag = signal, detail, resume_flag

    @property
    def exit_code(self) -> int:
        return exit_code(self.signal)

    def message(self, argv: Sequence[str]) -> str:
        return f"interrupted by {self.signal}: {self.detail}; resume with: {resume_command(argv, self.resume_flag)}"


def resume_command(argv: Sequence[str], resume_flag: str | None = None) -> str:
    """``avt ARGV`` (what the user typed), with ``resume_flag`` replacing ``--resume X`` / ``--overwrite``."""
    argv = list(argv)
    if resume_flag:
        kept: list[str] = []
        skip = False
        for arg in argv:
            if skip:
                skip = False
            elif arg == "--resume":
                skip = True
            elif not (arg.startswith("--resume=") or arg == "--overwrite"):
                kept.append(arg)
        argv = kept + shlex.split(resume_flag)
    return "avt " + shlex.join(argv)


__all__ = ["Interrupted", "exit_code", "resume_command", "signal_name", "sigterm_as_interrupt"]
