"""SLAVA training with accelerate: frozen-tower features cached once, projections trained on the cache.

One loop for one CPU, one GPU or many processes under `accelerate launch`. The towers run once per clip (the feature
cache, `avt_training/slava/features.py`); every epoch after that reads cached features, so it costs a few matrix
products per batch. Contrastive terms see the global batch: each process scores its rows against all-gathered
columns (`avt_training.losses.gather_with_grad`) and gradients are averaged over processes, which equals one process
holding the whole global batch. The model is three linear layers, so gradients are averaged with one all-reduce per
step instead of a DDP wrapper (which would also refuse Wav2CLIP's stage-wise frozen projections).

Defaults follow CLIP-style fine-tuning: AdamW (weight decay on projection weights only), cosine schedule with
warmup, learnable temperature. With `--eval-dataset` the model with the lowest validation loss (of the last stage)
is kept in `best/`, as SLAVA selects its model on the validation split.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avt_core.interrupts import Interrupted, signal_name
from avt_core.run_config import write_run_config
from avt_training import output_dir as output_rules
from avt_training.interrupts import StopRequest, stop_after_step
from avt_training.slava.config import BEST_DIR, FEATURE_CACHE_DIR, SlavaPretrainConfig

logger = logging.getLogger(__name__)
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class RunState:
    """Counters and bests of one run, shared by the stages."""

    global_step: int = 0
    samples_seen: int = 0
    epochs: list[int] = field(default_factory=list)
    best_loss: float = float("inf")
    best_step: int | None = None
    last_eval: dict[str, float] = field(default_factory=dict)
    first_window: dict[str, float] | None = None
    last_window: dict[str, float] = field(default_factory=dict)


@dataclass
class Context:
    """What every stage needs: the run's config, processes, data, logs and progress bar."""

    config: SlavaPretrainConfig
    accelerator: Any
    model: Any
    train: Any
    eval: Any
    output_dir: Path
    metrics_log: Any
    bar: Any
    hub: Any = None  # avt_training.hub.HubPusher on the main process with --push-to-hub
    state: RunState = field(default_factory=RunState)
    stop: StopRequest = field(default_factory=StopRequest)  # set by Ctrl-C / SIGTERM: stop after this step

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def global_batch(self) -> int:
        return self.config.per_device_batch_size * self.world


def train_step(ctx: Context, batch, terms, parameters, optimizer, scheduler) -> dict[str, torch.Tensor]:
    """One optimizer step on this process's rows against the global batch; returns detached logs."""
    from avt_training.losses import gather_with_grad
    from modeling_slava import slava_loss

    output = ctx.model(**batch, return_loss=False)
    embeds = {"audio": output.audio_embeds, "visual": output.visual_embeds, "text": output.text_embeds}
    gather = gather_with_grad if ctx.world > 1 else None
    offset = ctx.rank * ctx.config.per_device_batch_size
    loss, logs = slava_loss(embeds, terms, output.logit_scale, gather=gather, offset=offset)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    from avt_training.slava.parts import average_gradients

    average_gradients(parameters, ctx.world)
    optimizer.step()
    scheduler.step()
    logs = {k: v.detach() for k, v in logs.items()}
    logs.update(loss=loss.detach(), temperature=1.0 / output.logit_scale.detach())
    return logs


def run_stage(ctx: Context, stage: int, steps: int, final_stage: bool) -> None:
    """Train one stage for `steps` optimizer steps, validating after every epoch."""
    from avt_training.slava.data import epoch_permutation, local_slice
    from avt_training.slava.parts import build_optimizer, set_trainable
    from avt_training.tracking import MetricWindow
    from modeling_slava import batch_recipe, batch_recipes

    config, state = ctx.config, ctx.state
    parameters = set_trainable(ctx.model, config, stage)
    optimizer, scheduler = build_optimizer(parameters, config, steps)
    steps_per_epoch = len(ctx.train) // ctx.global_batch
    window, done, epoch = MetricWindow(), 0, 0
    kinds = {kind for kind, _ in batch_recipes(config.variant, stage)}
    while done < steps:
        permutation = epoch_permutation(len(ctx.train), config.seed, stage, epoch).to(ctx.train.audio.device)
        rows = {kind: ctx.train.caption_rows(kind, config.seed, epoch) for kind in kinds}
        for step_in_epoch in range(steps_per_epoch):
            kind, terms = batch_recipe(config.variant, done, stage)
            indices = local_slice(
                permutation, step_in_epoch, config.per_device_batch_size, ctx.rank, ctx.world
            )
            logs = train_step(
                ctx, ctx.train.batch(indices, kind, rows[kind]), terms, parameters, optimizer, scheduler
            )
            window.add(logs, samples=len(indices))
            done += 1
            state.global_step += 1
            state.samples_seen += ctx.global_batch
            ctx.bar.update(1)
            if state.global_step % config.logging_steps == 0 or done == steps:
                log_window(ctx, window, stage, epoch + (step_in_epoch + 1) / steps_per_epoch, optimizer)
            if done == steps:
                break
            if ctx.stop.signal is not None:
                raise interrupted(ctx.stop.signal, ctx.config, f"at step {state.global_step}")
        epoch += 1
        if ctx.eval is not None:
            validate(ctx, stage, final_stage)
    state.epochs.append(epoch)


