"""The pretraining loop: ``train_one_epoch`` -> ``evaluate`` -> ``save`` over a ``PretrainRun`` (open_clip's shape).

``avt_training.pretrain.setup`` builds the run; these functions move it forward. All they change between steps is the
run's ``TrainState`` (saved with every checkpoint), the model and optimizer, and the logs.

Exact resume: the data order is a seeded permutation per epoch, every random draw of a sample (frame, fbank noise and
shift, MAE masks) is seeded by (seed, epoch, index), and a checkpoint keeps the model, optimizer, RNG states and the
loop state, so a run killed and resumed from a checkpoint reaches the same weights as an uninterrupted one.
Evaluation restores the RNG states it touches, so a run with evaluation trains the same weights as one without.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avt_core.interrupts import Interrupted
from avt_training import checkpoints
from avt_training.checkpoints import TrainState
from avt_training.hub import HubPusher
from avt_training.interrupts import StopRequest
from avt_training.interrupts import interrupted as training_interrupted
from avt_training.losses import PretrainingLoss
from avt_training.model_card import pretrain_run, write_training_card
from avt_training.pretrain_config import PretrainConfig
from avt_training.pretrain_eval import EVAL_PREFIX, evaluate_pretraining
from avt_training.tracking import LOSS_CURVE_FILE, SUMMARY_FILE, JsonlLog, MetricWindow, plot_loss_curve

logger = logging.getLogger(__name__)
BEST_DIR = "best"  # save_pretrained of the lowest eval total loss model (official best_audio_model.pth)


@dataclass(frozen=True)
class Schedule:
    """How long the run is, in optimizer steps, and when the lr scheduler steps."""

    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    per_epoch: (
        bool  # the official multistep schedule steps at epoch ends, the others after every optimizer step
    )

    @classmethod
    def plan(cls, batches_per_epoch: int, config: PretrainConfig) -> Schedule:
        steps_per_epoch = math.ceil(batches_per_epoch / config.gradient_accumulation_steps)
        total_steps = config.max_steps or config.num_epochs * steps_per_epoch
        num_epochs = math.ceil(total_steps / steps_per_epoch)
        return cls(steps_per_epoch, total_steps, num_epochs, per_epoch=config.lr_scheduler == "multistep")


@dataclass
class RunLog:
    """Where the run reports: the metric window between log steps, ``metrics.jsonl``, the progress bar, and the
    windows and evaluation the final summary quotes."""

    metrics: JsonlLog
    window: MetricWindow
    bar: Any
    first_window: dict[str, float] | None = None
    last_window: dict[str, float] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)


@dataclass
class PretrainRun:
    """Everything the loop works with, built once by ``avt_training.pretrain.setup``."""

    config: PretrainConfig
    accelerator: Any
    model: Any  # prepared by accelerate (DDP-wrapped under several processes)
    processor: Any
    optimizer: Any
    scheduler: Any  # not prepared: accelerate's wrapper would step it once per process
    loader: Any
    sampler: Any
    loss: PretrainingLoss
    state: TrainState
    schedule: Schedule
    log: RunLog
    num_clips: int
    eval_loader: Any | None = None
    hub: HubPusher | None = None
    resumed_from: Path | None = None
    start_step: int = 0
    stop: StopRequest = field(default_factory=StopRequest)  # set by Ctrl-C / SIGTERM: stop after this step
    started: float = field(default_factory=time.perf_counter)

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def unwrapped(self) -> Any:
        return self.accelerator.unwrap_model(self.model)

    @property
    def global_batch(self) -> int:
        config = self.config
        return (
            config.per_device_batch_size * self.accelerator.num_processes * config.gradient_accumulation_steps
        )

    def finished(self) -> bool:
        """``--max-steps`` counts optimizer steps whatever the epochs hold (a run resumed with another batch size
        has other epochs); without it the run is its epochs."""
        if self.state.global_step >= self.schedule.total_steps:
            return True
        return not self.config.max_steps and self.state.epoch >= self.schedule.num_epochs

    def epoch_progress(self) -> float:
        return self.state.epoch + self.state.step_in_epoch / self.schedule.steps_per_epoch


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def train_one_epoch(run: PretrainRun) -> None:
    """The rest of the current epoch (all of it unless resuming mid-epoch), stopping early at the last step."""
    for batch in epoch_batches(run):
        train_step(run, batch)
        if not run.accelerator.sync_gradients:
            continue  # gradients accumulate over more micro-batches before the optimizer steps
        after_optimizer_step(run)
        if run.state.global_step >= run.schedule.total_steps:
            return  # the last step: the run ends normally, signal or not
        if run.stop.signal is not None:
            stop_here(run, run.stop.signal)
    end_epoch(run)


def epoch_batches(run: PretrainRun) -> Iterable[dict[str, Any]]:
    """This epoch's seeded batch order, without the batches a resumed run already trained on."""
    state = run.state
    run.sampler.set_epoch(state.epoch)
    run.loader.set_epoch(state.epoch)
    if not state.step_in_epoch:
        return run.loader
    return run.accelerator.skip_first_batches(
        run.loader, state.step_in_epoch * run.config.gradient_accumulation_steps
    )


