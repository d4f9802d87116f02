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
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
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
    switched = _library_bars_off()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _library_bars_on(switched)


def _bar_switches(package: str) -> tuple[Callable[[], bool], Callable[[], None], Callable[[], None]]:
    """A library's own progress-bar switches: (are they on, turn on, turn off)."""
    if package == "huggingface_hub":
        hub = importlib.import_module("huggingface_hub.utils")
        return (
            (lambda: not hub.are_progress_bars_disabled()),
            hub.enable_progress_bars,
            hub.disable_progress_bars,
        )
    if package == "datasets":
        ds = importlib.import_module("datasets")
        return ds.is_progress_bar_enabled, ds.enable_progress_bars, ds.disable_progress_bars
    tf = importlib.import_module("transformers.utils.logging")
    return tf.is_progress_bar_enabled, tf.enable_progress_bar, tf.disable_progress_bar


_LIBRARIES = ("huggingface_hub", "datasets", "transformers")


def _library_bars_off() -> tuple[str, ...]:
    """Turn off the bars of the libraries already imported whose bars are on (the others read the environment when
    they are imported); returns those turned off, to be turned on again after the run, and only those."""
    switched = []
    for package in _LIBRARIES:
        if package in sys.modules:
            are_on, _, turn_off = _bar_switches(package)
            if are_on():
                turn_off()
                switched.append(package)
    return tuple(switched)


def _library_bars_on(packages: tuple[str, ...]) -> None:
    for package in packages:
        with (
            warnings.catch_warnings()
        ):  # "cannot enable": the user's environment keeps them off, as it should
            warnings.simplefilter("ignore")
            _bar_switches(package)[1]()


__all__ = ["DEFAULT_LOG_LEVEL", "LOG_LEVELS", "add_common_options", "add_log_level", "common_settings"]