def log_window(ctx: Context, window, stage: int, epoch: float, optimizer) -> None:
    metrics = window.read(ctx.accelerator)
    metrics.update(lr=optimizer.param_groups[0]["lr"], epoch=epoch, stage=stage)
    ctx.state.first_window = ctx.state.first_window or metrics
    ctx.state.last_window = metrics
    ctx.accelerator.log(metrics, step=ctx.state.global_step)
    ctx.metrics_log.write({"step": ctx.state.global_step, **metrics})
    ctx.bar.set_postfix(loss=f"{metrics['loss']:.4f}", stage=stage)


def validate(ctx: Context, stage: int, final_stage: bool) -> None:
    """Validation loss (same on every process); the best model of the final stage goes to `best/`."""
    from avt_training.slava.parts import evaluate

    state = ctx.state
    state.last_eval = evaluate(ctx.model, ctx.eval, ctx.config.variant, stage, ctx.global_batch)
    state.last_eval["stage"] = stage
    ctx.accelerator.log(state.last_eval, step=state.global_step)
    ctx.metrics_log.write({"step": state.global_step, **state.last_eval})
    if final_stage and state.last_eval["eval_loss"] < state.best_loss:
        state.best_loss, state.best_step = state.last_eval["eval_loss"], state.global_step
        if ctx.accelerator.is_main_process:
            best_dir = ctx.output_dir / BEST_DIR
            ctx.model.save_pretrained(best_dir)
            (best_dir / "eval_results.json").write_text(
                json.dumps({"step": state.global_step, **state.last_eval})
            )
            if ctx.hub is not None and ctx.config.hub_strategy == "every_save":
                ctx.hub.push_snapshot(
                    best_dir,
                    BEST_DIR,
                    f"SLAVA best model: step {state.global_step}, eval loss {state.best_loss:.4f}",
                )
    ctx.accelerator.wait_for_everyone()


def prepare_features(config: SlavaPretrainConfig, accelerator, output_dir: Path):
    """Datasets (checked for captions), the model with its towers, then train / eval features from the cache; the
    towers are released afterwards."""
    from avt_training.slava.data import TrainingFeatures
    from avt_training.slava.features import FeatureCache
    from avt_training.slava.parts import build_model, load_tables, open_datasets
    from modeling_slava import batch_recipes, num_stages

    train_sets = open_datasets(config.datasets, config.train_split, accelerator)
    eval_sets = open_datasets(config.eval_datasets, config.eval_split, accelerator)
    with accelerator.main_process_first():  # one process downloads the towers, the others read the cache
        model = build_model(config, _DTYPES[config.dtype])
    model.to(accelerator.device)
    processor = model.get_processor()
    cache_root = Path(config.feature_cache_dir or output_dir / FEATURE_CACHE_DIR)
    cache = FeatureCache(cache_root, model.config, accelerator.process_index, accelerator.num_processes)
    accelerator.wait_for_everyone()
    tables = load_tables(config, train_sets, config.train_split, model, processor, cache, accelerator)
    eval_tables = (
        load_tables(config, eval_sets, config.eval_split, model, processor, cache, accelerator)
        if eval_sets
        else None
    )
    model.release_towers()  # training reads the cache only
    stages = range(1, num_stages(config.variant) + 1)
    kinds = {kind for stage in stages for kind, _ in batch_recipes(config.variant, stage)}
    warn_caption_fallbacks(config, train_sets, kinds, accelerator.is_main_process)
    train = TrainingFeatures(tables, kinds, accelerator.device)
    evaluation = TrainingFeatures(eval_tables, kinds, accelerator.device) if eval_tables else None
    return model, train, evaluation, [t.stats for t in tables + (eval_tables or [])]


