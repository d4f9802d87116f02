"""The exception types every `avt` subcommand shares for problems it reports in one line.

``avt`` turns them into a single ``error: ...`` line (no traceback):

- :class:`UsageError` (exit code 2): a mistake the user can fix in the options, inputs, folders or
  environment (bad option, unusable input, missing folder, unreachable service), found before work starts.
- :class:`RunAborted` (exit code 1): a run that could not go on, e.g. a model failing on a test input or
  on a single item, or a full disk; what was finished stays valid and the message says how to resume.

Everything else (our bugs) surfaces as a traceback. ``--debug`` or ``AVT_DEBUG=1`` shows the traceback of
these errors too.
"""

from __future__ import annotations

import os
import sys

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # the shell's code for a process stopped by Ctrl-C (128 + SIGINT)


class UsageError(Exception):
    """A problem with the user's options, inputs or environment, explained in one line."""


class RunAborted(Exception):
    """A run that could not go on (a broken model, a full disk); ``resumable`` when finished work was kept
    and rerunning the same command resumes it (the command line then says how)."""

    def __init__(self, message: str, resumable: bool = False):
        super().__init__(message)
        self.resumable = resumable

    def __reduce__(self):  # crosses process boundaries intact (raised in a Ray task, caught by the driver)
        return type(self), (str(self), self.resumable)


def report_error(error: UsageError | RunAborted, debug: bool = False) -> int:
    """Print ``error`` as the one ``error: ...`` line and return its exit code; with ``debug`` (or
    ``AVT_DEBUG=1``) raise it instead, so the traceback shows. Call it from the ``except`` that caught ``error``."""
    if debug or os.environ.get("AVT_DEBUG", "") not in ("", "0"):
        raise error
    print(f"error: {error}", file=sys.stderr)
    return EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILURE


__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_USAGE", "RunAborted", "UsageError", "report_error"]
