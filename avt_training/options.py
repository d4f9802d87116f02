"""Options shared by the training commands (the Hub group, and field factories) and their type aliases.

The machinery that turns options dataclasses into command lines lives in :mod:`avt_core.dataclass_cli`,
shared with ``avt generate``; it is re-exported here for the training configs. An option several training commands
have is declared once here: the Hub group as a base dataclass, the others as field factories (each command puts
them in its own ``--help`` groups, and some add a sentence of their own).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from avt_core.dataclass_cli import (
    add_options,
    flag,
    int_or_none,
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


# -- field factories: one declaration of each option's help and default ---------------------------------------------


def train_split_option(group: str, deprecated: tuple[str, ...] = ()) -> Any:
    return option("train", group=group, deprecated=deprecated, help="split to read from every --dataset")


def eval_split_option(group: str) -> Any:
    return option(
        "train",
        group=group,
        deprecated=("--eval-dataset-split",),
        help="split to read from every --eval-dataset",
    )


def shuffle_window_option(group: str, also: str) -> Any:
    """``--shuffle-window``: what a window is, and what it costs in memory (``docs/performance.md``)."""
    return option(
        512,  # avt_data.block_sampler.DEFAULT_WINDOW (not imported: it imports torch, and --help must not)
        group=group,
        help="clips mixed together by each reader: datasets are read in place, row group by row group, in a "
        "random row-group order, and every window of this many clips is shuffled (rounded to whole batches). "
        "Each DataLoader worker holds its window and the next one (read ahead) as stored: its memory is about "
        "0.2 GB + 2 x window x 1.2 x a clip's stored size (~0.5 MB at paper size: ~0.8 GB at 512); " + also,
    )


def adam_beta_option(
    which: int, default: float, group: str, optimizer: str = "Adam", official: bool = True
) -> Any:
    source = f" (official {default:g})" if official else ""
    return option(default, group=group, help=f"{optimizer} beta{which}{source}")


def max_steps_option(group: str) -> Any:
    return option(
        None,
        type=int_or_none,
        group=group,
        help="stop after this many optimizer steps (overrides --num-epochs; `none`: train every epoch)",
    )


def lr_decay_start_option(default: int, group: str) -> Any:
    """The official multistep schedule's options take the command's official values as defaults."""
    return option(default, group=group, help=f"multistep: first decay after this epoch (official {default})")


def lr_decay_step_option(default: int, group: str) -> Any:
    return option(default, group=group, help=f"multistep: epochs between decays (official {default})")


def lr_decay_gamma_option(default: float, group: str) -> Any:
    return option(default, group=group, help=f"multistep: decay factor (official {default:g})")


def logging_steps_option(group: str) -> Any:
    return option(10, group=group, help="log averaged metrics every N optimizer steps")


def save_total_limit_option(group: str, deprecated: tuple[str, ...] = ()) -> Any:
    return option(
        None, type=optional_int, group=group, deprecated=deprecated, help="keep only the newest N checkpoints"
    )


def overwrite_option(group: str, also: str = "") -> Any:
    return option(
        False,
        group=group,
        help="start over in an --output-dir an earlier run of this command wrote, deleting what it wrote"
        + also,
    )


def report_to_option(group: str, also: str = "") -> Any:
    return option(["none"], nargs="+", group=group, help=TRACKERS_HELP + also)


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
    "adam_beta_option",
    "add_options",
    "eval_split_option",
    "logging_steps_option",
    "lr_decay_gamma_option",
    "lr_decay_start_option",
    "lr_decay_step_option",
    "max_steps_option",
    "overwrite_option",
    "report_to_option",
    "save_total_limit_option",
    "shuffle_window_option",
    "train_split_option",
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
