"""Run configs: `--config FILE` on every command, and the resolved options of each run written as YAML.

A run config is a YAML (or JSON, which YAML reads) mapping of option names to values: the destination names
(``output_dir``, ``datasets``, ``progress: false``) or the flags without dashes (``output-dir``, ``dataset``,
``no-progress: true``), hyphen or underscore spelled. The values become the parser's defaults, so a flag on the
command line overrides them; an unknown key is one ``error:`` line naming it. Every run writes its fully resolved
options as ``avt_config.yaml`` into its output folder (secrets left out), so ``--config OUT/avt_config.yaml``
repeats it. :class:`AvtArgumentParser` also turns argparse's prefix matching off (``--config`` was silently taken as
``--config-name-or-path``) and accepts the underscore spellings of Hugging Face examples (``--output_dir``), and
the former spellings of renamed options (:func:`deprecate_flag`: ``--output`` is ``--output-dir``, with one warning),
on the command line and as config keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from avt_core.errors import UsageError

CONFIG_FILE = "avt_config.yaml"
CONFIG_OPTION = "--config"
# filter and publish work in a generation output, whose avt_config.yaml is generate's: theirs get their own name
CONFIG_FILES = {"filter": "avt_config.filter.yaml", "publish": "avt_config.publish.yaml"}
# Never written: tokens and storage options (which carry credentials); pass them again, or set them in the
# environment (HF_TOKEN, FSSPEC_S3_ENDPOINT_URL, ...), when repeating a run.
SECRET_OPTIONS = frozenset({"hub_token", "token", "storage_options"})
_NOT_OPTIONS = frozenset({"help", "config", "debug", "command", "task", "task_runner", "dry_run"})


DEPRECATED_FLAGS = "avt_deprecated_flags"


def deprecate_flag(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept ``old`` (a former spelling) as ``new`` on ``parser`` for one release: hidden from ``--help``, one
    ``warning: OLD is deprecated, use NEW`` line when used on the command line or as a ``--config`` key
    (:class:`avt_core.run_config.AvtArgumentParser` rewrites it). Old scripts and run configs keep working while
    every command shows one vocabulary."""
    vars(parser).setdefault(DEPRECATED_FLAGS, {})[old] = new


def deprecated_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """The former spellings ``parser`` still accepts -> the flag each now is."""
    return vars(parser).get(DEPRECATED_FLAGS, {})


class AvtArgumentParser(argparse.ArgumentParser):
    """argparse without prefix matching, with ``--snake_case`` spellings and ``--config FILE`` defaults.

    Subcommand parsers are made with the parent's class, so every parser of `avt` behaves the same.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace=None):
        args = self._hyphenated(list(sys.argv[1:] if args is None else args))
        path = _config_path(args) if CONFIG_OPTION in self._option_string_actions else None
        repeated = apply_config(self, read_config(path)) if path is not None else {}
        namespace, extras = super().parse_known_args(args, namespace)
        for dest, values in repeated.items():  # a repeatable flag given on the command line replaces the list
            if getattr(namespace, dest, None) is None:
                setattr(namespace, dest, values)
        return namespace, extras

    def _hyphenated(self, args: list[str]) -> list[str]:
        """``--output_dir`` -> ``--output-dir`` where only the hyphenated flag exists, and a deprecated spelling
        (``--output``) -> the flag it now is, with one warning line each (up to ``--``)."""
        known, renamed = self._option_string_actions, deprecated_flags(self)
        out, warned = [], set()
        for position, arg in enumerate(args):
            if arg == "--":
                return out + args[position:]
            name, equals, value = arg.partition("=")
            spelled = name.replace("_", "-")
            if name.startswith("--") and name not in known and spelled in known:
                arg = spelled + equals + value
            elif name.startswith("-") and name not in known and (renamed.get(name) or renamed.get(spelled)):
                old = name if name in renamed else spelled
                if old not in warned:
                    warn_deprecated(old, renamed[old])
                    warned.add(old)
                arg = renamed[old] + equals + value
            out.append(arg)
        return out


def warn_deprecated(old: str, new: str) -> None:
    """The one line a former spelling prints (on the command line or as a ``--config`` key)."""
    print(f"warning: {old} is deprecated, use {new}", file=sys.stderr)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` on ``parser``, or on each of its subcommands' parsers (``avt evaluate retrieval``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                add_config_option(sub)
            return
    parser.add_argument(
        CONFIG_OPTION,
        metavar="FILE",
        default=None,
        help=f"YAML or JSON file of options (keys: option names, e.g. output_dir); flags on the command line "
        f"override it. Every run writes its resolved options as {CONFIG_FILE} in its output folder (secrets left out).",
    )


def _config_path(args: list[str]) -> str | None:
    """The value of the last ``--config`` among ``args`` (before ``--``)."""
    found = None
    for position, arg in enumerate(args):
        if arg == "--":
            break
        if arg == CONFIG_OPTION and position + 1 < len(args):
            found = args[position + 1]
        elif arg.startswith(CONFIG_OPTION + "="):
            found = arg.split("=", 1)[1]
    return found


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a YAML or JSON file, or :class:`UsageError` saying why not."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
        values = yaml.safe_load(text)
    except OSError as error:
        raise UsageError(f"--config {path}: {error.strerror or error}") from error
    except yaml.YAMLError as error:
        raise UsageError(f"--config {path} is not YAML or JSON: {' '.join(str(error).split())}") from error
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"--config {path} must hold a mapping of option names to values")
    return values


def _action_for(parser: argparse.ArgumentParser, key: str) -> tuple[argparse.Action, bool] | None:
    """The action a config key sets, and whether the value is negated (``no-progress: true``)."""
    dest = str(key).replace("-", "_")
    for action in parser._actions:
        if action.dest == dest and action.dest not in _NOT_OPTIONS:
            return action, False
    spelled = "--" + dest.replace("_", "-")
    action = parser._option_string_actions.get(spelled)
    new = deprecated_flags(parser).get(spelled)
    if action is None and new is not None:  # a former name (an older run's avt_config.yaml)
        warn_deprecated(spelled, new)
        action = parser._option_string_actions.get(new)
    if action is None or action.dest in _NOT_OPTIONS:
        return None
    negated = isinstance(action, argparse._StoreFalseAction)
    return action, negated


def apply_config(parser: argparse.ArgumentParser, values: Mapping[str, Any]) -> dict[str, list]:
    """The config's values as ``parser``'s defaults: options it sets are no longer required on the command line.
    Returns the repeatable options' values, which the caller fills in when the command line gives none (argparse
    would append the command line's to a default list instead of replacing it)."""
    found = {key: _action_for(parser, key) for key in values}
    unknown = [str(key) for key, hit in found.items() if hit is None]
    if unknown:
        raise UsageError(
            f"--config: unknown option(s) for {parser.prog}: {', '.join(unknown)} (see {parser.prog} --help)"
        )
    repeated = {}
    for key, (action, negated) in found.items():
        value = _checked(action, key, values[key])
        action.required = False
        if isinstance(action, argparse._AppendAction):
            repeated[action.dest] = value
            continue
        action.default = (not value) if negated else value
        if not action.option_strings and action.nargs is None:
            action.nargs = "?"  # a positional the config gives may be left out
    return repeated


