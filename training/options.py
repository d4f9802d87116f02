"""Shared plumbing of the training entry points: options dataclasses filled from argparse or dicts, and checked."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

from avt_triplets.errors import UsageError

OptionsT = TypeVar("OptionsT")


def options_from_any(cls: type[OptionsT], value: OptionsT | argparse.Namespace | dict[str, Any]) -> OptionsT:
    """Build the options dataclass ``cls`` from itself, parsed CLI args or a dict; unknown keys are ignored
    (the CLI namespace also carries the subcommand's own plumbing)."""
    if isinstance(value, cls):
        return value
    values = vars(value) if isinstance(value, argparse.Namespace) else dict(value)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def flag(name: str) -> str:
    """The command-line spelling of an option name."""
    return "--" + name.replace("_", "-")


def require_positive(options: Any, *names: str) -> None:
    """Each named option must be > 0 when set (None means "not set" for optional ones): a zero batch size or step
    count would otherwise start a run that trains nothing."""
    for name in names:
        value = getattr(options, name)
        if value is not None and not value > 0:
            raise UsageError(f"{flag(name)} must be positive, got {value}")


def require_non_negative(options: Any, *names: str) -> None:
    for name in names:
        value = getattr(options, name)
        if value is not None and value < 0:
            raise UsageError(f"{flag(name)} must be 0 or more, got {value}")
