"""The loss options of ``avt pretrain``: the model config's loss settings, each declared once in the model package.

``modeling_lgcavmae/loss_settings_lgcavmae.py`` declares every weight and temperature of the pretraining loss (name,
default, help); ``LGCavMaeConfig`` takes its defaults from it and this module turns it into options of the same
names, then writes a run's values into the model config. That module imports nothing, but importing it as a
submodule would first run the package's ``__init__`` (torch and transformers, seconds): ``avt pretrain --help`` and a
mistyped option must answer at once, so the file is read from the package's folder without importing the package.

A run that starts from a checkpoint (``--model-name-or-path``, or the checkpoint ``--resume`` continues) keeps the
values saved in it unless an option is given (transformers' convention: a saved config wins over defaults); a new
model gets the defaults. An option's default is a :class:`DefaultFloat`, so "not given" survives argparse and the
options dataclass while it still reads, compares and prints as the number.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
from pathlib import Path
from typing import Any

from avt_core.dataclass_cli import flag, option, require_non_negative, require_positive
from avt_core.run_config import DefaultFloat, was_given

logger = logging.getLogger(__name__)

MODEL_PACKAGE = "modeling_lgcavmae"
SETTINGS_FILE = "loss_settings_lgcavmae.py"


@functools.cache
def model_loss_settings() -> tuple[Any, ...]:
    """``LOSS_SETTINGS`` of the installed model package (``LossSetting`` tuples: name, default, help, positive)."""
    package = importlib.util.find_spec(MODEL_PACKAGE)  # finds the package without running its __init__
    if package is None or not package.submodule_search_locations:
        raise ImportError(f"the {MODEL_PACKAGE} package is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / SETTINGS_FILE
    spec = importlib.util.spec_from_file_location(f"_avt_{MODEL_PACKAGE}_loss_settings", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.LOSS_SETTINGS)


def loss_options_dataclass(group: str, settings: tuple[Any, ...] | None = None) -> type:
    """A keyword-only options dataclass with one float field per loss setting (its default, as a
    :class:`DefaultFloat`, and help), for a command's options class to inherit."""
    settings = model_loss_settings() if settings is None else settings
    fields = [
        (s.name, float, option(DefaultFloat(s.default), group=group, help=loss_option_help(s)))
        for s in settings
    ]
    return dataclasses.make_dataclass("LossOptions", fields, kw_only=True)


def loss_option_help(setting: Any) -> str:
    """The setting's help and what its default means now that a checkpoint's own value wins."""
    return (
        f"{setting.help} (default: {setting.default:g} for a new model; a checkpoint's own value otherwise)"
    )


def require_loss_settings(options: Any) -> None:
    """Temperatures above 0, weights not negative (0 skips a term), before anything loads."""
    settings = model_loss_settings()
    require_positive(options, *(s.name for s in settings if s.positive))
    require_non_negative(options, *(s.name for s in settings if not s.positive))


def apply_loss_options(model_config: Any, options: Any, checkpoint: dict[str, Any] | None = None) -> None:
    """A run's loss settings into the model config (saved with the model). ``checkpoint``: the values saved in the
    checkpoint the run starts from (None for a new model); each one kept unless its option is given, and an option
    given that changes one is logged in one line."""
    for setting in model_loss_settings():
        value = getattr(options, setting.name)
        saved = None if checkpoint is None else checkpoint.get(setting.name)
        if saved is not None and not was_given(value):
            value = saved
        before = getattr(model_config, setting.name, None) if saved is None else saved
        if value != before:
            why = " given: replaces the checkpoint's value" if saved is not None else ""
            logger.info("%s %s -> %s (%s%s)", setting.name, before, value, flag(setting.name), why)
        setattr(model_config, setting.name, float(value))


def loss_settings_of(model_config: Any) -> dict[str, float]:
    """The loss settings a loaded model config holds (a checkpoint's saved values)."""
    return {
        s.name: getattr(model_config, s.name) for s in model_loss_settings() if hasattr(model_config, s.name)
    }


def saved_loss_settings(checkpoint: Path | None) -> dict[str, float] | None:
    """The loss settings saved in a training checkpoint's ``config.json`` (None without a checkpoint, or for one
    written before checkpoints carried their model config)."""
    import json

    config_file = None if checkpoint is None else Path(checkpoint) / "config.json"
    if config_file is None or not config_file.is_file():
        return None
    saved = json.loads(config_file.read_text())
    return {s.name: float(saved[s.name]) for s in model_loss_settings() if saved.get(s.name) is not None}


__all__ = [
    "DefaultFloat",
    "apply_loss_options",
    "loss_options_dataclass",
    "loss_settings_of",
    "model_loss_settings",
    "require_loss_settings",
    "saved_loss_settings",
    "was_given",
]
