"""LG-CAV-MAE pretraining with accelerate: ``L = L_rec + lambda1 * L_c + lambda2 * (L_a2t + L_v2t)``.

One loop for one CPU, one GPU, or many GPUs and nodes under ``accelerate launch``. Defaults follow the
official CAV-MAE recipe (Adam 0.95/0.999, weight decay 5e-7, lr halved every 5 epochs after epoch 10,
random frame per clip, fbank noise + shift, 75% masking) with the LG-CAV-MAE weights (lambda1 = lambda2 = 0.01).

Exact resume: the data order is a seeded permutation per epoch, every random draw of a sample (frame,
fbank noise and shift, MAE masks) is seeded by (seed, epoch, index), and ``accelerator.save_state`` keeps
the model, optimizer, scheduler, progress counters and RNG states, so a run killed and resumed from a
checkpoint reaches the same weights as an uninterrupted one.

Validation (``--eval-dataset``): after every epoch (and every ``--eval-steps``) the model is evaluated as the
official loop does (middle frame, no noise, still 75% masking, see ``training/pretrain_eval.py``); the lowest
eval total loss model is kept in ``best/``. Evaluation restores the RNG states it touches, so a run with
evaluation trains the same weights as one without.

Contrastive negatives come from the global batch of one forward pass (``--contrastive-scope global``) or the
local one (``per-process``, official); gradient accumulation does not add negatives.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avt_triplets.errors import UsageError
from training import checkpoints
from training.losses import ContrastiveScope, contrastive_terms
from training.optim import SchedulerName
from training.options import options_from_any, require_non_negative, require_positive

logger = logging.getLogger(__name__)
BEST_DIR = "best"  # save_pretrained of the lowest eval total loss model (official best_audio_model.pth)


@dataclass
class PretrainConfig:
    """Every option of ``avt pretrain``; the command line is generated from the same names."""

    datasets: list[str]
    output_dir: str
    dataset_split: str = "train"
    # validation (official: every epoch, middle frame, no noise, still masked; best/ by lowest eval loss)
    eval_datasets: list[str] = field(default_factory=list)
    eval_dataset_split: str = "train"
    eval_steps: int | None = None
    eval_batch_size: int | None = None
    # model initialisation (at most one of the three; none = random init of `config_name_or_path` / defaults)
    model_name_or_path: str | None = None
    config_name_or_path: str | None = None
    init_from_vitmae: str | None = None
    # loss
    lambda1: float = 0.01
    lambda2: float = 0.01
    contrastive_scope: ContrastiveScope = "global"
    audio_noise: bool = True
    # optimisation
    per_device_batch_size: int = 30
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-4
    adam_beta1: float = 0.95
    adam_beta2: float = 0.999
    weight_decay: float = 5e-7
    num_epochs: int = 25
    max_steps: int | None = None
    lr_scheduler: SchedulerName = "multistep"
    lr_decay_start_epoch: int = 10
    lr_decay_step_epochs: int = 5
    lr_decay_gamma: float = 0.5
    warmup_steps: int = 0
    max_grad_norm: float | None = None
    mixed_precision: str | None = None
    seed: int = 0
    # data loading
    num_workers: int = 4
    # checkpoints, logging, hub
    checkpoint_steps: int | None = 1000
    checkpoints_total_limit: int | None = None
    resume: str | None = None
    logging_steps: int = 10
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    run_name: str = "lgcavmae-pretrain"
    push_to_hub: str | None = None
    hub_strategy: str = "end"
    hub_private: bool = False
    hub_token: str | None = None

    def __post_init__(self) -> None:
        require_positive(
            self,
            "per_device_batch_size",
            "gradient_accumulation_steps",
            "num_epochs",
            "max_steps",
            "eval_steps",
            "eval_batch_size",
            "checkpoint_steps",
            "checkpoints_total_limit",
            "logging_steps",
        )
        require_non_negative(self, "num_workers", "warmup_steps")
        if self.model_name_or_path and self.init_from_vitmae:
            raise UsageError("pass only one of --model-name-or-path and --init-from-vitmae")
        if self.eval_steps and not self.eval_datasets:
            raise UsageError("--eval-steps needs --eval-dataset")
        if self.lr_scheduler == "multistep" and self.warmup_steps:
            raise UsageError(
                "the official multistep schedule has no warmup; use --lr-scheduler cosine|constant"
            )

    @classmethod
    def from_any(cls, value: PretrainConfig | argparse.Namespace | dict[str, Any]) -> PretrainConfig:
        return options_from_any(cls, value)


# --------------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------------


def _text_embedding_dim(dataset) -> int | None:
    return len(dataset[0]["text_embedding"]) if len(dataset) else None


def check_one_global_batch(num_clips: int, per_device_batch_size: int, num_processes: int) -> None:
    """The loader drops incomplete batches (every process needs equal ones for the all-gather; the official
    loader drops them too), so fewer clips than one global batch would train nothing."""
    global_batch = per_device_batch_size * num_processes
    if num_clips < global_batch:
        raise UsageError(
            f"the training data has {num_clips} clips, fewer than one batch of {global_batch} "
            f"(--per-device-batch-size {per_device_batch_size} x {num_processes} process(es)): lower "
            "--per-device-batch-size or add clips"
        )


def build_model_and_processor(config: PretrainConfig, text_embed_dim: int | None):
    """Initialise from a pretrained LG-CAV-MAE (or converted official CAV-MAE) folder / Hub id, from ImageNet
    MAE weights, or randomly from a config (default: the paper's architecture)."""
    import modeling_lgcavmae  # noqa: F401 - registers the Auto classes
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining, LGCavMaeProcessor

    if config.model_name_or_path:
        model = LGCavMaeForPreTraining.from_pretrained(config.model_name_or_path)
        if text_embed_dim and model.config.text_embed_dim != text_embed_dim:
            raise UsageError(
                f"the model's text_embed_dim is {model.config.text_embed_dim} but the dataset's text embeddings "
                f"have {text_embed_dim} values: use triplets scored with the text tower the model was trained with"
            )
    else:
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
        model = LGCavMaeForPreTraining(model_config)
        if config.init_from_vitmae:
            from modeling_lgcavmae.init_from_vitmae import init_from_vitmae

            left = init_from_vitmae(model, config.init_from_vitmae)
            logger.info("IN-initial from %s; left as initialised: %s", config.init_from_vitmae, left)
    model.config.contrastive_weight = config.lambda1
    model.config.text_contrastive_weight = config.lambda2
    processor = None
    if config.model_name_or_path:
        try:
            processor = LGCavMaeProcessor.from_pretrained(config.model_name_or_path)
        except (OSError, ValueError, TypeError):
            processor = None
    if processor is None:
        processor = LGCavMaeProcessor.from_config(model.config)
    return model, processor


def build_train_loader(config: PretrainConfig, hf_dataset, model_config, processor):
    """Seeded loader over the concatenated datasets; returns (loader, sampler, dataset)."""
    from torch.utils.data import DataLoader

    from training.collators import PretrainingCollator
    from training.data import ClipDataset, EpochShuffleSampler

    dataset = ClipDataset(hf_dataset, frame_selection="random", seed=config.seed, with_text=True)
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
    return loader, sampler, dataset


# --------------------------------------------------------------------------------------------------
# One step's loss
# --------------------------------------------------------------------------------------------------


def pretraining_loss(output, text_embeds, model_config, scope: ContrastiveScope, text_temperature=None):
    """Total loss ``w_rec (L_rec_a + L_rec_v) + lambda1 L_c + lambda2 (L_a2t + L_v2t)`` and the scalars to log.

    The contrastive terms are recomputed here from the model's pooled and projected embeddings, outside the
    model's autocast region (so bf16 never rounds the logits), with the model package's loss functions on the
    local batch (``per-process`` scope, or one process) or over the all-gathered global batch (``global``).
    """
    terms = contrastive_terms(
        output.audio_embeds,
        output.visual_embeds,
        output.audio_text_embeds,
        output.visual_text_embeds,
        text_embeds,
        model_config,
        scope=scope,
        text_temperature=text_temperature,
    )
    logs: dict[str, torch.Tensor] = {}
    loss = torch.zeros((), device=output.audio_embeds.device)
    if output.loss_reconstruction_audio is not None:
        logs["loss_reconstruction_audio"] = output.loss_reconstruction_audio.detach()
        logs["loss_reconstruction_visual"] = output.loss_reconstruction_visual.detach()
        loss = loss + model_config.reconstruction_weight * (
            output.loss_reconstruction_audio + output.loss_reconstruction_visual
        )
    if model_config.contrastive_weight:
        loss = loss + model_config.contrastive_weight * terms.audio_visual
    if terms.audio_text is not None and model_config.text_contrastive_weight:
        loss = loss + model_config.text_contrastive_weight * (terms.audio_text + terms.visual_text)
    named = {
        "loss_contrastive": terms.audio_visual,
        "contrastive_accuracy": terms.audio_visual_accuracy,
        "loss_audio_text": terms.audio_text,
        "loss_visual_text": terms.visual_text,
        "audio_text_accuracy": terms.audio_text_accuracy,
        "visual_text_accuracy": terms.visual_text_accuracy,
    }
    logs.update({k: v.detach() for k, v in named.items() if v is not None})
    logs["loss"] = loss.detach()
    return loss, logs


# --------------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------------


def pretrain(config: PretrainConfig | argparse.Namespace | dict[str, Any]) -> Path:
    """Run pretraining; returns the output folder, which holds the final model (``save_pretrained``) and
    processor, ``train_summary.json``, ``metrics.jsonl``, TensorBoard ``runs/`` and ``checkpoints/``."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm

    from training.data import load_triplet_datasets
    from training.optim import build_adam, build_scheduler, steps_per_epoch_scheduler, trainable_parameters
    from training.pretrain_eval import best_eval_loss, build_eval_loader, evaluate_pretraining
    from training.tracking import SUMMARY_FILE, JsonlLog, MetricWindow, loggable_config, tracker_names

    config = PretrainConfig.from_any(config)
    output_dir = Path(config.output_dir)
    resume_from = checkpoints.resolve_resume(config.resume, output_dir)
    trackers = tracker_names(config.report_to)
    accelerator = Accelerator(
        # Several processes but no CUDA (e.g. `accelerate launch --multi_gpu` on a CPU box, as the tests do):
        # accelerate only forms a gloo process group when told to run on CPU.
        cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1,
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        log_with=trackers or None,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / "runs")
        ),
    )
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    else:
        logging.getLogger("training").setLevel(logging.WARNING)
    set_seed(config.seed)

    with accelerator.main_process_first():  # one process prepares the datasets cache, the others reuse it
        hf_dataset = load_triplet_datasets(
            config.datasets, columns=("audio", "frames", "text_embedding"), split=config.dataset_split
        )
        eval_hf_dataset = (
            load_triplet_datasets(
                config.eval_datasets,
                columns=("audio", "frames", "text_embedding"),
                split=config.eval_dataset_split,
            )
            if config.eval_datasets
            else None
        )
    check_one_global_batch(len(hf_dataset), config.per_device_batch_size, accelerator.num_processes)
    model, processor = build_model_and_processor(config, _text_embedding_dim(hf_dataset))
    loader, sampler, dataset = build_train_loader(config, hf_dataset, model.config, processor)

    optimizer = build_adam(
        trainable_parameters(model),
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        weight_decay=config.weight_decay,
    )
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    unwrapped = accelerator.unwrap_model(model)
    eval_loader = None
    if (
        eval_hf_dataset is not None
    ):  # prepared after the training loader, which stays dataloader 0 in checkpoints
        eval_loader = accelerator.prepare(
            build_eval_loader(
                eval_hf_dataset,
                unwrapped.config,
                processor,
                batch_size=config.eval_batch_size or config.per_device_batch_size,
                seed=config.seed,
                num_workers=config.num_workers,
            )
        )
    batches_per_epoch = len(loader)
    steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
    total_steps = config.max_steps or config.num_epochs * steps_per_epoch
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    # Not passed to accelerator.prepare: its wrapper would step the schedule once per process.
    scheduler = build_scheduler(
        optimizer,
        config.lr_scheduler,
        num_epochs=num_epochs,
        total_steps=total_steps,
        warmup_steps=config.warmup_steps,
        decay_start_epoch=config.lr_decay_start_epoch,
        decay_step_epochs=config.lr_decay_step_epochs,
        decay_gamma=config.lr_decay_gamma,
    )
    per_epoch_schedule = steps_per_epoch_scheduler(config.lr_scheduler)
    layout = (config.per_device_batch_size, accelerator.num_processes, config.gradient_accumulation_steps)
    progress = checkpoints.TrainingProgress(*(0,) * 5, *layout)
    loop_state = {"progress": progress, "scheduler": scheduler, "sampler": sampler}
    checkpoints.track_loop_state(accelerator, **loop_state)

    metrics_log = JsonlLog(output_dir, enabled=accelerator.is_main_process)
    best_loss = float("inf")
    if resume_from is not None:
        checkpoints.load_checkpoint(accelerator, resume_from, **loop_state)
        logger.info(
            "resumed from %s at step %d (epoch %d)", resume_from, progress.global_step, progress.epoch
        )
        if progress.layout() != layout:
            logger.warning(
                "resuming with (per-device batch, processes, accumulation) %s instead of %s: the run continues "
                "from the checkpoint, but not with the batches an uninterrupted run would have seen",
                layout,
                progress.layout(),
            )
            progress.per_device_batch_size, progress.num_processes, progress.gradient_accumulation_steps = (
                layout
            )
        if accelerator.is_main_process:  # drop log lines a killed run wrote after this checkpoint
            kept = [r for r in metrics_log.read() if r.get("step", 0) <= progress.global_step]
            metrics_log.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            best_loss = best_eval_loss(kept)
    elif accelerator.is_main_process:
        metrics_log.path.unlink(missing_ok=True)

    hub = None
    if config.push_to_hub and accelerator.is_main_process:
        from training.hub import HubPusher

        hub = HubPusher(config.push_to_hub, token=config.hub_token, private=config.hub_private or None)
    if trackers:
        hparams = {k: v for k, v in dataclasses.asdict(config).items() if k != "hub_token"}
        accelerator.init_trackers(config.run_name, config=loggable_config(hparams))

    world = accelerator.num_processes
    global_batch = config.per_device_batch_size * world * config.gradient_accumulation_steps
    logger.info(
        "%d clips, %d optimizer steps per epoch, %d steps, global batch %d (%d negatives per contrastive term)",
        len(dataset),
        steps_per_epoch,
        total_steps,
        global_batch,
        config.per_device_batch_size * (world if config.contrastive_scope == "global" else 1),
    )
    bar = tqdm(
        total=total_steps,
        initial=progress.global_step,
        disable=not accelerator.is_local_main_process,
        desc="pretrain",
    )
    window = MetricWindow()
    best_dir = output_dir / BEST_DIR
    last_eval: dict[str, float] = {}
    last_eval_step = -1
    first_window: dict[str, float] | None = None
    last_window: dict[str, float] = {}
    started = time.perf_counter()
    start_step = progress.global_step

    def save(step: int) -> None:
        path = checkpoints.save_checkpoint(accelerator, output_dir, step, config.checkpoints_total_limit)
        if hub is not None and config.hub_strategy == "every_save":
            hub.push_checkpoint(path)

    def evaluate(step: int, epoch: float) -> None:
        """Eval losses logged with an ``eval_`` prefix; best/ gets the model when the total loss is lowest."""
        nonlocal best_loss, last_eval, last_eval_step
        last_eval = evaluate_pretraining(model, eval_loader, accelerator)
        last_eval_step = step
        last_eval["epoch"] = epoch
        accelerator.log(last_eval, step=step)
        metrics_log.write({"step": step, **last_eval})
        logger.info("step %d eval: %s", step, ", ".join(f"{k} {v:.4f}" for k, v in last_eval.items()))
        if last_eval["eval_loss"] < best_loss:
            best_loss = last_eval["eval_loss"]
            if accelerator.is_main_process:
                unwrapped.save_pretrained(best_dir)
                processor.save_pretrained(best_dir)
                (best_dir / "eval_results.json").write_text(json.dumps({"step": step, **last_eval}, indent=2))
        accelerator.wait_for_everyone()

    model.train()
    while progress.global_step < total_steps and progress.epoch < num_epochs:
        epoch = progress.epoch
        sampler.set_epoch(epoch)
        loader.set_epoch(epoch)
        epoch_loader = loader
        if progress.step_in_epoch:
            epoch_loader = accelerator.skip_first_batches(
                loader, progress.step_in_epoch * config.gradient_accumulation_steps
            )
        for batch in epoch_loader:
            failed = batch.pop("decode_failed")
            with accelerator.accumulate(model):
                output = model(**batch)
                loss, logs = pretraining_loss(
                    output,
                    batch.get("text_embeds"),
                    unwrapped.config,
                    config.contrastive_scope,
                    unwrapped.text_temperature,
                )
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    logs["grad_norm"] = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            window.add(logs, samples=batch["audio_values"].shape[0])
            progress.samples_seen += batch["audio_values"].shape[0] * world
            failures = failed.sum().to(accelerator.device)
            progress.decode_failures += int(accelerator.reduce(failures, "sum") if world > 1 else failures)
            if not accelerator.sync_gradients:
                continue
            progress.global_step += 1
            progress.step_in_epoch += 1
            if not per_epoch_schedule:
                scheduler.step()
            bar.update(1)
            step = progress.global_step
            if step % config.logging_steps == 0 or step == total_steps:
                metrics = window.read(accelerator)
                metrics.update(
                    lr=optimizer.param_groups[0]["lr"], epoch=epoch + progress.step_in_epoch / steps_per_epoch
                )
                first_window = first_window or metrics
                last_window = metrics
                accelerator.log(metrics, step=step)
                metrics_log.write({"step": step, **metrics})
                bar.set_postfix(
                    loss=f"{metrics['loss']:.4f}", c_acc=f"{metrics.get('contrastive_accuracy', 0):.3f}"
                )
            if eval_loader is not None and config.eval_steps and step % config.eval_steps == 0:
                evaluate(step, epoch + progress.step_in_epoch / steps_per_epoch)
            if config.checkpoint_steps and step % config.checkpoint_steps == 0:
                save(step)
            if step >= total_steps:
                break
        else:  # the epoch ran to its end
            progress.epoch += 1
            progress.step_in_epoch = 0
            if per_epoch_schedule:
                scheduler.step()
            if eval_loader is not None and last_eval_step != progress.global_step:
                evaluate(progress.global_step, float(progress.epoch))
    if eval_loader is not None and last_eval_step != progress.global_step:  # stopped mid-epoch (--max-steps)
        evaluate(progress.global_step, progress.epoch + progress.step_in_epoch / steps_per_epoch)
    bar.close()

    if not (config.checkpoint_steps and progress.global_step % config.checkpoint_steps == 0):
        save(progress.global_step)
    accelerator.wait_for_everyone()
    elapsed = time.perf_counter() - started
    summary = {
        "steps": progress.global_step,
        "steps_this_run": progress.global_step - start_step,
        "epochs_completed": progress.epoch,
        "samples_seen": progress.samples_seen,
        "global_batch_size": global_batch,
        "num_processes": world,
        "contrastive_scope": config.contrastive_scope,
        "clips": len(dataset),
        "decode_failures": progress.decode_failures,
        "resumed_from": str(resume_from) if resume_from else None,
        "wall_time_s": round(elapsed, 2),
        "samples_per_second": round(
            (progress.global_step - start_step) * global_batch / max(elapsed, 1e-9), 2
        ),
        "first_logged": first_window,
        "last_logged": last_window,
    }
    if eval_loader is not None:
        summary["last_eval"] = last_eval
        summary["best_eval_loss"] = best_loss
        summary["best_model"] = str(best_dir) if best_dir.exists() else None
    if accelerator.is_main_process:
        unwrapped.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
        (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        if hub is not None:
            summary["hub_commit"] = hub.push_model(output_dir)
            (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        print(_format_summary(summary, output_dir))
    accelerator.end_training()
    return output_dir


def _format_summary(summary: dict[str, Any], output_dir: Path) -> str:
    last = summary.get("last_logged") or {}
    lines = [
        f"pretraining done: {summary['steps']} steps ({summary['steps_this_run']} this run), "
        f"{summary['samples_seen']} samples, {summary['wall_time_s']} s, {summary['samples_per_second']} samples/s",
        f"  global batch {summary['global_batch_size']} on {summary['num_processes']} process(es), "
        f"contrastive scope {summary['contrastive_scope']}, decode failures {summary['decode_failures']}",
    ]
    if last:
        terms = ", ".join(
            f"{k} {v:.4f}" for k, v in last.items() if k.startswith("loss") or k.endswith("accuracy")
        )
        lines.append(f"  last window: {terms}")
    last_eval = summary.get("last_eval") or {}
    if last_eval:
        terms = ", ".join(
            f"{k} {v:.4f}" for k, v in last_eval.items() if "loss" in k or k.endswith("accuracy")
        )
        lines.append(f"  last eval: {terms}")
        lines.append(
            f"  best eval loss {summary['best_eval_loss']:.4f}: {summary['best_model']} (from_pretrained)"
        )
    lines.append(
        f"  model: {output_dir} (from_pretrained), checkpoints: {output_dir / checkpoints.CHECKPOINTS_DIR}"
    )
    return "\n".join(lines)
