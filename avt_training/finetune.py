"""Audio-visual classification fine-tuning on ``transformers.Trainer`` (the official CAV-MAE recipe).

``LGCavMaeForAudioVisualClassification`` starts from any pretrained checkpoint (ours or a converted official
one); the head is new. Official recipe (``src/run_cavmae_ft.py``, ``src/traintest_ft.py``): Adam (0.95,
0.999, weight decay 5e-7) with a larger lr on the head, lr halved every epoch from a start epoch, trainable
position tables, SpecAugment (freq 48 / time 192), mixup 0.5 with lambda ~ Beta(10, 10) on audio and image,
label smoothing 0.1, fbank noise + shift, a random frame per clip; evaluation on the middle frame and on the
average of the per-frame outputs (multi-frame). Accuracy for single-label data, mAP for multi-label data.

``finetune`` reads as: data (classes, problem type, sampling weights) -> classifier -> ``LGCavMaeTrainer``
(``avt_training/finetune_trainer.py``) -> train -> save -> evaluate.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avt_core.errors import RunAborted, UsageError
from avt_core.interrupts import Interrupted, signal_name
from avt_core.run_config import write_run_config
from avt_data.rows import recorded_class_table
from avt_training import output_dir as output_rules
from avt_training.checkpoints import MODEL_FILE
from avt_training.data import check_one_global_batch
from avt_training.finetune_config import AUTO_EVAL_SPLIT, FinetuneConfig
from avt_training.hub import HubCheckpointCallback, HubPusher
from avt_training.interrupts import StopCallback, stop_after_step
from avt_training.interrupts import interrupted as training_interrupted
from avt_training.model_card import finetune_run, write_training_card
from avt_training.model_checks import require_model_type, require_same_architecture
from avt_triplets.labels import ClassTable, read_class_table
from eval.classification import classification_metrics, logits_to_scores

logger = logging.getLogger(__name__)
COLUMNS = ("audio", "frames", "labels")

__all__ = ["FinetuneConfig", "finetune", "plan", "training_classes"]


# --------------------------------------------------------------------------------------------------
# Classes and metrics
# --------------------------------------------------------------------------------------------------


def training_classes(config: FinetuneConfig, labels: list[list[str] | None]) -> ClassTable:
    """The head's classes: ``--label-csv`` (ids and display names), else the class list the training data
    records (``avt generate`` of VGGSound's list: every split's labels), else the sorted training labels."""
    if config.label_csv:
        return read_class_table(config.label_csv)
    recorded = recorded_class_table(config.datasets)
    if recorded is not None:
        return recorded
    table = ClassTable.from_labels(labels)
    if not table.names:
        raise UsageError(
            "the training data has no labels (its `labels` column is empty): nothing to fine-tune on; "
            "generate from a list with a labels column, or pass labelled datasets"
        )
    return table


def infer_problem_type(labels: list[list[str] | None]) -> str:
    """Multi-label when any clip has several labels (AudioSet), single-label otherwise (VGGSound)."""
    return (
        "multi_label_classification"
        if any(len(row or []) > 1 for row in labels)
        else "single_label_classification"
    )


@dataclass
class LabelCount:
    """How one split's labels meet the class list: unknown labels are ignored (a clip keeps its known ones), and a
    clip left without any known label is skipped; counted here to be reported once."""

    keep: list[int]  # rows with at least one known label
    clips: int
    labels: int  # label occurrences
    unknown: int  # of them not in the class list
    clips_with_unknown: int
    names: list[str]  # the distinct unknown labels

    @classmethod
    def of(cls, labels: list[list[str] | None], classes: ClassTable) -> LabelCount:
        keep, total, unknown, clips_with_unknown, names = [], 0, 0, 0, set()
        for row, row_labels in enumerate(labels):
            known, missing = classes.indices(row_labels)
            total, unknown = total + len(list(row_labels or [])), unknown + len(missing)
            clips_with_unknown += bool(missing)
            names.update(missing)
            if known:
                keep.append(row)
        return cls(keep, len(labels), total, unknown, clips_with_unknown, sorted(names, key=str))

    @property
    def clips_skipped(self) -> int:
        return self.clips - len(self.keep)

    @property
    def unknown_fraction(self) -> float:
        return self.unknown / self.labels if self.labels else 0.0

    def summary(self) -> dict[str, Any]:
        """What eval_results.json records under ``unknown_labels``."""
        return {
            "labels": self.labels,
            "unknown": self.unknown,
            "clips_with_unknown": self.clips_with_unknown,
            "clips_skipped": self.clips_skipped,
            "names": self.names,
        }


def check_labels(
    labels: list[list[str] | None], classes: ClassTable, what: str, max_unknown_fraction: float
) -> LabelCount:
    """Count `what`'s labels against the class list; too many unknown ones stop the run (a wrong class list would
    otherwise fine-tune on a few clips), otherwise they are reported in one line and ignored."""
    count = LabelCount.of(labels, classes)
    share = f"{count.unknown} of {count.labels} labels ({100 * count.unknown_fraction:.1f}%)"
    examples = ", ".join(repr(n) for n in count.names[:3])
    if count.unknown_fraction > max_unknown_fraction:
        raise UsageError(
            f"{share} of the {what} are not in the class list ({classes.source}, {len(classes)} classes), e.g. "
            f"{examples}: is it the list of this dataset? Pass --max-unknown-label-fraction 1 to fine-tune on "
            "its classes anyway"
        )
    if count.unknown:
        logger.warning(
            "%s: %s are not in the class list (%s), ignored, e.g. %s; %d clip(s) left without a known label "
            "are skipped",
            what,
            share,
            classes.source,
            examples,
            count.clips_skipped,
        )
    elif count.clips_skipped:
        logger.warning("%s: %d clip(s) without a label are skipped", what, count.clips_skipped)
    return count


def metrics_from_logits(logits: np.ndarray, targets: np.ndarray, problem_type: str) -> dict[str, float]:
    """Official metric of the problem: accuracy (single-label) or mAP (multi-label), from ``eval.classification``."""
    scores = logits_to_scores(logits, problem_type)
    metrics = classification_metrics(scores, (targets > 0.5).astype(np.float32), problem_type)
    return {k: float(v) for k, v in metrics.items()}


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def finetune(config: FinetuneConfig | argparse.Namespace | dict[str, Any]) -> Path:
    """Fine-tune and evaluate; returns the output folder (model, processor, ``eval_results.json``)."""
    config = FinetuneConfig.from_any(config)
    output_dir, resume_from = preflight(config)
    hub = HubPusher.from_options(config, is_main_process=int(os.environ.get("RANK", "0")) == 0)
    try:
        data = checked_data(config)
        if int(os.environ.get("RANK", "0")) == 0:  # the data passed its checks; a folder holding only this
            write_run_config(output_dir, "finetune", config)  # file still counts as empty (output_dir.py)
        model, processor = build_classifier(config, data.classes, data.problem_type)
        trainer = build_trainer(config, data, model, processor, hub)
    except KeyboardInterrupt as stop:
        raise interrupted(signal_name(stop), output_dir, "before training started") from None
    if resume_from is not None and (Path(resume_from) / MODEL_FILE).is_file():
        require_same_architecture(Path(resume_from) / MODEL_FILE, model, "--resume checkpoint")
    if trainer.is_world_process_zero():  # every process has checked the folder: the process group has formed
        output_rules.claim(output_dir, "finetune", config.overwrite)
    train_result = train_until_stopped(trainer, resume_from, output_dir)
    require_trained(trainer.state.global_step, config)
    trainer.save_model()
    results: dict[str, Any] = {
        "problem_type": data.problem_type,
        "num_classes": len(data.classes),
        "train_clips": len(trainer.train_dataset),
        "train": train_result.metrics,
        "unknown_labels": {split: count.summary() for split, count in data.label_counts.items()},
    }
    if trainer.eval_dataset is not None:
        results.update(
            evaluate_frames(trainer, trainer.eval_dataset, data.problem_type, config.multi_frame_eval)
        )
    if trainer.is_world_process_zero():
        processor.save_pretrained(output_dir)
        (output_dir / "eval_results.json").write_text(json.dumps(results, indent=2, default=float))
        write_train_summary(trainer, config, results)
        card_run = finetune_run(config, results, data.classes.names)
        write_training_card(output_dir, trainer.model, card_run, repo_id=config.push_to_hub or "")
        print(_format_results(results, output_dir))
    if hub is not None:
        hub.push_model(output_dir, commit_message="LG-CAV-MAE fine-tuning: final model")
    return output_dir


def preflight(config: FinetuneConfig, dry_run: bool = False) -> tuple[Path, str | None]:
    """The output folder (its rule: ``avt_training/output_dir.py``), the checkpoint ``--resume`` picks, the
    ``TrainingArguments`` and the model's ``model_type`` (config.json alone): what stops a run before its data loads;
    ``dry_run`` writes no probe file."""
    from modeling_lgcavmae import LGCavMaeConfig

    output_dir = output_rules.check(
        config.output_dir,
        "finetune",
        bool(config.resume),
        config.overwrite,
        "--resume latest",
        dry_run=dry_run,
    )
    resume_from = resolve_trainer_resume(config.resume, output_dir)
    training_arguments(
        config, evaluate=bool(config.eval_split)
    )  # option mistakes stop here, before data loads
    require_model_type(config.model_name_or_path, LGCavMaeConfig.model_type, "--model")
    return output_dir, resume_from


def checked_data(config: FinetuneConfig) -> FinetuneData:
    """The labelled rows (:func:`load_finetune_data`), refused when they do not fill one global batch."""
    data = load_finetune_data(config)
    check_one_global_batch(len(data.train), config.per_device_batch_size, world_size())
    return data


def plan(config: FinetuneConfig | argparse.Namespace | dict[str, Any]):
    """``avt finetune --dry-run``: the run's figures from its own checks (folder, resume, options, model config,
    labelled data, one global batch) and Trainer's step arithmetic, with nothing written and no weights loaded."""
    from avt_training.optim import describe_schedule
    from avt_training.run_plan import (
        TrainingPlan,
        batches_per_epoch,
        checkpoint_step,
        dataset_rows,
        trainer_steps,
    )

    config = FinetuneConfig.from_any(config)
    output_dir, resume_from = preflight(config, dry_run=True)
    state = output_rules.output_state(
        output_dir, "finetune", bool(config.resume), config.overwrite, "--resume latest"
    )
    data = checked_data(config)
    batches = batches_per_epoch(len(data.train), config.per_device_batch_size, world_size())
    per_epoch, total, epochs = trainer_steps(
        batches, config.gradient_accumulation_steps, config.num_epochs, config.max_steps
    )
    resume = Path(resume_from) if resume_from is not None else None
    return TrainingPlan(
        command="finetune",
        output_dir=str(output_dir),
        output_state=state,
        datasets=dataset_rows(data.train),
        train_clips=len(data.train),
        eval_clips=len(data.eval) if data.eval is not None else None,
        num_processes=world_size(),
        per_device_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        steps_per_epoch=per_epoch,
        num_epochs=epochs,
        total_steps=total,
        schedule=describe_schedule(config, epochs, total),
        model=f"LG-CAV-MAE encoders from {config.model_name_or_path} (weights not loaded now) with a new head of "
        f"{len(data.classes)} classes ({data.problem_type}, {config.classifier_mode})",
        resume_from=str(resume) if resume is not None else None,
        resume_step=checkpoint_step(resume),
        resume_fresh=bool(config.resume) and resume is None,
        cost_kind="finetune",
        notes=[
            f"{split}: {count.clips_skipped} clip(s) without a label in the class list are skipped"
            for split, count in data.label_counts.items()
            if count.clips_skipped
        ],
    )


