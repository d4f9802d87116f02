"""``avt finetune --trainer-arg NAME=VALUE``: any other ``transformers.TrainingArguments`` field, checked against the
dataclass before data or models load.

Values are converted as ``HfArgumentParser`` converts ``--NAME VALUE`` (booleans, numbers, choices; a list field
takes comma-separated items), so a ``--trainer-arg`` means what the same flag means in a transformers example
script. Fields avt sets from its own options are refused with the option to use, and so are the ones avt cannot
honour (a silently ignored argument would be a lie): the optimiser is the official Adam, and Hub pushes go through
``--push-to-hub`` / ``--hub-token`` so no token is pickled into a checkpoint's ``training_args.bin``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
from typing import Any

from avt_core.errors import UsageError

# TrainingArguments field -> the `avt finetune` option that sets it.
OWN_OPTIONS = {
    "output_dir": "--output-dir",
    "per_device_train_batch_size": "--per-device-batch-size",
    "per_device_eval_batch_size": "--per-device-eval-batch-size",
    "gradient_accumulation_steps": "--gradient-accumulation-steps",
    "learning_rate": "--learning-rate",
    "weight_decay": "--weight-decay",
    "adam_beta1": "--adam-beta1",
    "adam_beta2": "--adam-beta2",
    "num_train_epochs": "--num-epochs",
    "max_steps": "--max-steps",
    "lr_scheduler_type": "--lr-scheduler",
    "warmup_steps": "--warmup-steps",
    "max_grad_norm": "--max-grad-norm",
    "bf16": "--mixed-precision bf16",
    "fp16": "--mixed-precision fp16",
    "seed": "--seed",
    "dataloader_num_workers": "--num-workers",
    "logging_steps": "--logging-steps",
    "eval_strategy": "--eval-strategy",
    "eval_steps": "--eval-steps",
    "save_strategy": "--save-strategy",
    "save_steps": "--save-steps",
    "save_total_limit": "--save-total-limit",
    "report_to": "--report-to",
    "run_name": "--run-name",
    "gradient_checkpointing": "--gradient-checkpointing",
    "activation_checkpointing": "--gradient-checkpointing",
    "torch_compile": "--torch-compile",
    "resume_from_checkpoint": "--resume",
}
_OFFICIAL_ADAM = (
    "avt finetune trains with the official Adam (--learning-rate, --head-lr-multiplier, --adam-beta1/2, "
)
_OFFICIAL_ADAM += "--weight-decay)"
_HUB = "Hub pushes go through --push-to-hub / --hub-strategy / --hub-private / --hub-token (Trainer would pickle "
_HUB += "the token into every checkpoint)"
NOT_HONOURED = {
    "optim": _OFFICIAL_ADAM,
    "optim_args": _OFFICIAL_ADAM,
    "optim_target_modules": _OFFICIAL_ADAM,
    "adam_epsilon": _OFFICIAL_ADAM,
    "remove_unused_columns": "the clip datasets return decoded clips, not model columns",
    "label_names": "the classifier's targets are `labels`",
    **{
        name: _HUB
        for name in ("push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo")
    },
}


def parse_trainer_args(pairs: list[str]) -> dict[str, Any]:
    """``["name=value", ...]`` -> typed ``TrainingArguments`` keyword arguments; an unknown field, a field avt sets
    or cannot honour, or a value of the wrong type is a ``UsageError`` naming it."""
    if not pairs:
        return {}
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(TrainingArguments)
    fields = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--trainer-arg {pair!r}: expected NAME=VALUE (a TrainingArguments field)")
        _check_name(name, fields)
        values[name] = _convert(parser._option_string_actions[f"--{name}"], name, raw)
    return values


def _check_name(name: str, fields: set[str]) -> None:
    if name not in fields:
        close = difflib.get_close_matches(name, sorted(fields), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"--trainer-arg {name}: TrainingArguments has no such field{hint}")
    if name in OWN_OPTIONS:
        raise UsageError(f"--trainer-arg {name}: set it with {OWN_OPTIONS[name]}")
    if name in NOT_HONOURED:
        raise UsageError(f"--trainer-arg {name}: not available, {NOT_HONOURED[name]}")


def _convert(action: argparse.Action, name: str, raw: str) -> Any:
    """The value as argparse would hand it to ``TrainingArguments`` for ``--name raw``."""
    convert = action.type or str
    is_list = action.nargs in ("+", "*")
    items = [item.strip() for item in raw.split(",")] if is_list else [raw]
    try:
        converted = [convert(item) for item in items]
    except (ValueError, TypeError, argparse.ArgumentTypeError) as error:
        raise UsageError(f"--trainer-arg {name}={raw}: not a valid value ({error})") from None
    if action.choices is not None:
        for value in converted:
            if value not in action.choices:
                choices = ", ".join(str(c) for c in action.choices)
                raise UsageError(f"--trainer-arg {name}={raw}: choose from {choices}")
    return converted if is_list else converted[0]


def build_training_arguments(**kwargs: Any):
    """``TrainingArguments(**kwargs)``; its own consistency checks (e.g. ``load_best_model_at_end`` with
    mismatched strategies) become one ``error:`` line."""
    from transformers import TrainingArguments

    try:
        return TrainingArguments(**kwargs)
    except (ValueError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"training arguments: {first_line}") from None
