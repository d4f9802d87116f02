"""Options dataclasses that are also command lines: one declaration gives the Python API, the CLI and the checks.

Each field of an options dataclass is declared with ``option(...)``: its default, its ``--help`` text and its
argument group. ``add_options`` builds the argparse arguments from those fields (flag, type, choices, default), so
the command line cannot drift from the dataclass; ``options_from_any`` turns parsed arguments (or a dict) back into
the dataclass, whose ``__post_init__`` checks the values with ``require_positive`` / ``require_non_negative`` (a
:class:`~avt_core.errors.UsageError`, so the CLI prints one ``error:`` line). Every command builds its options this
way (``avt generate`` from :mod:`avt_triplets.options`, the training commands from ``avt_training``, filter, publish,
evaluate and demo from their command modules), so help, ``--config`` keys and the former spellings of an option
(``option(deprecated=...)``, a warning each, for one release) come from one declaration. ``--config FILE`` and
``avt_config.yaml`` work for all (:mod:`avt_core.run_config`).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from avt_core.errors import UsageError
from avt_core.launch import NUM_WORKERS_HELP
from avt_core.run_config import deprecate_flag

OptionsT = TypeVar("OptionsT")


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # noqa: A002 - argparse's name
    group: str,
    flag: str | None = None,
    aliases: tuple[str, ...] = (),
    deprecated: tuple[str, ...] = (),
    type: Callable[[str], Any] | None = None,  # noqa: A002 - argparse's name
    metavar: str | None = None,
    nargs: str | None = None,
    positional: bool = False,
    repr: bool = True,  # noqa: A002 - dataclasses' name; False keeps secrets out of the dataclass's repr
) -> Any:
    """A dataclass field that is also a command-line option; a list default is copied per instance. ``deprecated``:
    its former spellings, still accepted for one release with a warning (:func:`deprecate_flag`)."""
    metadata = {
        "help": help,
        "group": group,
        "flag": flag,
        "aliases": aliases,
        "deprecated": deprecated,
        "type": type,
        "metavar": metavar,
    }
    metadata["nargs"] = nargs
    metadata["positional"] = positional  # an operand (``avt filter DIR``), named by ``metavar`` in help
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata, repr=repr)
    return dataclasses.field(default=default, metadata=metadata, repr=repr)


def optional_int(text: str) -> int | None:
    """`none`, `0` or empty turn an integer option off."""
    return None if text.lower() in ("none", "0", "") else int(text)


def int_or_none(text: str) -> int | None:
    """`none` or empty leave an integer option unset; any number is kept (``0`` included, so a check can refuse
    it instead of it silently meaning "unset")."""
    return None if text.lower() in ("none", "") else int(text)


def optional_str(text: str) -> str | None:
    """`none` or empty turn a text option off."""
    return None if text.lower() in ("none", "") else text


def positive_int(text: str) -> int:
    """An integer option that counts something (a batch size, clips per class): 0 or less would do nothing."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer option where 0 turns something off (worker processes)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def workers_or_auto(text: str) -> int | None:
    """``--num-workers``: a count (0: inline), or ``auto`` for the one default rule (None). A negative count is
    refused by the options' checks (``require_non_negative``), as one ``error:`` line like every other value."""
    return None if text.lower() == "auto" else int(text)


def num_workers_option(what: str, group: str) -> Any:
    """The ``--num-workers`` field of every command: ``what`` the workers do; unset (None, ``auto``) it follows
    the one rule of :func:`avt_core.launch.default_num_workers`."""
    return option(
        None, group=group, type=workers_or_auto, metavar="N|auto", help=f"{what}; {NUM_WORKERS_HELP}"
    )


def json_object(text: str) -> dict[str, Any]:
    """A JSON object given on the command line (``--storage-options '{"anon": true}'``)."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def flag(name: str) -> str:
    """The command-line spelling of an option name."""
    return "--" + name.replace("_", "-")


def _base_type(hint: Any) -> Any:
    """``int | None`` -> ``int``; other hints (``int | Literal["auto"]``) unchanged."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        bases = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return bases[0] if len(bases) == 1 else hint  # several: the option's own ``type`` parses it
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
    if meta.get(
        "positional"
    ):  # argparse names an operand by its dest, and an operand is required by being one
        del kwargs["dest"], kwargs["required"]
        flags = [field.name]
    return flags, kwargs


def add_options(
    parser: argparse.ArgumentParser,
    cls: type,
    groups: tuple[str, ...] = (),
    made: dict[str, argparse._ArgumentGroup] | None = None,
) -> dict[str, argparse._ArgumentGroup]:
    """One argument per ``option`` field of ``cls``, in field order within argument groups named by the fields
    (``groups`` first, in that order; any other group after them). Returns the groups by title; pass them as
    ``made`` to add a second dataclass's options to the same groups.

    Repeatable options (``action="append"``) start from None and fall back to the dataclass default in
    ``options_from_any``, because argparse would append to a non-empty default instead of replacing it.
    """
    hints = typing.get_type_hints(cls)
    made = {} if made is None else made
    made.update({title: parser.add_argument_group(title) for title in groups if title not in made})
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata:
            continue
        title = field.metadata["group"]
        group = made.get(title) or made.setdefault(title, parser.add_argument_group(title))
        flags, kwargs = _argument(field, hints[field.name])
        group.add_argument(*flags, **kwargs)
        for old in field.metadata.get("deprecated", ()):
            deprecate_flag(parser, old, flags[0])
    return made


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
    require_finite(given)
    return cls(**given)


def require_finite(values: dict[str, Any]) -> None:
    """No option means NaN or infinity, though ``float()`` parses them (a NaN learning rate trains NaN weights, a
    NaN fps decodes nothing): every float value given is refused in one line when it is not finite."""
    import math

    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{flag(name)} must be a finite number, got {value}")


def require_positive(options: Any, *names: str) -> None:
    """Each named option must be > 0 when set (None means "not set" for optional ones): a zero batch size or step
    count would otherwise start a run that trains nothing."""
    for name in names:
        value = getattr(options, name)
        if value is not None and not value > 0:
            raise UsageError(f"{flag(name)} must be positive, got {value}")


def require_in_range(
    options: Any, name: str, low: float, high: float, *, high_inclusive: bool = True
) -> None:
    """The named option lies in ``[low, high]`` (``[low, high)`` when not ``high_inclusive``): a probability or a
    fraction outside it has no meaning."""
    value = getattr(options, name)
    inside = low <= value <= high if high_inclusive else low <= value < high
    if not inside:
        interval = f"[{low:g}, {high:g}{']' if high_inclusive else ')'}"
        raise UsageError(f"{flag(name)} must be in {interval}, got {value}")


def require_non_negative(options: Any, *names: str) -> None:
    for name in names:
        value = getattr(options, name)
        if value is not None and value < 0:
            raise UsageError(f"{flag(name)} must be 0 or more, got {value}")
