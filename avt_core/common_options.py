"""The options every `avt` command has, with one meaning everywhere: ``--log-level`` and ``--no-progress``.

A command may declare them itself (``avt generate`` shows a longer help, its options dataclass has ``progress``);
:func:`add_common_options` adds whichever a command's parser lacks, and :func:`common_settings` applies both around
the run, so no command configures logging or progress bars on its own terms.

- ``--log-level LEVEL``: the Python logging level of the root logger, so of avt's messages (DEBUG, INFO, WARNING,
  ERROR, CRITICAL; any case; transformers keeps its own verbosity). The default is the level at which a command says what it does: INFO, WARNING for
  ``avt generate`` (whose INFO lists every skipped file).
- ``--no-progress``: no progress bar, avt's or a library's (tqdm, huggingface_hub, datasets, transformers), e.g. in
  batch jobs whose logs keep every redraw. The libraries' own switches are turned back on after the run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LOG_LEVEL = "INFO"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What turns the bars of each library off; read when a library is imported, so set before the command's imports.
_PROGRESS_ENV = ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS")


def _level(text: str) -> str:
    return text.upper()


def add_log_level(container: Any, default: str = DEFAULT_LOG_LEVEL, detail: str = "") -> None:
    """``--log-level`` on a parser or an argument group."""
    container.add_argument(
        "--log-level",
        type=_level,
        choices=LOG_LEVELS,
        default=default,
        help="Python logging level of avt's messages (the root logger's)" + (f"; {detail}" if detail else ""),
    )


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--no-progress`` on ``parser`` (or each of its subcommands' parsers) where it lacks
    them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                add_common_options(sub)
            return
    if "--log-level" not in parser._option_string_actions:
        add_log_level(parser)
    if "--no-progress" not in parser._option_string_actions:
        parser.add_argument(
            "--no-progress",
            dest="progress",
            action="store_false",
            help="No progress bars (avt's or the libraries'), e.g. for batch job logs.",
        )


@contextlib.contextmanager
def common_settings(args: argparse.Namespace) -> Iterator[None]:
    """Logging at ``args.log_level``; with ``--no-progress`` every library's progress bars off for the run (and
    back on after it, so a caller that runs several commands in one process gets each one's choice)."""
    logging.basicConfig(level=getattr(args, "log_level", DEFAULT_LOG_LEVEL), format=LOG_FORMAT)
    if getattr(args, "progress", True):
        yield
        return
    saved = {name: os.environ.get(name) for name in _PROGRESS_ENV}
    os.environ.update(dict.fromkeys(_PROGRESS_ENV, "1"))
    switched = _library_bars(enable=False)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _library_bars(enable=True, only=switched)


def _library_bars(*, enable: bool, only: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Switch the progress bars of the libraries already imported (the others read the environment when they
    are); returns the ones switched."""
    switches = {
        "huggingface_hub": ("huggingface_hub.utils", "enable_progress_bars", "disable_progress_bars"),
        "datasets": ("datasets", "enable_progress_bars", "disable_progress_bars"),
        "transformers": ("transformers.utils.logging", "enable_progress_bar", "disable_progress_bar"),
    }
    done = []
    for package, (module_name, on, off) in switches.items():
        if package not in sys.modules or (only is not None and package not in only):
            continue
        module = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
        with (
            warnings.catch_warnings()
        ):  # "cannot enable": the user's environment keeps them off, as it should
            warnings.simplefilter("ignore")
            getattr(module, on if enable else off)()
        done.append(package)
    return tuple(done)


__all__ = ["DEFAULT_LOG_LEVEL", "LOG_LEVELS", "add_common_options", "add_log_level", "common_settings"]