def warn_caption_fallbacks(config: SlavaPretrainConfig, opened, kinds, main_process: bool) -> None:
    """A training set without the audio (visual) caption column makes the variant read another kind's captions
    there: said once per dataset, as it changes what the variant trains."""
    from avt_data.captions import caption_sources, fallback_warnings

    for text, hf_dataset in opened if main_process else ():
        for line in fallback_warnings(caption_sources(hf_dataset.column_names), kinds, text):
            logger.warning("variant %s: %s", config.variant, line)


def pretrain_slava(config: SlavaPretrainConfig | dict | Any) -> Path:
    """Train SLAVA's projections; returns the output folder holding the model (`save_pretrained`: projections and
    tower references), `train_summary.json`, `metrics.jsonl`, TensorBoard `runs/`, `feature_cache/` and `best/`;
    with `--push-to-hub` the folder goes to the Hub without `feature_cache/` and `runs/`."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from tqdm.auto import tqdm

    from avt_training.hub import HubPusher
    from avt_training.slava.parts import broadcast_parameters, stage_steps, steps_per_epoch, warn_local_towers
    from avt_training.tracking import JsonlLog, loggable_config, tracker_names

    config = SlavaPretrainConfig.from_any(config)
    output_dir = preflight(config)
    trackers = tracker_names(config.report_to)
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1,
        log_with=trackers or None,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / "runs")
        ),
    )
    if accelerator.is_main_process:  # every process has checked the folder: the process group has formed
        output_rules.claim(output_dir, "pretrain-slava", config.overwrite, keep=(FEATURE_CACHE_DIR,))
        write_run_config(output_dir, "pretrain-slava", config)
    set_seed(config.seed)
    # the repo is created now: a bad token or name stops the run before any tower loads
    hub = HubPusher.from_options(config, accelerator.is_main_process)
    try:
        model, train, evaluation, cache_stats = prepare_features(config, accelerator, output_dir)
    except KeyboardInterrupt as stop:
        raise interrupted(signal_name(stop), config, "while computing the feature cache") from None
    if hub is not None:
        warn_local_towers(model.config)
    per_epoch = steps_per_epoch(len(train), config.per_device_batch_size, accelerator.num_processes)
    broadcast_parameters(model, accelerator.num_processes)
    plan = stage_steps(config, per_epoch)
    if trackers:
        accelerator.init_trackers(config.run_name, config=loggable_config(vars(config)))
    metrics_log = JsonlLog(output_dir, enabled=accelerator.is_main_process)
    if accelerator.is_main_process:
        metrics_log.path.unlink(missing_ok=True)
    bar = tqdm(
        total=sum(plan), disable=not (config.progress and accelerator.is_local_main_process), desc="slava"
    )
    ctx = Context(config, accelerator, model.train(), train, evaluation, output_dir, metrics_log, bar, hub)
    started = time.perf_counter()
    with stop_after_step(enabled=accelerator.num_processes == 1) as ctx.stop:
        try:
            for stage, steps in enumerate(plan, start=1):
                run_stage(ctx, stage, steps, final_stage=stage == len(plan))
        except KeyboardInterrupt as stop:
            raise interrupted(signal_name(stop), config, f"during step {ctx.state.global_step + 1}") from None
        finally:
            bar.close()  # the bar's line ends before anything else is printed
    elapsed = time.perf_counter() - started
    summary = run_summary(ctx, plan, cache_stats, elapsed)
    if accelerator.is_main_process:
        save_and_push(ctx, summary)
        print(format_summary(summary, output_dir))
    accelerator.end_training()
    return output_dir


def preflight(config: SlavaPretrainConfig, dry_run: bool = False) -> Path:
    """The output folder (its rule: ``avt_training/output_dir.py``; ``dry_run``: no probe file) and a
    ``--model-name-or-path``'s ``model_type`` (config.json alone): what stops a run before anything is written."""
    output_dir = output_rules.check(
        config.output_dir, "pretrain-slava", False, config.overwrite, None, dry_run
    )
    if config.model_name_or_path:
        from avt_training.model_checks import require_model_type
        from modeling_slava import SlavaConfig

        require_model_type(config.model_name_or_path, SlavaConfig.model_type, "--model-name-or-path")
    return output_dir


