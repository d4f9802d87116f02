"""The accelerate settings a training run uses, and where each came from.

``accelerate launch`` reads ``accelerate config``'s saved default (``$HF_HOME/accelerate/default_config.yaml``) and
hands it to the processes in ``ACCELERATE_*`` variables; a plain ``avt pretrain`` has no launcher, so ``Accelerator()``
alone would ignore that file. ``effective_settings`` applies the order users expect: the command line, then
``accelerate launch``, then the saved config, then accelerate's own default. A saved config asking for several
processes cannot be honoured by one plain process: that is said, with the command that does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

LAUNCHED_PRECISION = "ACCELERATE_MIXED_PRECISION"  # set by `accelerate launch` for its processes


@dataclass(frozen=True)
class AccelerateSettings:
    """What the ``Accelerator`` is built with; ``source`` says where ``mixed_precision`` came from."""

    mixed_precision: str | None  # None: accelerate's default (the launcher's variable, else "no")
    source: str
    cpu: bool = False
    saved_num_processes: int = 1


def saved_config_path() -> Path:
    """``accelerate config``'s default file, found as accelerate finds it (at call time: ``HF_HOME`` may change)."""
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    hf_home = os.environ.get("HF_HOME", os.path.join(cache, "huggingface"))
    return Path(hf_home).expanduser() / "accelerate" / "default_config.yaml"


def effective_settings(mixed_precision: str | None) -> AccelerateSettings:
    """``--mixed-precision`` > ``accelerate launch`` > ``accelerate config``'s saved default > ``no``."""
    if mixed_precision is not None:
        return AccelerateSettings(mixed_precision, "--mixed-precision")
    if os.environ.get(LAUNCHED_PRECISION):
        return AccelerateSettings(None, "accelerate launch")
    path = saved_config_path()
    if os.environ.get("WORLD_SIZE") or not path.is_file():  # under another launcher (torchrun): its settings
        return AccelerateSettings(None, "default")
    from accelerate.commands.config.config_args import load_config_from_file

    saved = load_config_from_file(str(path))
    return AccelerateSettings(
        mixed_precision=str(getattr(saved.mixed_precision, "value", saved.mixed_precision) or "no"),
        source=f"accelerate config ({path})",
        cpu=bool(getattr(saved, "use_cpu", False)),
        saved_num_processes=int(getattr(saved, "num_processes", 1) or 1),
    )


def log_effective(accelerator, settings: AccelerateSettings) -> None:
    """One line with what the run really uses; a warning when the saved config wants processes this run lacks."""
    logger.info(
        "accelerate: mixed precision %s (from %s), %d process(es), device %s",
        accelerator.mixed_precision,
        settings.source,
        accelerator.num_processes,
        accelerator.device,
    )
    if settings.saved_num_processes > accelerator.num_processes:
        logger.warning(
            "accelerate config asks for %d processes but this is one plain process: run `accelerate launch "
            "$(which avt) pretrain ...` to use them",
            settings.saved_num_processes,
        )
