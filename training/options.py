"""Shared plumbing of the training entry points: options dataclasses filled from argparse or dicts."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

OptionsT = TypeVar("OptionsT")


def options_from_any(cls: type[OptionsT], value: OptionsT | argparse.Namespace | dict[str, Any]) -> OptionsT:
    """Build the options dataclass ``cls`` from itself, parsed CLI args or a dict; unknown keys are ignored
    (the CLI namespace also carries the subcommand's own plumbing)."""
    if isinstance(value, cls):
        return value
    values = vars(value) if isinstance(value, argparse.Namespace) else dict(value)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})