def interrupted(signal: str, config: SlavaPretrainConfig, where: str) -> Interrupted:
    """SLAVA keeps no mid-run checkpoint (an epoch on cached features takes seconds): the feature cache, the
    expensive part, is what a rerun reuses."""
    cache = Path(config.feature_cache_dir or Path(config.output_dir) / FEATURE_CACHE_DIR)
    detail = f"avt pretrain-slava stopped {where}; the feature cache in {cache} is kept and reused by a rerun"
    return Interrupted(signal, detail, resume_flag="--overwrite")


def save_and_push(ctx: Context, summary: dict[str, Any]) -> None:
    """The final model, its card (README.md) and summary in OUTPUT_DIR; with --push-to-hub, the folder without its
    feature cache."""
    from huggingface_hub import ModelCard

    from avt_training.slava.parts import pushed_exclusions
    from avt_triplets.cards import carry_over, read_card_text
    from modeling_slava.model_card_slava import render_model_card

    ctx.model.save_pretrained(ctx.output_dir)
    summary_path = ctx.output_dir / "train_summary.json"
    summary_path.write_text(json.dumps(summary, indent=2))
    card, repo_id = ctx.output_dir / "README.md", ctx.config.push_to_hub or ""
    rendered = str(render_model_card(ctx.model, summary, repo_id=repo_id))
    carry_over(read_card_text(card), rendered, ModelCard).save(card)  # an existing card is updated in place
    if ctx.hub is not None:
        summary["hub_commit"] = ctx.hub.push_model(
            ctx.output_dir, "SLAVA pretraining: final model", pushed_exclusions(ctx.config, ctx.output_dir)
        )
        summary_path.write_text(json.dumps(summary, indent=2))


def run_summary(ctx: Context, plan: list[int], cache_stats: list[dict], elapsed: float) -> dict[str, Any]:
    state, config = ctx.state, ctx.config
    summary = {
        "variant": config.variant,
        "steps": state.global_step,
        "stage_steps": plan,
        "stage_epochs": state.epochs,
        "samples_seen": state.samples_seen,
        "global_batch_size": ctx.global_batch,
        "num_processes": ctx.world,
        "clips": len(ctx.train),
        "clips_excluded": ctx.train.num_excluded,
        "eval_clips": len(ctx.eval) if ctx.eval is not None else 0,
        "feature_cache": cache_stats,
        "extraction_seconds": round(sum(s["extraction_seconds"] for s in cache_stats), 3),
        "training_seconds": round(elapsed, 3),
        "seconds_per_epoch": round(elapsed / max(sum(state.epochs), 1), 4),
        "samples_per_second": round(state.samples_seen / max(elapsed, 1e-9), 1),
        "towers": {k: v[0] for k, v in ctx.model.config.tower_references().items()},
        "first_logged": state.first_window,
        "last_logged": state.last_window,
    }
    if ctx.eval is not None:
        summary.update(last_eval=state.last_eval, best_eval_loss=state.best_loss, best_step=state.best_step)
        summary["best_model"] = str(ctx.output_dir / BEST_DIR) if state.best_step is not None else None
    return summary


def format_summary(summary: dict[str, Any], output_dir: Path) -> str:
    reused = sum(s["reused"] for s in summary["feature_cache"])
    extracted = sum(s["extracted"] for s in summary["feature_cache"])
    failed = sum(s["failed"] for s in summary["feature_cache"])
    lines = [
        f"SLAVA ({summary['variant']}) done: {summary['steps']} steps in stages {summary['stage_steps']}, "
        f"{summary['samples_seen']} samples, {summary['training_seconds']} s training "
        f"({summary['seconds_per_epoch']} s/epoch, {summary['samples_per_second']} samples/s)",
        f"  {summary['clips']} training clips ({summary['clips_excluded']} without features or captions), "
        f"global batch {summary['global_batch_size']} on {summary['num_processes']} process(es)",
        f"  feature cache: {reused} clips reused, {extracted} extracted in {summary['extraction_seconds']} s, "
        f"{failed} failed to decode",
    ]
    last = summary.get("last_logged") or {}
    if last:
        terms = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k.startswith(("loss", "accuracy")))
        lines.append(f"  last window: {terms}, temperature {last.get('temperature', float('nan')):.4f}")
    if summary.get("best_step") is not None:
        lines.append(
            f"  best eval loss {summary['best_eval_loss']:.4f} at step {summary['best_step']}: {output_dir / BEST_DIR}"
        )
    lines.append(f"  model: {output_dir} (AutoModel.from_pretrained loads the projections and the towers)")
    if summary.get("hub_commit"):
        lines.append(f"  pushed to the Hub: {summary['hub_commit']}")
    return "\n".join(lines)


__all__ = ["pretrain_slava"]
