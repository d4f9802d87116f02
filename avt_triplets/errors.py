"""The one exception type for mistakes a user can fix, shared by every `avt` subcommand.

``avt`` turns a :class:`UsageError` into a single ``error: ...`` line and exit code 2 (no traceback),
so commands raise it for bad options, unusable inputs, missing folders or unreachable services and
let everything else (our bugs) surface as tracebacks. ``--debug`` or ``AVT_DEBUG=1`` shows the
traceback of a usage error too.
"""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_FAILURE = 1


class UsageError(Exception):
    """A problem with the user's options, inputs or environment, explained in one line."""


__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "UsageError"]
