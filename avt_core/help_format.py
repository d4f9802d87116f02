"""How every `avt` command's ``--help`` shows defaults: one formatter for all parsers."""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs laid out by hand keep their layout (examples), a one-paragraph one is wrapped; an
    option's help ends with ``(default: X)`` except where a default would mislead: an on/off flag (``--no-progress
    ... (default: True)`` reads backwards), a required option or a positional (``(default: None)``), an unset
    option, and help that names its default."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():  # laid out by hand (examples): kept as written
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)  # one paragraph: wrapped

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        misleading = (
            action.nargs == 0  # store_true / store_false / store_const / count
            or action.required
            or not action.option_strings
            or action.default is None
            or action.default is argparse.SUPPRESS
            or action.default == []
        )
        if misleading or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)"


__all__ = ["DefaultsHelpFormatter"]
