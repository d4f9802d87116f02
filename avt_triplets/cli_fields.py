"""Command-line options declared once, on an options dataclass.

A field made with :func:`cli_field` keeps its default (and help) on the dataclass; :func:`add_dataclass_arguments`
turns such fields into argparse options, grouped, and :func:`dataclass_from_args` builds the dataclass back from
the parsed namespace. A CLI default therefore cannot drift from the library default. Standard library only, so
``avt --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_KEY = "cli"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def cli_field(
    default: Any,
    help: str,
    *,
    group: str,
    type: Callable[[str], Any] | None = None,
    flag: str | None = None,
    short: str | None = None,
    metavar: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option.

    ``flag`` defaults to ``--field-name``. A bool field defaulting to False becomes a switch that sets it; one
    defaulting to True needs a ``flag`` naming the switch that clears it (``--no-progress``).
    """
    if isinstance(default, bool) and default and flag is None:
        raise ValueError("a bool option that defaults to True needs the flag that turns it off")
    spec = {"help": help, "group": group, "type": type, "flag": flag, "short": short, "metavar": metavar}
    return dataclasses.field(default=default, metadata={_KEY: spec})


def cli_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls`` that are command-line options, in declaration order."""
    return [f for f in dataclasses.fields(cls) if _KEY in f.metadata]


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls: type, groups: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Add one option per :func:`cli_field` of ``cls``; returns the argument groups by title (reusable)."""
    groups = {} if groups is None else groups
    for f in cli_fields(cls):
        spec = f.metadata[_KEY]
        if spec["group"] not in groups:
            groups[spec["group"]] = parser.add_argument_group(spec["group"])
        names = [spec["flag"] or "--" + f.name.replace("_", "-")]
        if spec["short"]:
            names.append(spec["short"])
        kwargs: dict[str, Any] = {"dest": f.name, "default": f.default, "help": spec["help"]}
        if isinstance(f.default, bool):
            kwargs["action"] = "store_false" if f.default else "store_true"
        else:
            kwargs["type"] = spec["type"]
            kwargs["metavar"] = spec["metavar"]
        groups[spec["group"]].add_argument(*names, **kwargs)
    return groups


def dataclass_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """``cls`` with every command-line field taken from ``args`` (the others keep their defaults)."""
    return cls(**{f.name: getattr(args, f.name) for f in cli_fields(cls)})


__all__ = [
    "add_dataclass_arguments",
    "cli_field",
    "cli_fields",
    "dataclass_from_args",
    "non_negative_int",
    "positive_float",
    "positive_int",
]
