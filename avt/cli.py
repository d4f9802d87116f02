"""The `avt` command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported only when their subcommand runs, so ``avt --help`` stays instant and a broken
optional dependency of one command never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from avt_core import interrupts
from avt_core.run_config import AvtArgumentParser

# name -> (module, one-line help, also the subcommand's description)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": (
        "avt_triplets.commands.generate",
        "Caption and CLAP-score videos into an audio-visual-text triplet dataset, or store labelled clips "
        "without models (--captioner none); sharded, resumable.",
    ),
    "filter": (
        "avt_triplets.commands.filter",
        "Materialise top-k%% / random-k%% subsets (configs) over a generation output.",
    ),
    "publish": (
        "avt_triplets.commands.publish",
        "Write the dataset card and push a generation output to the Hugging Face Hub.",
    ),
    "pretrain": (
        "avt_training.commands.pretrain",
        "Pretrain LG-CAV-MAE on triplet datasets (run under `accelerate launch` for multi-GPU).",
    ),
    "finetune": (
        "avt_training.commands.finetune",
        "Fine-tune an LG-CAV-MAE checkpoint for audio-visual classification with transformers.Trainer.",
    ),
    "pretrain-slava": (
        "avt_training.commands.pretrain_slava",
        "Train SLAVA (frozen CLIP + CLAP towers, trained projections) on triplets; a cheap trimodal baseline.",
    ),
    "evaluate": (
        "eval.commands.evaluate",
        "Evaluate: audio<->visual(<->text) retrieval recall@K, or classification accuracy / mAP.",
    ),
    "demo": (
        "avt_triplets.commands.demo",
        "Run the whole pipeline offline on synthetic videos with tiny random-weight models.",
    ),
}


class OneLineErrorParser(AvtArgumentParser):
    """An option mistake is one ``error:`` line (exit 2), like every other error of `avt`: argparse's usage block
    in front of it buried the message (``--help`` still shows the usage). Subcommand parsers are of this class too
    (argparse makes them with the parent's class)."""

    def error(self, message: str) -> NoReturn:
        from avt_core.errors import EXIT_USAGE

        message = " ".join(message.split())
        option, sep, problem = message.removeprefix("argument ").partition(": ")
        if message.startswith("argument ") and sep and problem.startswith("must be"):
            message = f"{option} {problem}"  # "--fps must be ...", as the options' own checks say it
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; import the module of ``only`` (the chosen subcommand) alone."""
    from avt_core.common_options import add_common_options
    from avt_core.help_format import DefaultsHelpFormatter
    from avt_core.run_config import add_config_option

    parser = (
        OneLineErrorParser(  # no prefix matching, --snake_case spellings, one-line errors (every subcommand)
            prog="avt",
            description="avt: audio-visual-text triplet generation and LG-CAV-MAE training/evaluation.",
        )
    )
    from avt_triplets import __version__

    parser.add_argument("--version", action="version", version=f"avt {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="Show the full traceback of errors that are otherwise reported in one line (or set AVT_DEBUG=1).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text.replace("%%", "%"),
            formatter_class=DefaultsHelpFormatter,
        )
        # Also accepted after the subcommand (`avt generate ... --debug`); SUPPRESS keeps the top-level value.
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == only:
            module = importlib.import_module(module_name)
            module.add_arguments(p)
            add_common_options(p)  # --log-level, --no-progress: on every command, one meaning
            add_config_option(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. Ctrl-C or SIGTERM at any moment, the first seconds of imports included, ends in one
    line and exit 130 / 143 (``avt_core.interrupts``), never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    with interrupts.sigterm_as_interrupt():
        try:
            return _run(argv, chosen)
        except interrupts.Interrupted as stop:
            print(stop.message(argv), file=sys.stderr)
            return stop.exit_code
        except KeyboardInterrupt as stop:
            name = interrupts.signal_name(stop)
            print(f"interrupted by {name}: avt {chosen or ''} stopped".rstrip(), file=sys.stderr)
            return interrupts.exit_code(name)


def _run(argv: list[str], chosen: str | None) -> int:
    parser = build_parser(only=chosen)
    from avt_core.common_options import common_settings
    from avt_core.errors import RunAborted, UsageError, report_error

    try:
        args = parser.parse_args(argv)
    except UsageError as error:  # a --config file that is unreadable or names unknown options
        return report_error(error, "--debug" in argv)
    args._argv = argv  # what the user typed, for "rerun the same command to resume" messages
    args._avt = main  # the demo runs the other commands through this very entry point (no import back up)
    try:
        with common_settings(args):
            return int(args._run(args) or 0)
    except (UsageError, RunAborted) as error:
        return report_error(error, args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
