"""LG-CAV-MAE pretraining with accelerate: ``L = L_rec + λ1 L_c + λ2 (L_a2t + L_v2t)``.

One loop for one CPU, one GPU, or many GPUs and nodes under ``accelerate launch``. Defaults follow the official
CAV-MAE recipe (Adam 0.95/0.999, weight decay 5e-7, lr halved every 5 epochs after epoch 10, random frame per clip,
fbank noise + shift, 75% masking) with the LG-CAV-MAE weights (λ1 = λ2 = 0.01); ``PretrainConfig`` lists every
option.

``pretrain`` reads as open_clip's main: ``setup`` builds a ``PretrainRun`` (accelerator, data, model, optimizer,
schedule, loss, resumed state), then ``train_one_epoch`` / ``evaluate`` / ``save`` from ``avt_training.pretrain_loop``
move it to the end. Validation (``--eval-dataset``) follows the official loop (middle frame, no noise, still 75%
masking, see ``avt_training/pretrain_eval.py``); the lowest eval total loss model is kept in ``best/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from avt_core.errors import UsageError
from avt_core.interrupts import signal_name
from avt_training import checkpoints
from avt_training import output_dir as output_rules
from avt_training.data import check_one_global_batch
from avt_training.hub import HubPusher
from avt_training.interrupts import stop_after_step
from avt_training.loss_options import apply_loss_options, loss_settings_of, saved_loss_settings
from avt_training.losses import PretrainingLoss
from avt_training.pretrain_config import PretrainConfig
from avt_training.pretrain_loop import (
    PretrainRun,
    RunLog,
    Schedule,
    evaluate,
    finish,
    interrupted,
    save,
    train_one_epoch,
)

logger = logging.getLogger(__name__)
MEDIA_COLUMNS = ("audio", "frames")

__all__ = ["PretrainConfig", "plan", "pretrain", "setup"]


def pretrain(config: PretrainConfig | argparse.Namespace | dict[str, Any]) -> Path:
    """Run pretraining; returns the output folder, which holds the final model (``save_pretrained``) and
    processor, the model card ``README.md``, ``train_summary.json``, ``metrics.jsonl`` and its ``loss_curve.png``,
    TensorBoard ``runs/`` (with ``--report-to tensorboard``) and ``checkpoints/``."""
    config = PretrainConfig.from_any(config)
    try:
        run = setup(config)
    except KeyboardInterrupt as stop:
        raise interrupted(signal_name(stop), Path(config.output_dir), "before training started") from None
    with stop_after_step(enabled=run.accelerator.num_processes == 1) as run.stop:
        run.model.train()
        try:
            while not run.finished():
                train_one_epoch(run)
        except KeyboardInterrupt as stop:
            run.log.bar.close()  # the bar's line ends before the message
            where = f"during step {run.state.global_step + 1} of {run.schedule.total_steps}"
            raise interrupted(signal_name(stop), run.output_dir, where) from None
    if run.eval_loader is not None and run.state.last_eval_step != run.state.global_step:
        evaluate(run)  # stopped mid-epoch (--max-steps)
    save_steps = run.config.save_steps
    if not (save_steps and run.state.global_step % save_steps == 0):
        save(run)
    return finish(run)


# --------------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------------


def setup(config: PretrainConfig) -> PretrainRun:
    """Everything the loop needs, in an order that keeps the random streams of a run reproducible; resumed from a
    checkpoint with ``--resume``. User mistakes stop here, before the model loads where they can."""
    from avt_training.optim import build_adam, build_scheduler, trainable_parameters

    output_dir, resume_from = preflight(config)
    accelerator = make_accelerator(config)
    hub = HubPusher.from_options(config, accelerator.is_main_process)
    train_data, eval_data = checked_data(config, accelerator, accelerator.num_processes)
    model, processor = build_model_and_processor(
        config, text_embedding_dim(train_data, config.text_source), resume_from
    )
    loader, sampler = build_train_loader(
        config, train_data, model.config, processor, accelerator.num_processes
    )
    optimizer = build_adam(
        trainable_parameters(model),
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        weight_decay=config.weight_decay,
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    # prepared after the training loader, which stays dataloader 0 in checkpoints
    eval_loader = prepare_eval_loader(config, accelerator, eval_data, model, processor)
    schedule = Schedule.plan(len(loader), config)
    scheduler = build_scheduler(
        optimizer,
        config.lr_scheduler,
        num_epochs=schedule.num_epochs,
        total_steps=schedule.total_steps,
        warmup_steps=config.warmup_steps,
        decay_start_epoch=config.lr_decay_start_epoch,
        decay_step_epochs=config.lr_decay_step_epochs,
        decay_gamma=config.lr_decay_gamma,
    )
    state = checkpoints.TrainState(
        per_device_batch_size=config.per_device_batch_size,
        num_processes=accelerator.num_processes,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
    )
    loop_state = {"train_state": state, "scheduler": scheduler, "sampler": sampler}
    checkpoints.track_loop_state(accelerator, **loop_state)
    checkpoints.track_model_config(accelerator, accelerator.unwrap_model(model))
    if resume_from is not None:
        resume(accelerator, resume_from, model=accelerator.unwrap_model(model), **loop_state)
    run = PretrainRun(
        config=config,
        accelerator=accelerator,
        model=model,
        processor=processor,
        optimizer=optimizer,
        scheduler=scheduler,
        loader=loader,
        sampler=sampler,
        loss=PretrainingLoss(accelerator.unwrap_model(model).config, config.contrastive_scope),
        state=state,
        schedule=schedule,
        log=start_log(config, accelerator, state, schedule, resumed=resume_from is not None),
        num_clips=len(train_data),
        eval_loader=eval_loader,
        hub=hub,
        resumed_from=resume_from,
        start_step=state.global_step,
    )
    describe(run)
    return run


def preflight(config: PretrainConfig, dry_run: bool = False) -> tuple[Path, Path | None]:
    """The output folder (its rule: ``avt_training/output_dir.py``), the checkpoint ``--resume`` picks and the model's
    sources (config.json alone): what stops a run before anything is written; ``dry_run`` writes no probe file."""
    output_dir = output_rules.check(
        config.output_dir,
        "pretrain",
        bool(config.resume),
        config.overwrite,
        "--resume latest",
        dry_run=dry_run,
    )
    resume_from = checkpoints.resolve_resume(config.resume, output_dir)
    check_model_sources(config)
    return output_dir, resume_from


def checked_data(config: PretrainConfig, accelerator, num_processes: int):
    """Training and eval triplets (:func:`load_data`), refused when they do not fill one global batch."""
    train_data, eval_data = load_data(config, accelerator)
    check_one_global_batch(len(train_data), config.per_device_batch_size, num_processes)
    return train_data, eval_data


def plan(config: PretrainConfig | argparse.Namespace | dict[str, Any]):
    """``avt pretrain --dry-run``: the run's figures from its own checks (folder, resume, model config, data, one
    global batch) and its schedule arithmetic, with nothing written and no weights loaded."""
    from avt_core.launch import launched_process
    from avt_training.optim import describe_schedule
    from avt_training.run_plan import TrainingPlan, batches_per_epoch, checkpoint_step, dataset_rows

    config = PretrainConfig.from_any(config)
    output_dir, resume_from = preflight(config, dry_run=True)
    state = output_rules.output_state(
        output_dir, "pretrain", bool(config.resume), config.overwrite, "--resume latest"
    )
    processes = launched_process().world_size
    train_data, eval_data = checked_data(config, None, processes)
    model = planned_model(config, text_embedding_dim(train_data, config.text_source))
    schedule = Schedule.plan(
        batches_per_epoch(len(train_data), config.per_device_batch_size, processes), config
    )
    return TrainingPlan(
        command="pretrain",
        output_dir=str(output_dir),
        output_state=state,
        datasets=dataset_rows(train_data),
        train_clips=len(train_data),
        eval_clips=len(eval_data) if eval_data is not None else None,
        num_processes=processes,
        per_device_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        steps_per_epoch=schedule.steps_per_epoch,
        num_epochs=schedule.num_epochs,
        total_steps=schedule.total_steps,
        schedule=describe_schedule(config, schedule.num_epochs, schedule.total_steps),
        model=model,
        resume_from=str(resume_from) if resume_from is not None else None,
        resume_step=checkpoint_step(resume_from),
        resume_fresh=bool(config.resume) and resume_from is None,
        cost_kind="pretrain",
    )


def planned_model(config: PretrainConfig, text_embed_dim: int | None) -> str:
    """What the model starts from, in words, checked against the data as a run checks it, from configs alone."""
    from avt_triplets.model_sources import loading_errors
    from modeling_lgcavmae import LGCavMaeConfig

    if config.model_name_or_path:
        with loading_errors("--model-name-or-path", config.model_name_or_path):
            model_config = LGCavMaeConfig.from_pretrained(config.model_name_or_path)
        require_text_embed_dim(model_config, text_embed_dim)
        return f"LG-CAV-MAE from {config.model_name_or_path} (its weights, not loaded now)"
    start = f"a new LG-CAV-MAE from {config.config_name_or_path or 'the paper configuration'}"
    if text_embed_dim:
        start += f" (text_embed_dim {text_embed_dim}, from the data)"
    if config.init_from_vitmae:
        start += f", encoders initialised from {config.init_from_vitmae}"
    return start


def require_text_embed_dim(model_config, text_embed_dim: int | None) -> None:
    """A pretrained model's text projections take the data's text embeddings (their size)."""
    if text_embed_dim and model_config.text_embed_dim != text_embed_dim:
        raise UsageError(
            f"the model's text_embed_dim is {model_config.text_embed_dim} but the dataset's text embeddings "
            f"have {text_embed_dim} values: use triplets scored with the text tower the model was trained with"
        )


def check_model_sources(config: PretrainConfig) -> None:
    """The checkpoint or config the model starts from is an LG-CAV-MAE one (read from its config.json alone)."""
    from avt_training.model_checks import require_model_type
    from modeling_lgcavmae import LGCavMaeConfig

    for option, source in (
        ("--model-name-or-path", config.model_name_or_path),
        ("--config-name-or-path", config.config_name_or_path),
    ):
        if source:
            require_model_type(source, LGCavMaeConfig.model_type, option)


def make_accelerator(config: PretrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    from avt_core.run_config import write_run_config
    from avt_training.accelerate_settings import effective_settings, log_effective
    from avt_training.tracking import tracker_names

    output_dir = Path(config.output_dir)
    settings = effective_settings(config.mixed_precision)  # a plain run honours `accelerate config` too
    accelerator = Accelerator(
        # Several processes but no CUDA (e.g. `accelerate launch --multi_gpu` on a CPU box, as the tests do):
        # accelerate only forms a gloo process group when told to run on CPU.
        cpu=settings.cpu or (not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1),
        mixed_precision=settings.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=tracker_names(config.report_to) or None,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / "runs")
        ),
    )
    if accelerator.is_main_process:  # every process has checked the folder: the process group has formed
        output_rules.claim(output_dir, "pretrain", config.overwrite)
        write_run_config(output_dir, "pretrain", config)
    else:
        logging.getLogger("avt_training").setLevel(logging.WARNING)
    log_effective(accelerator, settings)
    set_seed(config.seed)
    return accelerator


def load_data(config: PretrainConfig, accelerator):
    """Training and (optional) eval triplets, read in place (a dataset not in Parquet is copied into the datasets
    cache by one process, the others reuse the copy; ``accelerator`` None: this process alone, a dry run)."""
    import contextlib

    from avt_training.data import load_triplet_datasets, text_columns

    # a missing column is one line, before the model loads
    columns = (*MEDIA_COLUMNS, *text_columns(config.text_source))
    with accelerator.main_process_first() if accelerator is not None else contextlib.nullcontext():
        train = load_triplet_datasets(config.datasets, columns=columns, split=config.train_split)
        held_out = None
        if config.eval_datasets:
            held_out = load_triplet_datasets(config.eval_datasets, columns=columns, split=config.eval_split)
    return train, held_out


def text_embedding_dim(dataset, text_source: str = "caption") -> int | None:
    """The CLAP text embedding size of the data (every text column of a source comes from one text tower)."""
    from avt_training.data import text_columns

    sizes = {len(dataset[0][column]) for column in text_columns(text_source)} if len(dataset) else set()
    if len(sizes) > 1:
        raise UsageError(
            f"the text embeddings --text-source {text_source} reads have different sizes {sorted(sizes)}: "
            "they must come from one CLAP text tower"
        )
    return sizes.pop() if sizes else None


def build_model_and_processor(
    config: PretrainConfig, text_embed_dim: int | None, resume_from: Path | None = None
):
    """Initialise from a pretrained LG-CAV-MAE (or converted official CAV-MAE) folder / Hub id, from ImageNet
    MAE weights, or randomly from a config (default: the paper's architecture). The loss settings saved in the
    checkpoint the run starts from (``resume_from``'s, else the pretrained model's) win over option defaults."""
    import modeling_lgcavmae  # noqa: F401 - registers the Auto classes
    from avt_triplets.model_sources import loading_errors
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining, LGCavMaeProcessor

    if config.model_name_or_path:
        with loading_errors("--model-name-or-path", config.model_name_or_path):
            model = LGCavMaeForPreTraining.from_pretrained(config.model_name_or_path)
        require_text_embed_dim(model.config, text_embed_dim)
        saved = saved_loss_settings(resume_from) or loss_settings_of(model.config)
        apply_loss_options(model.config, config, saved)
    else:
        with loading_errors("--config-name-or-path", config.config_name_or_path or "LGCavMaeConfig()"):
            model_config = (
                LGCavMaeConfig.from_pretrained(config.config_name_or_path)
                if config.config_name_or_path
                else LGCavMaeConfig()
            )
        if text_embed_dim and model_config.text_embed_dim != text_embed_dim:
            logger.info(
                "text_embed_dim %d -> %d (from the dataset)", model_config.text_embed_dim, text_embed_dim
            )
            model_config.text_embed_dim = text_embed_dim
        # Before the model is built: a learnt text temperature starts from the option.
        apply_loss_options(model_config, config, saved_loss_settings(resume_from))
        model = LGCavMaeForPreTraining(model_config)
        if config.init_from_vitmae:
            from modeling_lgcavmae.init_from_vitmae import init_from_vitmae

            left = init_from_vitmae(model, config.init_from_vitmae)
            logger.info("IN-initial from %s; left as initialised: %s", config.init_from_vitmae, left)
    processor = None
    if config.model_name_or_path:
        try:
            processor = LGCavMaeProcessor.from_pretrained(config.model_name_or_path)
        except (OSError, ValueError, TypeError):
            processor = None
    if processor is None:
        processor = LGCavMaeProcessor.from_config(model.config)
    return model, processor


def build_train_loader(config: PretrainConfig, hf_dataset, model_config, processor, num_processes: int = 1):
    """Seeded loader over the concatenated datasets; returns (loader, sampler).

    Triplets read in place get the block-shuffled order, one reader lane per process x DataLoader worker
    (``avt_data/block_sampler.py``); a dataset in the ``datasets`` cache a full permutation per epoch.
    """
    from torch.utils.data import DataLoader

    from avt_data.block_sampler import sampler_for_rows
    from avt_data.parquet_rows import ParquetTriplets
    from avt_training.collators import PretrainingCollator
    from avt_training.data import ClipDataset, EpochShuffleSampler

    dataset = ClipDataset(
        hf_dataset, frame_selection="random", seed=config.seed, with_text=True, text_source=config.text_source
    )
    if isinstance(dataset.data, ParquetTriplets):
        sampler = sampler_for_rows(
            dataset.data,
            config.per_device_batch_size,
            seed=config.seed,
            lanes=num_processes * max(config.num_workers, 1),
            window=config.shuffle_window,
        )
    else:
        sampler = EpochShuffleSampler(len(dataset), seed=config.seed)
    collator = PretrainingCollator(
        processor,
        audio_noise_augment=config.audio_noise,
        num_audio_patches=model_config.num_audio_patches,
        num_visual_patches=model_config.num_visual_patches,
    )
    loader = DataLoader(
        dataset,
        batch_size=config.per_device_batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=config.num_workers,
        drop_last=True,  # every process needs equal batches for the all-gather; official loaders drop too
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
        prefetch_factor=4 if config.num_workers else None,
    )
    return loader, sampler


def prepare_eval_loader(config: PretrainConfig, accelerator, held_out, model, processor):
    if held_out is None:
        return None
    from avt_training.pretrain_eval import build_eval_loader

    loader = build_eval_loader(
        held_out,
        accelerator.unwrap_model(model).config,
        processor,
        batch_size=config.per_device_eval_batch_size or config.per_device_batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
        text_source=config.text_source,
    )
    return accelerator.prepare(loader)


def resume(accelerator, folder: Path, model, train_state: checkpoints.TrainState, **loop_state) -> None:
    """Restore a checkpoint; another data layout continues the run, but cannot replay its batches (said)."""
    layout = train_state.layout()
    checkpoints.load_checkpoint(accelerator, folder, model=model, train_state=train_state, **loop_state)
    logger.info("resumed from %s at step %d (epoch %d)", folder, train_state.global_step, train_state.epoch)
    if train_state.layout() != layout:
        logger.warning(
            "resuming with (per-device batch, processes, accumulation) %s instead of %s: the run continues "
            "from the checkpoint, but not with the batches an uninterrupted run would have seen",
            layout,
            train_state.layout(),
        )
        # the epoch's position in clips, counted in this layout's steps
        saved_batch, batch = math.prod(train_state.layout()), math.prod(layout)
        train_state.step_in_epoch = train_state.step_in_epoch * saved_batch // batch
        (
            train_state.per_device_batch_size,
            train_state.num_processes,
            train_state.gradient_accumulation_steps,
        ) = layout


def start_log(config: PretrainConfig, accelerator, state, schedule: Schedule, resumed: bool) -> RunLog:
    """``metrics.jsonl`` (a resumed run drops the lines a killed run wrote after its checkpoint), the trackers with
    the hyper-parameters (never the Hub token) and the progress bar."""
    from tqdm.auto import tqdm

    from avt_training.tracking import JsonlLog, MetricWindow, loggable_config

    metrics = JsonlLog(Path(config.output_dir), enabled=accelerator.is_main_process)
    if accelerator.is_main_process and resumed:
        kept = [r for r in metrics.read() if r.get("step", 0) <= state.global_step]
        metrics.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    elif accelerator.is_main_process:
        metrics.path.unlink(missing_ok=True)
    if accelerator.log_with:
        accelerator.init_trackers(config.run_name, config=loggable_config(dataclasses.asdict(config)))
    bar = tqdm(
        total=schedule.total_steps,
        initial=state.global_step,
        disable=not accelerator.is_local_main_process,
        desc="pretrain",
    )
    return RunLog(metrics=metrics, window=MetricWindow(), bar=bar)


def describe(run: PretrainRun) -> None:
    config, world = run.config, run.accelerator.num_processes
    negatives = config.per_device_batch_size * (world if run.loss.gathers else 1)
    logger.info(
        "%d clips, %d optimizer steps per epoch, %d steps, global batch %d (%d negatives per contrastive term)",
        run.num_clips,
        run.schedule.steps_per_epoch,
        run.schedule.total_steps,
        run.global_batch,
        negatives,
    )
