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


__all__ = ["EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_USAGE", "RunAborted", "UsageError"]
