"""Options shared by the training commands (the Hub group) and their type aliases.

The machinery that turns options dataclasses into command lines lives in :mod:`avt_triplets.dataclass_cli`,
shared with ``avt generate``; it is re-exported here for the training configs.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from avt_triplets.dataclass_cli import (
    add_options,
    flag,
    option,
    optional_int,
    optional_str,
    options_from_any,
    require_non_negative,
    require_positive,
)

HubStrategy = Literal["end", "every_save"]
MixedPrecision = Literal["no", "bf16", "fp16"]
HUB = "Hugging Face Hub"
# What `--report-to` takes: accelerate's trackers (accelerate.utils.LoggerType), as transformers 5 "none" by default.
TRACKERS_HELP = (
    "trackers, as accelerate names them: tensorboard, wandb, trackio, mlflow, comet_ml, aim, clearml, dvclive, "
    "swanlab (installed separately), all (every installed one) or none (default, as transformers 5)"
)


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


__all__ = [
    "HUB",
    "HubOptions",
    "HubStrategy",
    "MixedPrecision",
    "TRACKERS_HELP",
    "add_options",
    "flag",
    "option",
    "optional_int",
    "optional_str",
    "options_from_any",
    "require_non_negative",
    "require_positive",
]