def train_until_stopped(trainer, resume_from: str | None, output_dir: Path):
    """``trainer.train``; Ctrl-C / SIGTERM checkpoint the step in flight and end in ``Interrupted`` (a second
    signal, or one under several processes, stops at once)."""
    with stop_after_step(enabled=world_size() == 1) as stop:
        trainer.add_callback(StopCallback(stop))
        try:
            result = trainer.train(resume_from_checkpoint=resume_from)
        except KeyboardInterrupt as interrupt:
            where = f"during step {trainer.state.global_step + 1}"
            raise interrupted(signal_name(interrupt), output_dir, where) from None
    state = trainer.state
    if stop.signal is not None and state.global_step < state.max_steps:
        raise interrupted(
            stop.signal, output_dir, f"at step {state.global_step} of {state.max_steps}", saved=True
        )
    return result


def interrupted(signal: str, output_dir: Path, where: str, saved: bool = False) -> Interrupted:
    """What ``avt finetune`` says when a signal stops it, naming Trainer's newest ``checkpoint-*``."""
    from transformers.trainer_utils import get_last_checkpoint

    latest = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    return training_interrupted("finetune", signal, where, latest, saved)


def world_size() -> int:
    """Processes of the run (``accelerate launch`` / ``torchrun`` set ``WORLD_SIZE``), known before Trainer starts."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def require_trained(global_step: int, config: FinetuneConfig) -> None:
    """No "fine-tuning done" over a model no optimiser step changed (e.g. fewer batches than
    --gradient-accumulation-steps): a run that trained nothing is a failure, not a result."""
    if global_step < 1:
        raise RunAborted(
            "fine-tuning took no optimiser step (the training data gives no complete batch of "
            f"--per-device-batch-size {config.per_device_batch_size} x --gradient-accumulation-steps "
            f"{config.gradient_accumulation_steps}); nothing was saved: lower them or add clips"
        )


@dataclass
class FinetuneData:
    """The labelled rows to train and evaluate on, their classes, and the balanced-sampling weights."""

    train: Any
    eval: Any | None
    classes: ClassTable
    problem_type: str
    sample_weights: np.ndarray | None = None
    label_counts: dict[str, LabelCount] = field(default_factory=dict)  # "train" / "eval"


def load_finetune_data(config: FinetuneConfig) -> FinetuneData:
    """Training rows with a known label (unknown labels ignored, clips without a known one skipped, both said once),
    the class list and the problem type; the eval split when it exists."""
    from avt_training.data import load_triplet_datasets

    train = load_triplet_datasets(config.datasets, columns=COLUMNS, split=config.train_split)
    labels = train["labels"]
    # the eval set's recorded class list bridges its ids or display names to the head's classes
    classes = training_classes(config, labels).bridged(recorded_class_table(eval_specs(config)))
    problem_type = infer_problem_type(labels) if config.problem_type == "auto" else config.problem_type
    counts = {"train": check_labels(labels, classes, "training clips", config.max_unknown_label_fraction)}
    if counts["train"].clips_skipped:
        train = train.select(counts["train"].keep)
    held_out = load_eval_data(config)
    if held_out is not None:
        counts["eval"] = check_labels(
            held_out["labels"], classes, "evaluation clips", config.max_unknown_label_fraction
        )
        if counts["eval"].clips_skipped:
            held_out = held_out.select(counts["eval"].keep)
    data = FinetuneData(train, held_out, classes, problem_type, label_counts=counts)
    if config.balanced_sampling:
        from avt_training.sampling import official_sample_weights

        data.sample_weights = official_sample_weights(train["labels"], classes.index)
        weights = data.sample_weights
        logger.info(
            "balanced sampling: %d draws per epoch, weights %.3g..%.3g",
            len(weights),
            weights.min(),
            weights.max(),
        )
    return data


def eval_specs(config: FinetuneConfig) -> list[str]:
    """The datasets evaluated on (none without ``--eval-split``)."""
    return list(config.eval_datasets or config.datasets) if config.eval_split else []


def load_eval_data(config: FinetuneConfig):
    """The eval split's rows; None without ``--eval-split`` or when the split does not exist. ``auto`` (the
    default) takes ``test`` where it exists, else an ``--eval-dataset``'s ``train`` (a generation output's only
    split)."""
    from avt_training.data import load_triplet_datasets

    if not config.eval_split:
        return None
    auto = config.eval_split == AUTO_EVAL_SPLIT
    split = "test" if auto else config.eval_split
    try:
        held_out = load_triplet_datasets(
            config.eval_datasets or config.datasets, columns=COLUMNS, split=split
        )
    except (ValueError, KeyError) as error:  # typically: no such split
        if auto and config.eval_datasets:
            logger.info("evaluating on the 'train' split of --eval-dataset (it has no 'test' split)")
            return load_triplet_datasets(config.eval_datasets, columns=COLUMNS, split="train")
        if config.eval_datasets:  # named for evaluation: skipping it silently would hide the mistake
            raise UsageError(
                f"--eval-dataset {', '.join(config.eval_datasets)}: no {config.eval_split!r} split ({error}); an "
                "`avt generate` output has one split, 'train': pass --eval-split train"
            ) from None
        logger.warning("no evaluation (%s split): %s", split, error)
        return None
    return held_out


def build_classifier(config: FinetuneConfig, classes: ClassTable, problem_type: str):
    """The pretrained encoder with a new head for ``classes``, trainable position tables (official ``tr_pos``), and
    the processor saved with the checkpoint (or one built from its config)."""
    import modeling_lgcavmae  # noqa: F401 - registers the Auto classes
    from avt_triplets.model_sources import loading_errors
    from modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeProcessor

    fields = classes.config_fields()
    with loading_errors("--model", config.model_name_or_path):
        model = LGCavMaeForAudioVisualClassification.from_pretrained(
            config.model_name_or_path,
            num_labels=len(classes),
            id2label=fields["id2label"],
            label2id=fields["label2id"],
            problem_type=problem_type,
            classifier_mode=config.classifier_mode,
            ignore_mismatched_sizes=True,  # a fine-tuned checkpoint with another class count gets a new head
        )
    # the ids travel with the model, so `avt evaluate classification` maps a set labelled with them too
    model.config.class_mids = fields["class_mids"]
    model.cav_mae.set_position_embeddings_trainable(True)
    try:
        processor = LGCavMaeProcessor.from_pretrained(config.model_name_or_path)
    except (OSError, ValueError, TypeError):
        processor = LGCavMaeProcessor.from_config(model.config)
    return model, processor


def build_trainer(config: FinetuneConfig, data: FinetuneData, model, processor, hub: HubPusher | None):
    """Datasets (random frame + mixup for training, middle frame for eval), collators and ``LGCavMaeTrainer``."""
    from avt_training.collators import ClassificationCollator
    from avt_training.data import ClipDataset
    from avt_training.finetune_trainer import LGCavMaeTrainer

    label2id = dict(data.classes.index)
    train_dataset = ClipDataset(
        data.train,
        frame_selection="random",
        seed=config.seed,
        with_text=False,
        with_labels=True,
        mixup=config.mixup,
    )
    eval_dataset = None
    if data.eval is not None and len(data.eval):
        eval_dataset = ClipDataset(data.eval, frame_selection="middle", with_text=False, with_labels=True)
    train_collator = ClassificationCollator(
        processor,
        label2id,
        label_smoothing=config.label_smoothing,
        freq_mask=config.freq_mask,
        time_mask=config.time_mask,
        audio_noise_augment=config.audio_noise,
    )

    def compute_metrics(prediction) -> dict[str, float]:
        logits = prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        return metrics_from_logits(np.asarray(logits), np.asarray(prediction.label_ids), data.problem_type)

    return LGCavMaeTrainer(
        model=model,
        args=training_arguments(config, evaluate=eval_dataset is not None),
        data_collator=train_collator,
        eval_data_collator=ClassificationCollator(processor, label2id),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        # Not `processing_class`: Trainer assumes a processor has a tokenizer; finetune saves it next to the model.
        compute_metrics=compute_metrics,
        finetune_config=config,
        train_sample_weights=data.sample_weights,
        callbacks=[HubCheckpointCallback(hub)]
        if hub is not None and config.hub_strategy == "every_save"
        else None,
    )


def training_arguments(config: FinetuneConfig, evaluate: bool):
    """``TrainingArguments`` of the run. No hub_* arguments: Trainer pickles them into every checkpoint's
    ``training_args.bin``, token included; pushes go through ``HubPusher``, which hands the token to
    ``huggingface_hub`` only. ``--trainer-arg`` fields come last (``avt_training/trainer_args.py`` refuses the ones set
    here)."""
    from avt_training.tracking import tracker_names
    from avt_training.trainer_args import build_training_arguments, parse_trainer_args

    steps = {"eval_steps": config.eval_steps, "save_steps": config.save_steps}
    return build_training_arguments(
        output_dir=config.output_dir,
        per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        adam_beta1=config.adam_beta1,
        adam_beta2=config.adam_beta2,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps or -1,
        lr_scheduler_type="linear" if config.lr_scheduler == "multistep" else config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        max_grad_norm=config.max_grad_norm,
        bf16=config.mixed_precision == "bf16",
        fp16=config.mixed_precision == "fp16",
        seed=config.seed,
        dataloader_num_workers=config.num_workers,
        dataloader_drop_last=True,  # official training loader
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,  # our datasets return decoded clips, not model columns
        label_names=["labels"],
        logging_steps=config.logging_steps,
        eval_strategy=config.eval_strategy if evaluate else "no",
        save_strategy=config.save_strategy,
        save_total_limit=config.save_total_limit,
        report_to=tracker_names(config.report_to) or "none",
        run_name=config.run_name,
        activation_checkpointing=config.gradient_checkpointing,  # transformers 5 name of gradient_checkpointing
        torch_compile=config.torch_compile,
        **{name: value for name, value in steps.items() if value is not None},
        **parse_trainer_args(config.trainer_args),
    )


def write_train_summary(trainer, config: FinetuneConfig, results: dict[str, Any]) -> dict[str, Any]:
    """``train_summary.json``: how the run trained as it happened, not as asked: the precision accelerate actually
    used (``--mixed-precision`` or what ``accelerate launch`` set), processes, steps, and the passthrough
    ``--trainer-arg`` fields; the model card and a rerun read it."""
    from avt_training.tracking import SUMMARY_FILE

    summary = {
        "mixed_precision": str(trainer.accelerator.mixed_precision),
        "num_processes": trainer.args.world_size,
        "global_batch_size": trainer.args.per_device_train_batch_size
        * trainer.args.world_size
        * trainer.args.gradient_accumulation_steps,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "gradient_checkpointing": bool(trainer.args.activation_checkpointing),
        "torch_compile": bool(trainer.args.torch_compile),
        "report_to": list(trainer.args.report_to or []),
        "run_name": trainer.args.run_name,
        "trainer_args": list(config.trainer_args),
        "train": results["train"],
    }
    (Path(trainer.args.output_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=float))
    return summary


def evaluate_frames(trainer, eval_dataset, problem_type: str, multi_frame: bool = True) -> dict[str, Any]:
    """Middle-frame metrics (``trainer.evaluate``) and, unless the model ignores images, the official
    multi-frame metrics: every frame of every clip predicted, softmax/sigmoid outputs averaged per clip."""
    from avt_training.data import FrameExpandedDataset
    from eval.classification import average_per_clip, classification_metrics

    results = {"single_frame": _strip(trainer.evaluate(eval_dataset, metric_key_prefix="eval"), "eval_")}
    audio_only = trainer.model.config.classifier_mode in ("audio", "missing_visual")
    if multi_frame and not audio_only:
        frames = FrameExpandedDataset(eval_dataset)
        output = trainer.predict(frames, metric_key_prefix="multi_frame")
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        scores = average_per_clip(np.asarray(logits), frames.clip_of_row, problem_type)
        label_ids = np.asarray(output.label_ids)
        targets = np.zeros_like(scores)
        np.maximum.at(targets, frames.clip_of_row, (label_ids > 0.5).astype(scores.dtype))
        results["multi_frame"] = classification_metrics(scores, targets, problem_type)
        results["multi_frame"]["frames_evaluated"] = len(frames)
    return results


def resolve_trainer_resume(resume: str | None, output_dir: Path) -> str | None:
    """``latest`` -> the newest ``checkpoint-*`` in ``output_dir`` (None, said in the log, when there is none yet);
    any other value must be a Trainer checkpoint folder."""
    if not resume:
        return None
    if resume == "latest":
        from transformers.trainer_utils import get_last_checkpoint

        found = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
        if found is None:
            logger.warning("--resume latest: no checkpoint in %s yet, starting fresh", output_dir)
        return found
    if not Path(resume).is_dir():
        raise UsageError(f"--resume {resume}: no such checkpoint folder")
    return resume


def _strip(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k.removeprefix(prefix): v for k, v in metrics.items()}


def _format_results(results: dict[str, Any], output_dir: Path) -> str:
    lines = [
        f"fine-tuning done: {results['train_clips']} training clips, {results['num_classes']} classes "
        f"({results['problem_type']}); train loss {results['train'].get('train_loss', float('nan')):.4f}"
    ]
    for key in ("single_frame", "multi_frame"):
        if key in results:
            shown = {k: v for k, v in results[key].items() if k in ("accuracy", "mAP", "loss")}
            lines.append(f"  {key.replace('_', '-')}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    unknown = {
        split: c for split, c in results["unknown_labels"].items() if c["unknown"] or c["clips_skipped"]
    }
    if unknown:
        lines.append(
            "  labels not in the class list (ignored): "
            + ", ".join(
                f"{split} {c['unknown']} of {c['labels']}, {c['clips_skipped']} clip(s) skipped"
                for split, c in unknown.items()
            )
        )
    lines.append(f"  model: {output_dir}, results: {output_dir / 'eval_results.json'}")
    return "\n".join(lines)
