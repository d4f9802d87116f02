"""``avt pretrain-slava --dry-run``: the run's figures from its own checks, with no tower loaded and nothing written.

The same steps as :func:`avt_training.slava.train.pretrain_slava` before its towers load: the folder rule and a
checkpoint's ``model_type`` (``preflight``), the datasets opened and checked for captions (``open_datasets``), the
global batches per epoch (``steps_per_epoch``) and the steps of each stage (``stage_steps``). The clips a run trains
on can be fewer: a clip whose media fail to decode while its features are extracted is left out then. The towers are
named as ``avt generate --dry-run`` names models (Hub commit or local content digest). The cost model has no figure
for SLAVA (tower features once per clip, then seconds per epoch), so no GPU-hours are given.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from avt_training import output_dir as output_rules
from avt_training.run_plan import TrainingPlan, dataset_rows
from avt_training.slava.config import FEATURE_CACHE_DIR, SlavaPretrainConfig


def towers(config: SlavaPretrainConfig) -> str:
    """The model a run would build, its towers named by Hub commit or local content digest."""
    from avt_triplets.revisions import model_source

    if config.model_name_or_path:
        return f"SLAVA from {config.model_name_or_path} (its towers and projections, not loaded now)"
    named = [
        ("vision", config.vision_model),
        ("text", config.text_model or config.vision_model),
        ("audio", config.audio_model),
    ]
    shown = "; ".join(model_source(role, name).describe() for role, name in named if name)
    return f"a new SLAVA ({config.variant}) on the towers: {shown}"


def plan(config: SlavaPretrainConfig | argparse.Namespace | dict[str, Any]) -> TrainingPlan:
    """The plan of ``avt pretrain-slava``; raises the :class:`~avt_core.errors.UsageError` the run would raise before
    its towers load."""
    from avt_core.launch import launched_process
    from avt_training.optim import describe_schedule
    from avt_training.slava.parts import open_datasets, stage_steps, steps_per_epoch
    from avt_training.slava.train import preflight

    config = SlavaPretrainConfig.from_any(config)
    output_dir = preflight(config, dry_run=True)
    state = output_rules.output_state(output_dir, "pretrain-slava", False, config.overwrite, None)
    processes = launched_process().world_size
    train = open_datasets(config.datasets, config.train_split, None)
    held_out = open_datasets(config.eval_datasets, config.eval_split, None)
    clips = sum(len(data) for _, data in train)
    per_epoch = steps_per_epoch(clips, config.per_device_batch_size, processes)
    stages = stage_steps(config, per_epoch)
    total = sum(stages)
    cache = Path(config.feature_cache_dir or output_dir / FEATURE_CACHE_DIR)
    return TrainingPlan(
        command="pretrain-slava",
        output_dir=str(output_dir),
        output_state=state,
        datasets=[row for _, data in train for row in dataset_rows(data)],
        train_clips=clips,
        eval_clips=sum(len(data) for _, data in held_out) if held_out else None,
        num_processes=processes,
        per_device_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=1,
        steps_per_epoch=per_epoch,
        num_epochs=-(-total // per_epoch),
        total_steps=total,
        schedule=describe_schedule(config, -(-total // per_epoch), total)
        + (f"; stages of {' + '.join(map(str, stages))} steps" if len(stages) > 1 else ""),
        model=towers(config),
        cost_kind=None,
        notes=[
            f"feature cache {cache}: "
            + (
                "features of these towers found there are reused"
                if cache.is_dir()
                else "new, filled once per clip"
            ),
            "clips whose media fail to decode during feature extraction are left out by the run",
        ],
    )


__all__ = ["plan", "towers"]
