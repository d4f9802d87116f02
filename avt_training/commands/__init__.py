"""Subcommand modules of `avt` for training (each: `add_arguments(parser)`, `run(args) -> int`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from avt_core.help_format import DefaultsHelpFormatter
from avt_training.options import add_options


def add_config_arguments(
    parser: argparse.ArgumentParser, config_class: type, groups: tuple[str, ...], epilog: str
) -> None:
    """A training command's options: its config dataclass's fields, in ``groups``; the epilog keeps its layout."""
    parser.epilog = epilog
    parser.formatter_class = DefaultsHelpFormatter
    add_options(parser, config_class, groups)


def run_with_logging(entry: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    """Run a training entry point; the CLI has set logging up (``--log-level``, INFO by default: a training run
    logs its progress, checkpoints and results)."""
    entry(args)
    return 0
