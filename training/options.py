"""Options of the training commands as dataclasses: one declaration gives the Python API, the command line and the
checks.

Each field of an options dataclass is declared with ``option(...)``: its default, its ``--help`` text and its
argument group. ``add_options`` builds the argparse arguments from those fields (flag, type, choices, default), so
the command line cannot drift from the dataclass; ``options_from_any`` turns parsed arguments (or a dict) back into
the dataclass, whose ``__post_init__`` checks the values with ``require_positive`` / ``require_non_negative``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from avt_triplets.errors import UsageError

OptionsT = TypeVar("OptionsT")

HubStrategy = Literal["end", "every_save"]
MixedPrecision = Literal["no", "bf16", "fp16"]
HUB = "Hugging Face Hub"


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # noqa: A002 - argparse's name
    group: str,
    flag: str | None = None,
    aliases: tuple[str, ...] = (),
    type: Callable[[str], Any] | None = None,  # noqa: A002 - argparse's name
    metavar: str | None = None,
    nargs: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option; a list default is copied per instance."""
    metadata = {
        "help": help,
        "group": group,
        "flag": flag,
        "aliases": aliases,
        "type": type,
        "metavar": metavar,
    }
    metadata["nargs"] = nargs
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def optional_int(text: str) -> int | None:
    """`none`, `0` or empty turn an integer option off."""
    return None if text.lower() in ("none", "0", "") else int(text)


def optional_str(text: str) -> str | None:
    """`none` or empty turn a text option off."""
    return None if text.lower() in ("none", "") else text


def flag(name: str) -> str:
    """The command-line spelling of an option name."""
    return "--" + name.replace("_", "-")


def _base_type(hint: Any) -> Any:
    """``int | None`` -> ``int``; other hints unchanged."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (base,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return base
    return hint


def _argument(field: dataclasses.Field, hint: Any) -> tuple[list[str], dict[str, Any]]:
    """argparse ``add_argument`` positional and keyword arguments for one options field."""
    meta = field.metadata
    base = _base_type(hint)
    required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
    default = (
        None
        if required
        else field.default_factory()
        if field.default is dataclasses.MISSING
        else field.default
    )
    kwargs: dict[str, Any] = {"dest": field.name, "help": meta["help"], "default": default}
    flags = [meta["flag"] or flag(field.name), *meta["aliases"]]
    if base is bool:
        kwargs["action"] = "store_false" if default else "store_true"
        flags = [meta["flag"] or ("--no-" + field.name.replace("_", "-") if default else flag(field.name))]
        return flags, kwargs
    if typing.get_origin(base) is list:
        (base,) = typing.get_args(base)
        if meta["nargs"]:
            kwargs["nargs"] = meta["nargs"]
        else:
            kwargs.update(action="append", default=None)
    if typing.get_origin(base) is typing.Literal:
        kwargs["choices"] = typing.get_args(base)
        base = str
    kwargs.update(type=meta["type"] or base, required=required)
    if meta["metavar"]:
        kwargs["metavar"] = meta["metavar"]
    return flags, kwargs


def add_options(parser: argparse.ArgumentParser, cls: type, groups: tuple[str, ...] = ()) -> None:
    """One argument per ``option`` field of ``cls``, in field order within argument groups named by the fields
    (``groups`` first, in that order; any other group after them).

    Repeatable options (``action="append"``) start from None and fall back to the dataclass default in
    ``options_from_any``, because argparse would append to a non-empty default instead of replacing it.
    """
    hints = typing.get_type_hints(cls)
    made = {title: parser.add_argument_group(title) for title in groups}
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata:
            continue
        title = field.metadata["group"]
        group = made.get(title) or made.setdefault(title, parser.add_argument_group(title))
        flags, kwargs = _argument(field, hints[field.name])
        group.add_argument(*flags, **kwargs)


def options_from_any(cls: type[OptionsT], value: OptionsT | argparse.Namespace | dict[str, Any]) -> OptionsT:
    """Build the options dataclass ``cls`` from itself, parsed CLI args or a dict. Unknown keys are ignored (the CLI
    namespace also carries the subcommand's own plumbing); None for a repeatable option means "not given"."""
    if isinstance(value, cls):
        return value
    values = vars(value) if isinstance(value, argparse.Namespace) else dict(value)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    given = {
        k: v
        for k, v in values.items()
        if k in fields and not (v is None and fields[k].default_factory is not dataclasses.MISSING)
    }
    return cls(**given)


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


@dataclasses.dataclass(kw_only=True)
class HubOptions:
    """The Hub options both training commands have (keyword-only, so they may follow required fields)."""

    push_to_hub: str | None = option(
        None, metavar="REPO_ID", group=HUB, help="push the final model to this Hub model repo"
    )
    hub_strategy: HubStrategy = option(
        "end",
        group=HUB,
        help="end: push the final model once; every_save: also upload each checkpoint (background) as saved",
    )
    hub_private: bool = option(False, group=HUB, help="create the Hub repo as private")
    hub_token: str | None = option(
        None,
        group=HUB,
        help="Hub token (default: the logged-in token / HF_TOKEN); handed to huggingface_hub only, never written",
    )