def _checked(action: argparse.Action, key: str, value: Any) -> Any:
    """A config value as the command line would have parsed it: typed by the option's ``type``, in its choices."""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        if not isinstance(value, bool):
            raise UsageError(f"--config: {key} must be true or false, got {value!r}")
        return value
    many = (
        isinstance(action, argparse._AppendAction)
        or action.nargs in ("+", "*")
        or isinstance(action.nargs, int)
    )
    if many and value is not None:
        items = value if isinstance(value, list) else [value]
        return [_typed(action, key, item) for item in items]
    return _typed(action, key, value)


def _typed(action: argparse.Action, key: str, value: Any) -> Any:
    if value is not None and not isinstance(value, dict | list) and action.type is not None:
        try:
            value = action.type(str(value))
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            raise UsageError(f"--config: {key}: invalid value {value!r} ({error})") from error
    if action.choices is not None and value is not None and value not in action.choices:
        shown = ", ".join(map(str, action.choices))
        raise UsageError(f"--config: {key}: {value!r} is not one of {shown}")
    return value


class DefaultFloat(float):
    """A float option's default that says it was not given (argparse returns a default object as it is): for an
    option whose default yields to a value saved in a checkpoint (``avt_training.loss_options``). It reads,
    compares and prints as the number; a run's written config leaves it out, so repeating the run defers again."""

    def __repr__(self) -> str:
        return float.__repr__(self)


def was_given(value: Any) -> bool:
    """Whether an option's value was set (on the command line, in a config file or in code), not defaulted."""
    return not isinstance(value, DefaultFloat)


def _plain(value: Any) -> Any:
    """A value YAML writes as the user would type it: paths as text, tuples as lists."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def resolved_options(options: Any) -> dict[str, Any]:
    """Every option of a run, secrets and plumbing left out: from an options dataclass (its command-line fields)
    or from parsed arguments (a namespace or a dict, several dataclasses' options together). A default that yields
    to a checkpoint's saved value (``DefaultFloat``) is left out too: the repeated run yields again."""
    if dataclasses.is_dataclass(options):
        values = {
            f.name: getattr(options, f.name) for f in dataclasses.fields(options) if "help" in f.metadata
        }
    else:
        values = dict(vars(options) if isinstance(options, argparse.Namespace) else options)
    return {
        key: _plain(value)
        for key, value in values.items()
        if not key.startswith("_")
        and key not in _NOT_OPTIONS
        and key not in SECRET_OPTIONS
        and was_given(value)
    }


def config_path(folder: str | os.PathLike, command: str) -> Path:
    return Path(folder) / CONFIG_FILES.get(command, CONFIG_FILE)


def write_run_config(folder: str | os.PathLike, command: str, options: Any) -> Path | None:
    """Write ``avt_config.yaml`` (``avt_config.<command>.yaml`` for filter and publish) into ``folder``: what
    ``avt COMMAND --config`` reads back to repeat the run. Only one process of a launch writes it."""
    import yaml

    from avt_core import storage
    from avt_core.launch import launched_process

    if launched_process().rank != 0:
        return None
    path = storage.as_path(folder) / CONFIG_FILES.get(command, CONFIG_FILE)
    header = (
        f"# avt {command}: every option of the run (tokens and storage options left out)\n"
        f"# repeat it with: avt {command} --config {CONFIG_FILES.get(command, CONFIG_FILE)}\n"
    )
    text = header + yaml.safe_dump(resolved_options(options), sort_keys=False, allow_unicode=True)
    with storage.atomic_output(path) as handle:
        handle.write(text.encode("utf-8"))
    return path


__all__ = [
    "CONFIG_FILE",
    "AvtArgumentParser",
    "add_config_option",
    "deprecate_flag",
    "deprecated_flags",
    "apply_config",
    "config_path",
    "read_config",
    "resolved_options",
    "DefaultFloat",
    "was_given",
    "write_run_config",
]
