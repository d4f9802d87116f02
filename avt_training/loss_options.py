"""The loss options of ``avt pretrain``: the model config's loss settings, each declared once in the model package.

``modeling_lgcavmae/loss_settings_lgcavmae.py`` declares every weight and temperature of the pretraining loss (name,
default, help); ``LGCavMaeConfig`` takes its defaults from it and this module turns it into options of the same
names, then writes a run's values into the model config. That module imports nothing, but importing it as a
submodule would first run the package's ``__init__`` (torch and transformers, seconds): ``avt pretrain --help`` and a
mistyped option must answer at once, so the file is read from the package's folder without importing the package.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
from pathlib import Path
from typing import Any

from avt_core.dataclass_cli import flag, option, require_non_negative, require_positive

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
    """A keyword-only options dataclass with one float field per loss setting (its default and help), for a
    command's options class to inherit."""
    settings = model_loss_settings() if settings is None else settings
    fields = [(s.name, float, option(s.default, group=group, help=s.help)) for s in settings]
    return dataclasses.make_dataclass("LossOptions", fields, kw_only=True)


def require_loss_settings(options: Any) -> None:
    """Temperatures above 0, weights not negative (0 skips a term), before anything loads."""
    settings = model_loss_settings()
    require_positive(options, *(s.name for s in settings if s.positive))
    require_non_negative(options, *(s.name for s in settings if not s.positive))


def apply_loss_options(model_config: Any, options: Any) -> None:
    """A run's loss settings into the model config (saved with the model); each one that changes the starting
    model's value is logged."""
    for setting in model_loss_settings():
        value, before = getattr(options, setting.name), getattr(model_config, setting.name, None)
        if value != before:
            logger.info("%s %s -> %s (%s)", setting.name, before, value, flag(setting.name))
        setattr(model_config, setting.name, value)


__all__ = ["apply_loss_options", "loss_options_dataclass", "model_loss_settings", "require_loss_settings"]
