"""Subcommand modules of `avt` for training (each: `add_arguments(parser)`, `run(args) -> int`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from avt_core.help_format import DefaultsHelpFormatter
from avt_training.options import add_options

DRY_RUN_HELP = (
    "Say what the run would do and stop: rows per dataset (after the run's own checks), steps per epoch, epochs, "
    "optimizer steps, the learning-rate schedule, the effective batch (per device x processes x accumulation), "
    "the checkpoint --resume would continue, the output folder's state and an estimate of GPU-hours. Nothing is "
    "written and no weights are loaded (configs only). Exit 0 when the run would start, 2 with the run's own "
    "error line when it would be refused. The last line is the plan as JSON."
)


def add_config_arguments(
    parser: argparse.ArgumentParser,
    config_class: type,
    groups: tuple[str, ...],
    epilog: str,
    dry_run_group: str | None = None,
) -> None:
    """A training command's options: its config dataclass's fields, in ``groups``; the epilog keeps its layout;
    ``dry_run_group``: the group that gets ``--dry-run`` (:data:`DRY_RUN_HELP`, read by :func:`run_or_plan`)."""
    parser.epilog = epilog
    parser.formatter_class = DefaultsHelpFormatter
    made = add_options(parser, config_class, groups)
    if dry_run_group is not None:
        made[dry_run_group].add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)


def run_or_plan(
    entry: Callable[[argparse.Namespace], Any],
    plan: Callable[[argparse.Namespace], Any],
    args: argparse.Namespace,
) -> int:
    """``--dry-run``: print the plan (a summary, then one JSON line) and stop; else :func:`run_with_logging`."""
    if not getattr(args, "dry_run", False):
        return run_with_logging(entry, args)
    from avt_training.run_plan import print_plan

    print_plan(plan(args))
    return 0


def run_with_logging(entry: Callable[[argparse.Namespace], Any], args: argparse.Namespace) -> int:
    """Run a training entry point; the CLI has set logging up (``--log-level``, INFO by default: a training run
    logs its progress, checkpoints and results)."""
    entry(args)
    return 0