def train_step(run: PretrainRun, batch: dict[str, Any]) -> None:
    """Forward, loss and backward of one micro-batch; the optimizer steps once the accumulation is complete."""
    accelerator, model, optimizer = run.accelerator, run.model, run.optimizer
    failed = batch.pop("decode_failed")
    with accelerator.accumulate(model):
        output = model(**batch, return_contrastive_loss=False)
        loss, logs = run.loss(output, batch.get("text_embeds"), run.unwrapped.text_temperature)
        accelerator.backward(loss)
        if accelerator.sync_gradients and run.config.max_grad_norm:
            logs["grad_norm"] = accelerator.clip_grad_norm_(model.parameters(), run.config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    size = batch["audio_values"].shape[0]
    run.log.window.add(logs, samples=size)
    run.state.samples_seen += size * accelerator.num_processes
    failures = failed.sum().to(accelerator.device)
    run.state.decode_failures += int(
        accelerator.reduce(failures, "sum") if accelerator.num_processes > 1 else failures
    )


def after_optimizer_step(run: PretrainRun) -> None:
    """Count the step, step a per-step lr schedule, then log, evaluate and checkpoint when their steps come."""
    state, config = run.state, run.config
    state.global_step += 1
    state.step_in_epoch += 1
    if not run.schedule.per_epoch:
        run.scheduler.step()
    run.log.bar.update(1)
    step = state.global_step
    if step % config.logging_steps == 0 or step == run.schedule.total_steps:
        log_metrics(run)
    if run.eval_loader is not None and config.eval_steps and step % config.eval_steps == 0:
        evaluate(run)
    if config.save_steps and step % config.save_steps == 0:
        save(run)


def stop_here(run: PretrainRun, signal: str) -> None:
    """A signal asked to stop: checkpoint the step just taken (unless it just was), then raise ``Interrupted``."""
    step, save_steps = run.state.global_step, run.config.save_steps
    if not (save_steps and step % save_steps == 0):
        save(run)
    run.log.bar.close()
    raise interrupted(signal, run.output_dir, f"at step {step} of {run.schedule.total_steps}", saved=True)


def interrupted(signal: str, output_dir: Path, where: str, saved: bool = False) -> Interrupted:
    """What ``avt pretrain`` says when a signal stops it, naming the newest checkpoint."""
    found = checkpoints.list_checkpoints(output_dir)
    return training_interrupted("pretrain", signal, where, found[-1] if found else None, saved)


def end_epoch(run: PretrainRun) -> None:
    """An epoch ran to its end: step a per-epoch lr schedule and evaluate (unless this step just was)."""
    state = run.state
    state.epoch += 1
    state.step_in_epoch = 0
    if run.schedule.per_epoch:
        run.scheduler.step()
    if run.eval_loader is not None and state.last_eval_step != state.global_step:
        evaluate(run)


def log_metrics(run: PretrainRun) -> None:
    """Means of the window since the last log, over processes, to the trackers, ``metrics.jsonl`` and the bar."""
    metrics = run.log.window.read(run.accelerator)
    metrics.update(lr=run.optimizer.param_groups[0]["lr"], epoch=run.epoch_progress())
    run.log.first_window = run.log.first_window or metrics
    run.log.last_window = metrics
    run.accelerator.log(metrics, step=run.state.global_step)
    run.log.metrics.write({"step": run.state.global_step, **metrics})
    run.log.bar.set_postfix(
        loss=f"{metrics['loss']:.4f}", c_acc=f"{metrics.get('contrastive_accuracy', 0):.3f}"
    )


# --------------------------------------------------------------------------------------------------
# Evaluation and saving
# --------------------------------------------------------------------------------------------------


def evaluate(run: PretrainRun) -> None:
    """Eval losses logged with an ``eval_`` prefix; ``best/`` gets the model when the eval total loss is lowest."""
    state, accelerator = run.state, run.accelerator
    metrics = evaluate_pretraining(run.model, run.eval_loader, accelerator)
    metrics["epoch"] = run.epoch_progress()
    state.last_eval_step = state.global_step
    run.log.last_eval = metrics
    accelerator.log(metrics, step=state.global_step)
    run.log.metrics.write({"step": state.global_step, **metrics})
    logger.info("step %d eval: %s", state.global_step, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if state.best_eval_loss is None or metrics["eval_loss"] < state.best_eval_loss:
        state.best_eval_loss = metrics["eval_loss"]
        if accelerator.is_main_process:
            best = run.output_dir / BEST_DIR
            run.unwrapped.save_pretrained(best)
            run.processor.save_pretrained(best)
            (best / "eval_results.json").write_text(
                json.dumps({"step": state.global_step, **metrics}, indent=2)
            )
    accelerator.wait_for_everyone()


def save(run: PretrainRun) -> None:
    """A checkpoint of the current step (uploaded in the background with ``--hub-strategy every_save``)."""
    path = checkpoints.save_checkpoint(
        run.accelerator, run.output_dir, run.state.global_step, run.config.save_total_limit
    )
    if run.hub is not None and run.config.hub_strategy == "every_save":
        run.hub.push_checkpoint(path)


def finish(run: PretrainRun) -> Path:
    """Save the final model and processor, write and print the summary, push to the Hub; returns the folder."""
    run.log.bar.close()
    run.accelerator.wait_for_everyone()
    summary = run_summary(run)
    if run.accelerator.is_main_process:
        output_dir = run.output_dir
        run.unwrapped.save_pretrained(output_dir)
        run.processor.save_pretrained(output_dir)
        (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        rows = run.log.metrics.read()
        if any("loss" in r for r in rows):  # a run shorter than --logging-steps logged none
            plot_loss_curve(rows, output_dir / LOSS_CURVE_FILE)
        write_training_card(
            output_dir, run.unwrapped, pretrain_run(run.config, summary), run.config.push_to_hub or ""
        )
        if run.hub is not None:
            summary["hub_commit"] = run.hub.push_model(output_dir)
            (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        print(format_summary(summary, output_dir))
    run.accelerator.end_training()
    return run.output_dir


def run_summary(run: PretrainRun) -> dict[str, Any]:
    state, elapsed = run.state, time.perf_counter() - run.started
    steps_this_run = state.global_step - run.start_step
    summary = {
        "steps": state.global_step,
        "steps_this_run": steps_this_run,
        "epochs_completed": state.epoch,
        "samples_seen": state.samples_seen,
        "global_batch_size": run.global_batch,
        "num_processes": run.accelerator.num_processes,
        "mixed_precision": str(
            run.accelerator.mixed_precision
        ),  # as used: flag, launcher or accelerate config
        "contrastive_scope": run.config.contrastive_scope,
        "clips": run.num_clips,
        "decode_failures": state.decode_failures,
        "resumed_from": str(run.resumed_from) if run.resumed_from else None,
        "wall_time_s": round(elapsed, 2),
        "samples_per_second": round(steps_this_run * run.global_batch / max(elapsed, 1e-9), 2),
        "first_logged": run.log.first_window,
        "last_logged": run.log.last_window,
    }
    if run.eval_loader is not None:
        best = run.output_dir / BEST_DIR
        summary.update(
            last_eval=run.log.last_eval,
            best_eval_loss=state.best_eval_loss,
            best_model=str(best) if best.exists() else None,
        )
    return summary


def term_values(metrics: dict[str, Any], prefix: str = "") -> str:
    """The total and every loss term's values of one logged window, in the order of the term table."""
    from modeling_lgcavmae.losses_lgcavmae import loss_term_outputs

    names = [prefix + name for name in ("loss", *loss_term_outputs())]
    return ", ".join(f"{name} {metrics[name]:.4f}" for name in names if metrics.get(name) is not None)


def format_summary(summary: dict[str, Any], output_dir: Path) -> str:
    last = summary.get("last_logged") or {}
    lines = [
        f"pretraining done: {summary['steps']} steps ({summary['steps_this_run']} this run), "
        f"{summary['samples_seen']} samples, {summary['wall_time_s']} s, {summary['samples_per_second']} samples/s",
        f"  global batch {summary['global_batch_size']} on {summary['num_processes']} process(es), "
        f"mixed precision {summary['mixed_precision']}, "
        f"contrastive scope {summary['contrastive_scope']}, decode failures {summary['decode_failures']}",
    ]
    if last:
        lines.append(f"  last window: {term_values(last)}")
    last_eval = summary.get("last_eval") or {}
    if last_eval:
        lines.append(f"  last eval: {term_values(last_eval, EVAL_PREFIX)}")
        lines.append(
            f"  best eval loss {summary['best_eval_loss']:.4f}: {summary['best_model']} (from_pretrained)"
        )
    lines.append(
        f"  model: {output_dir} (from_pretrained), checkpoints: {output_dir / checkpoints.CHECKPOINTS_DIR}"
    )
    return "\n".join(lines)
