"""Where a model is loaded from (a local folder or file, or a Hub id), checked before anything loads, and every way
loading it can fail because of what the user gave, as one line.

Every command that loads a model goes through here (``avt generate``'s captioner and scorer, the training commands'
``--model`` options, ``avt evaluate --model``), so the same mistake reads the same everywhere:

- a name that looks like a path but does not exist: "no such file or folder" (not a malformed-Hub-id message);
- a name that is neither a path nor a valid Hub id (``"my model!"``): said before the Hub is asked;
- a folder the library cannot read (``config.json`` missing or truncated, weights truncated, a model of another
  kind): :func:`loading_errors` turns the library's exception into one :class:`UsageError` naming the option,
  the folder and the library's first line, instead of a 30-60-line traceback.

Light imports only (the training options call :func:`check_model_source` in ``__post_init__``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator
from typing import Any

from avt_core.errors import UsageError


def looks_like_local_path(name: str) -> bool:
    """Paths, not Hub ids: absolute, ``./``, ``~``, or more than one ``/`` (ids are ``name`` or ``owner/name``)."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or name.endswith("/") or "\\" in name


def require_model_source(name_or_path: str | os.PathLike, what: str) -> None:
    """Raise :class:`UsageError` when ``name_or_path`` names a local path that does not exist."""
    name = os.fspath(name_or_path)
    if not os.path.exists(os.path.expanduser(name)) and looks_like_local_path(name):
        raise UsageError(f"{what} {name}: no such file or folder")


def check_model_source(name_or_path: str | os.PathLike | None, what: str) -> None:
    """``name_or_path`` is an existing local file, a local folder with a ``config.json``, or a well-formed Hub id
    (whether the Hub has it is found out when it loads); :class:`UsageError` naming the option ``what`` otherwise.
    None (not given) passes."""
    if name_or_path is None:
        return
    require_model_source(name_or_path, what)
    name = os.fspath(name_or_path)
    folder = os.path.expanduser(name)
    if not os.path.exists(folder):
        require_hub_id(name, what, "not a local folder and not a Hub id")
    elif os.path.isdir(folder) and not os.path.isfile(os.path.join(folder, "config.json")):
        # transformers would build the model from its class's default config and load (or half-load) the weights
        # into that: a full-size random model, or shapes that fail deep inside the run
        raise UsageError(f"{what} {name}: no config.json in this folder; give a complete model folder")


def require_hub_id(name: str, what: str, problem: str = "not a Hub repository id") -> None:
    """``name`` is a well-formed Hub repository id (``name`` or ``owner/name``); one :class:`UsageError` line
    naming the option ``what`` before the Hub is asked."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as error:
        raise UsageError(
            f"{what} {name!r}: {problem} ({_first_line(error)}); use an id such as owner/name"
        ) from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def loading_failed(what: str, name_or_path: str | os.PathLike, error: BaseException) -> UsageError:
    """The one-line error for a model that could not be loaded from a local folder or the Hub."""
    name = os.fspath(name_or_path)
    where = "the local folder" if os.path.exists(name) else "the Hub (or its local cache)"
    hint = (
        " (is the folder complete? config.json and the weights must be whole files)"
        if os.path.isdir(name)
        else ""
    )
    return UsageError(f"could not load {what} {name!r} from {where}: {_first_line(error)}{hint}")


def _library_errors() -> tuple[type[BaseException], ...]:
    """What transformers, huggingface_hub and safetensors raise for unusable files or ids: OSError (missing file,
    unknown repo, no access), ValueError (truncated JSON, no ``model_type``, a config of another kind of model,
    malformed id), safetensors' error (truncated weights)."""
    errors: list[type[BaseException]] = [OSError, ValueError]
    try:
        from safetensors import SafetensorError

        errors.append(SafetensorError)
    except ImportError:  # pragma: no cover - safetensors comes with transformers
        pass
    return tuple(errors)


@contextlib.contextmanager
def loading_errors(what: str, name_or_path: str | os.PathLike) -> Iterator[None]:
    """Inside this block, a library error while loading ``what`` (e.g. "the captioner", "--model") from
    ``name_or_path`` becomes one :class:`UsageError` (``--debug`` still shows the library's traceback)."""
    try:
        yield
    except UsageError:
        raise
    except _library_errors() as error:
        raise loading_failed(what, name_or_path, error) from error


def require_model_type(
    what: str, name_or_path: str | os.PathLike, config: Any, expected: Collection[str], kind: str
) -> None:
    """``config.model_type`` is one of ``expected`` (``kind`` says what those are, for the message): a model of
    another kind would load with random weights where ours are missing, or fail deep inside the run."""
    found = getattr(config, "model_type", None)
    if found not in expected:
        raise UsageError(
            f"{what} {os.fspath(name_or_path)}: its config.json says model_type {found!r}, which is not {kind}"
        )


__all__ = [
    "check_model_source",
    "loading_errors",
    "loading_failed",
    "looks_like_local_path",
    "require_hub_id",
    "require_model_source",
    "require_model_type",
]
