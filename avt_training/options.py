"""Options shared by the training commands (the Hub group) and their type aliases.

The machinery that turns options dataclasses into command lines lives in :mod:`avt_core.dataclass_cli`,
shared with ``avt generate``; it is re-exported here for the training configs.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from avt_core.dataclass_cli import (
    add_options,
    flag,
    num_workers_option,
    option,
    optional_int,
    optional_str,
    options_from_any,
    require_in_range,
    require_non_negative,
    require_positive,
)
from avt_core.errors import UsageError
from avt_triplets.model_sources import check_model_source

HubStrategy = Literal["end", "every_save"]
MixedPrecision = Literal["no", "bf16", "fp16"]
HUB = "Hugging Face Hub"
# What `--report-to` takes: accelerate's trackers (accelerate.utils.LoggerType), as transformers 5 "none" by default.
TRACKERS_HELP = (
    "trackers, as accelerate names them: tensorboard, wandb, trackio, mlflow, comet_ml, aim, clearml, dvclive, "
    "swanlab (installed separately), all (every installed one) or none (default, as transformers 5)"
)
# `--report-to` names accelerate and transformers both know -> the package each needs ("all": whatever is installed).
TRACKER_PACKAGES = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "trackio": "trackio",
    "mlflow": "mlflow",
    "comet_ml": "comet_ml",
    "aim": "aim",
    "clearml": "clearml",
    "dvclive": "dvclive",
    "swanlab": "swanlab",
}


def require_trackers(report_to: str | list[str] | None) -> list[str]:
    """The ``--report-to`` trackers (``none`` and empty left out; commas split), each one accelerate knows and
    whose package is installed: a misspelt or missing tracker is one line before training, not a traceback from
    accelerate or a run that silently logs nowhere."""
    import importlib.util

    if report_to is None:
        return []
    names = [report_to] if isinstance(report_to, str) else list(report_to)
    names = [n for part in names for n in part.split(",") if n and n != "none"]
    for name in names:
        if name == "all":
            continue
        if name not in TRACKER_PACKAGES:
            raise UsageError(
                f"--report-to {name}: unknown tracker; use none or one of {', '.join(TRACKER_PACKAGES)}"
            )
        if importlib.util.find_spec(TRACKER_PACKAGES[name]) is None:
            raise UsageError(
                f"--report-to {name}: {TRACKER_PACKAGES[name]} is not installed (pip install {TRACKER_PACKAGES[name]}, "
                "or --report-to none)"
            )
    return names


def require_model_sources(options: object, *names: str) -> None:
    """Each named model option (None: not given) is an existing local path or a well-formed Hub id."""
    for name in names:
        check_model_source(getattr(options, name), flag(name))


@dataclasses.dataclass(kw_only=True)
class HubOptions:
    """The Hub options both training commands have (keyword-only, so they may follow required fields)."""

    push_to_hub: str | None = option(
        None,
        metavar="REPO_ID",
        group=HUB,
        aliases=(
            "--hub-model-id",
        ),  # transformers' name of the repo id (its push_to_hub is the on/off switch)
        help="push the final model to this Hub model repo",
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


__all__ = [
    "HUB",
    "TRACKER_PACKAGES",
    "HubOptions",
    "HubStrategy",
    "MixedPrecision",
    "TRACKERS_HELP",
    "add_options",
    "flag",
    "num_workers_option",
    "option",
    "optional_int",
    "optional_str",
    "options_from_any",
    "require_in_range",
    "require_model_sources",
    "require_non_negative",
    "require_positive",
    "require_trackers",
]
