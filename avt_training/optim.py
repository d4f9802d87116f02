"""Optimiser and learning-rate schedules of the official CAV-MAE recipe (plus cosine as an option)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from avt_training.pretrain_config import SchedulerName

# Official CAV-MAE: Adam (not AdamW), betas (0.95, 0.999), weight decay 5e-7.
OFFICIAL_BETAS = (0.95, 0.999)
OFFICIAL_WEIGHT_DECAY = 5e-7


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters that train; the frozen sin-cos position tables (``requires_grad=False``) are left out."""
    return [p for p in model.parameters() if p.requires_grad]


def build_adam(
    params: Iterable[torch.nn.Parameter] | list[dict],
    lr: float,
    betas: tuple[float, float] = OFFICIAL_BETAS,
    weight_decay: float = OFFICIAL_WEIGHT_DECAY,
) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay)


def official_milestones(start_epoch: int, step_epochs: int, num_epochs: int) -> list[int]:
    """Epochs after which the official ``MultiStepLR`` multiplies the lr by gamma: start, start + step, ..."""
    return list(range(start_epoch, max(1000, num_epochs + 1), step_epochs))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: SchedulerName,
    *,
    num_epochs: int,
    total_steps: int,
    warmup_steps: int = 0,
    decay_start_epoch: int = 10,
    decay_step_epochs: int = 5,
    decay_gamma: float = 0.5,
) -> torch.optim.lr_scheduler.LRScheduler:
    """``multistep`` is stepped once per epoch (official); ``cosine``/``constant`` once per optimizer step.

    With the official values (10, 5, 0.5), epochs 1-10 use lr, 11-15 lr/2, 16-20 lr/4, 21-25 lr/8.
    """
    if name == "multistep":
        if warmup_steps:
            raise ValueError(
                "the official multistep schedule has no warmup; use --lr-scheduler cosine|constant"
            )
        milestones = official_milestones(decay_start_epoch, decay_step_epochs, num_epochs)
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=decay_gamma)
    from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

    if name == "cosine":
        return get_cosine_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    if name == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup_steps)
    raise ValueError(f"unknown lr scheduler {name!r}")


def describe_schedule(config: Any, num_epochs: float, total_steps: int) -> str:
    """The learning-rate schedule of a pretrain or finetune ``config`` in words (the dry runs print it): the same
    milestones :func:`build_scheduler` and fine-tuning's per-step factor use."""
    lr = f"lr {config.learning_rate:g}"
    head = getattr(config, "head_lr_multiplier", None)
    if head:
        lr += f" (head x{head:g})"
    if config.lr_scheduler == "multistep":
        epochs = math.ceil(num_epochs)
        milestones = [
            m
            for m in official_milestones(config.lr_decay_start_epoch, config.lr_decay_step_epochs, epochs)
            if m < epochs
        ]
        if not milestones:
            return f"multistep (official): {lr}, no decay within {epochs} epoch(s) (first after epoch {config.lr_decay_start_epoch})"
        shown = ", ".join(str(m) for m in milestones)
        return f"multistep (official): {lr}, x{config.lr_decay_gamma:g} after epoch(s) {shown}; no warmup"
    warmup = f"{config.warmup_steps} warmup step(s)"
    if config.lr_scheduler == "constant":
        return f"constant: {lr} after {warmup}"
    return f"{config.lr_scheduler}: {lr}, {warmup}, then decay over the {total_steps} optimizer steps"


def steps_per_epoch_scheduler(name: SchedulerName) -> bool:
    """Whether the scheduler steps at epoch ends (True) or after every optimizer step (False)."""
    return name == "multistep"
