"""Subcommand modules of `avt` for training (each: `add_arguments(parser)`, `run(args) -> int`)."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout; appends an option's default unless it is unset or the help names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default in (None, False, argparse.SUPPRESS) or action.option_strings == []
        if unset or "default" in text or action.default is True:
            return text
        return f"{text} (default: %(default)s)"
