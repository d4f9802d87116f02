"""Audio-visual classification fine-tuning on ``transformers.Trainer`` (the official CAV-MAE recipe).

``LGCavMaeForAudioVisualClassification`` starts from any pretrained checkpoint (ours or a converted official
one); the head is new. Official recipe (``src/run_cavmae_ft.py``, ``src/traintest_ft.py``): Adam (0.95,
0.999, weight decay 5e-7) with a larger lr on the head, lr halved every epoch from a start epoch, trainable
position tables, SpecAugment (freq 48 / time 192), mixup 0.5 with lambda ~ Beta(10, 10) on audio and image,
label smoothing 0.1, fbank noise + shift, a random frame per clip; evaluation on the middle frame and on the
average of the per-frame outputs (multi-frame). Accuracy for single-label data, mAP for multi-label data.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from avt_triplets.errors import UsageError
from training.options import options_from_any, require_non_negative, require_positive

logger = logging.getLogger(__name__)

ProblemType = Literal["auto", "single_label_classification", "multi_label_classification"]


@dataclass
class FinetuneConfig:
    """Every option of ``avt finetune``."""

    model_name_or_path: str
    datasets: list[str]
    output_dir: str
    train_split: str = "train"
    eval_datasets: list[str] | None = None  # default: the training datasets
    eval_split: str | None = "test"
    label_csv: str | None = None
    problem_type: ProblemType = "auto"
    classifier_mode: str = "audio_visual"
    # optimisation (defaults: official VGGSound fine-tuning)
    per_device_batch_size: int = 48
    per_device_eval_batch_size: int = 48
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    head_lr_multiplier: float = 10.0
    adam_beta1: float = 0.95
    adam_beta2: float = 0.999
    weight_decay: float = 5e-7
    num_epochs: float = 10
    max_steps: int | None = None  # None: train num_epochs
    lr_scheduler: str = "multistep"
    lr_decay_start_epoch: int = 2
    lr_decay_step_epochs: int = 1
    lr_decay_gamma: float = 0.5
    warmup_steps: int = 0
    max_grad_norm: float = 0.0
    mixed_precision: str = "no"
    seed: int = 0
    # augmentation (official fine-tuning values)
    freq_mask: int = 48
    time_mask: int = 192
    mixup: float = 0.5
    label_smoothing: float = 0.1
    audio_noise: bool = True
    multi_frame_eval: bool = True
    balanced_sampling: bool = False  # official AS-2M / VGGSound recipes: on; AS-20K: off
    # running
    num_workers: int = 4
    logging_steps: int = 10
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    save_total_limit: int | None = None
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    resume: str | None = None
    push_to_hub: str | None = None
    hub_strategy: str = "end"
    hub_private: bool = False
    hub_token: str | None = None

    def __post_init__(self) -> None:
        require_positive(
            self,
            "per_device_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "num_epochs",
            "max_steps",
            "logging_steps",
            "save_total_limit",
        )
        require_non_negative(self, "num_workers", "warmup_steps")

    @classmethod
    def from_any(cls, value: FinetuneConfig | argparse.Namespace | dict[str, Any]) -> FinetuneConfig:
        return options_from_any(cls, value)


# --------------------------------------------------------------------------------------------------
# Classes
# --------------------------------------------------------------------------------------------------


@dataclass
class ClassList:
    """Class names in index order, and the label strings that map to each index."""

    names: list[str]
    aliases: dict[str, int]

    @classmethod
    def from_csv(cls, path: str | Path) -> ClassList:
        """Official ``index,mid,display_name`` CSV; dataset labels may be mids or display names."""
        with open(path, newline="") as handle:
            rows = sorted(csv.DictReader(handle), key=lambda r: int(r["index"]))
        if [int(r["index"]) for r in rows] != list(range(len(rows))):
            raise ValueError(f"{path}: the index column must be 0..N-1")
        aliases: dict[str, int] = {}
        for row in rows:
            for key in (row["mid"], row["display_name"]):
                aliases.setdefault(key, int(row["index"]))
        return cls(names=[r["display_name"] for r in rows], aliases=aliases)

    @classmethod
    def from_labels(cls, labels: list[list[str] | None]) -> ClassList:
        names = sorted({label for row in labels for label in (row or [])})
        if not names:
            raise UsageError(
                "the training data has no labels (its `labels` column is empty): nothing to fine-tune on; "
                "generate from a list with a labels column, or pass labelled datasets"
            )
        return cls(names=names, aliases={n: i for i, n in enumerate(names)})

    def __len__(self) -> int:
        return len(self.names)


def infer_problem_type(labels: list[list[str] | None]) -> str:
    """Multi-label when any clip has several labels (AudioSet), single-label otherwise (VGGSound)."""
    return (
        "multi_label_classification"
        if any(len(row or []) > 1 for row in labels)
        else "single_label_classification"
    )


def labelled_rows(labels: list[list[str] | None], classes: ClassList) -> tuple[list[int], set[str]]:
    """Rows with at least one known label, and the unknown label strings (those rows are skipped, reported)."""
    keep, unknown = [], set()
    for row, names in enumerate(labels):
        names = list(names or [])
        unknown.update(n for n in names if n not in classes.aliases)
        if any(n in classes.aliases for n in names):
            keep.append(row)
    return keep, unknown


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def metrics_from_logits(logits: np.ndarray, targets: np.ndarray, problem_type: str) -> dict[str, float]:
    """Official metric of the problem: accuracy (single-label) or mAP (multi-label), from ``eval.classification``."""
    from eval.classification import classification_metrics, logits_to_scores

    scores = logits_to_scores(logits, problem_type)
    metrics = classification_metrics(scores, (targets > 0.5).astype(np.float32), problem_type)
    return {k: float(v) for k, v in metrics.items()}


def multi_frame_scores(logits: np.ndarray, clip_of_row: np.ndarray, problem_type: str) -> np.ndarray:
    """Average per-frame softmax (single-label) or sigmoid (multi-label) outputs per clip, as the official
    multi-frame evaluation does; clips may have different frame counts."""
    from eval.classification import logits_to_scores

    scores = logits_to_scores(logits, problem_type)
    num_clips = int(clip_of_row.max()) + 1
    sums = np.zeros((num_clips, scores.shape[1]))
    np.add.at(sums, clip_of_row, scores)
    counts = np.bincount(clip_of_row, minlength=num_clips)[:, None]
    return sums / counts


# --------------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------------


def official_step_lambda(steps_per_epoch: float, start_epoch: int, step_epochs: int, gamma: float):
    """lr factor per optimizer step equal to the official ``MultiStepLR`` stepped once per epoch."""
    from training.optim import official_milestones

    milestones = np.asarray(official_milestones(start_epoch, step_epochs, 0))

    def factor(step: int) -> float:
        completed_epochs = int(step // max(steps_per_epoch, 1e-9))
        return float(gamma ** int((milestones <= completed_epochs).sum()))

    return factor


def _trainer_class():
    from transformers import Trainer

    class LGCavMaeTrainer(Trainer):
        """Trainer with the official optimiser (Adam, head lr x multiplier) and per-epoch step schedule."""

        def __init__(
            self,
            *args,
            finetune_config: FinetuneConfig,
            eval_data_collator=None,
            train_sample_weights: np.ndarray | None = None,
            **kwargs,
        ):
            self.finetune_config = finetune_config
            self.eval_data_collator = eval_data_collator
            self.train_sample_weights = train_sample_weights
            super().__init__(*args, **kwargs)

        def _get_train_sampler(self, train_dataset=None):
            """Official balanced sampling when weights are given: draws with replacement, seeded per epoch,
            identical on every process so accelerate's batch sharding splits one global draw between ranks."""
            dataset = self.train_dataset if train_dataset is None else train_dataset
            weights = self.train_sample_weights
            if weights is None or dataset is None or len(weights) != len(dataset):
                return super()._get_train_sampler(train_dataset)
            from training.sampling import EpochSeededWeightedSampler

            return EpochSeededWeightedSampler(
                weights, seed=self.args.seed if self.args.data_seed is None else self.args.data_seed
            )

        def _with_eval_collator(self, build, dataset):
            """Evaluation and prediction batches get the augmentation-free collator, and keep every clip
            (`dataloader_drop_last` is for training only, like the official loaders)."""
            train_collator, drop_last = self.data_collator, self.args.dataloader_drop_last
            self.data_collator = self.eval_data_collator or train_collator
            self.args.dataloader_drop_last = False
            try:
                return build(dataset)
            finally:
                self.data_collator, self.args.dataloader_drop_last = train_collator, drop_last

        def get_eval_dataloader(self, eval_dataset=None):
            return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

        def get_test_dataloader(self, test_dataset):
            return self._with_eval_collator(super().get_test_dataloader, test_dataset)

        def create_optimizer(self, model=None):
            if self.optimizer is None:
                from training.optim import build_adam

                model = model or self.model
                c = self.finetune_config
                head = [
                    p for n, p in model.named_parameters() if n.startswith("classifier.") and p.requires_grad
                ]
                base = [
                    p
                    for n, p in model.named_parameters()
                    if not n.startswith("classifier.") and p.requires_grad
                ]
                self.optimizer = build_adam(
                    [{"params": base}, {"params": head, "lr": c.learning_rate * c.head_lr_multiplier}],
                    lr=c.learning_rate,
                    betas=(c.adam_beta1, c.adam_beta2),
                    weight_decay=c.weight_decay,
                )
            return self.optimizer

        def create_scheduler(self, num_training_steps: int, optimizer=None):
            c = self.finetune_config
            if self.lr_scheduler is None and c.lr_scheduler == "multistep":
                epochs = self.args.num_train_epochs if self.args.max_steps <= 0 else None
                steps_per_epoch = num_training_steps / epochs if epochs else self._steps_per_epoch()
                factor = official_step_lambda(
                    steps_per_epoch, c.lr_decay_start_epoch, c.lr_decay_step_epochs, c.lr_decay_gamma
                )
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, factor)
                return self.lr_scheduler
            return super().create_scheduler(num_training_steps, optimizer)

        def _steps_per_epoch(self) -> float:
            batches = len(self.get_train_dataloader())
            return max(batches // self.args.gradient_accumulation_steps, 1)

    return LGCavMaeTrainer


def finetune(config: FinetuneConfig | argparse.Namespace | dict[str, Any]) -> Path:
    """Fine-tune and evaluate; returns the output folder (model, processor, ``eval_results.json``)."""
    from transformers import TrainingArguments

    import modeling_lgcavmae  # noqa: F401 - registers the Auto classes
    from modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeProcessor
    from training.collators import ClassificationCollator
    from training.data import ClipDataset, load_triplet_datasets
    from training.hub import HubCheckpointCallback
    from training.tracking import tracker_names

    config = FinetuneConfig.from_any(config)
    output_dir = Path(config.output_dir)
    resume_from = resolve_trainer_resume(config.resume, output_dir)
    hub = None
    if config.push_to_hub and _is_main_process():
        from training.hub import HubPusher

        hub = HubPusher(config.push_to_hub, token=config.hub_token, private=config.hub_private or None)
    columns = ("audio", "frames", "labels")
    train_data = load_triplet_datasets(config.datasets, columns=columns, split=config.train_split)
    train_labels = train_data["labels"]
    classes = (
        ClassList.from_csv(config.label_csv) if config.label_csv else ClassList.from_labels(train_labels)
    )
    problem_type = infer_problem_type(train_labels) if config.problem_type == "auto" else config.problem_type
    keep, unknown = labelled_rows(train_labels, classes)
    if unknown:
        logger.warning(
            "%d label(s) not in the class list are ignored, e.g. %s", len(unknown), sorted(unknown)[:5]
        )
    if len(keep) < len(train_data):
        logger.warning("%d training clip(s) without a known label are skipped", len(train_data) - len(keep))
        train_data = train_data.select(keep)

    sample_weights = None
    if config.balanced_sampling:
        from training.sampling import official_sample_weights

        sample_weights = official_sample_weights(train_data["labels"], classes.aliases)
        logger.info(
            "balanced sampling: %d draws per epoch, weights %.3g..%.3g",
            len(sample_weights),
            sample_weights.min(),
            sample_weights.max(),
        )

    eval_data = None
    if config.eval_split:
        try:
            eval_data = load_triplet_datasets(
                config.eval_datasets or config.datasets, columns=columns, split=config.eval_split
            )
        except (ValueError, KeyError) as error:  # typically: no such split
            logger.warning("no evaluation (%s split): %s", config.eval_split, error)
        if eval_data is not None:
            eval_keep, _ = labelled_rows(eval_data["labels"], classes)
            eval_data = eval_data.select(eval_keep)

    label2id = dict(classes.aliases)
    model = LGCavMaeForAudioVisualClassification.from_pretrained(
        config.model_name_or_path,
        num_labels=len(classes),
        id2label=dict(enumerate(classes.names)),
        label2id={n: i for i, n in enumerate(classes.names)},
        problem_type=problem_type,
        classifier_mode=config.classifier_mode,
        ignore_mismatched_sizes=True,  # a fine-tuned checkpoint with another class count gets a new head
    )
    model.cav_mae.set_position_embeddings_trainable(True)  # official fine-tuning: tr_pos=True
    try:
        processor = LGCavMaeProcessor.from_pretrained(config.model_name_or_path)
    except (OSError, ValueError, TypeError):
        processor = LGCavMaeProcessor.from_config(model.config)

    train_dataset = ClipDataset(
        train_data,
        frame_selection="random",
        seed=config.seed,
        with_text=False,
        with_labels=True,
        mixup=config.mixup,
    )
    train_collator = ClassificationCollator(
        processor,
        label2id,
        label_smoothing=config.label_smoothing,
        freq_mask=config.freq_mask,
        time_mask=config.time_mask,
        audio_noise_augment=config.audio_noise,
    )
    eval_collator = ClassificationCollator(processor, label2id)
    eval_dataset = None
    if eval_data is not None and len(eval_data):
        eval_dataset = ClipDataset(eval_data, frame_selection="middle", with_text=False, with_labels=True)

    def compute_metrics(prediction) -> dict[str, float]:
        logits = (
            prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        )
        return metrics_from_logits(np.asarray(logits), np.asarray(prediction.label_ids), problem_type)

    trackers = tracker_names(config.report_to)
    args = TrainingArguments(
        output_dir=str(output_dir),
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
        eval_strategy=config.eval_strategy if eval_dataset is not None else "no",
        save_strategy=config.save_strategy,
        save_total_limit=config.save_total_limit,
        report_to=trackers or "none",
        # No hub_* arguments: Trainer pickles TrainingArguments into every checkpoint's training_args.bin, token
        # included. Pushes go through HubPusher, which hands the token to huggingface_hub only.
    )
    trainer = _trainer_class()(
        model=model,
        args=args,
        data_collator=train_collator,
        eval_data_collator=eval_collator,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        # Not `processing_class`: Trainer assumes a processor has a tokenizer. Saved next to the model below.
        compute_metrics=compute_metrics,
        finetune_config=config,
        train_sample_weights=sample_weights,
        callbacks=[HubCheckpointCallback(hub)]
        if hub is not None and config.hub_strategy == "every_save"
        else None,
    )
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model()
    if trainer.is_world_process_zero():
        processor.save_pretrained(output_dir)
    results: dict[str, Any] = {
        "problem_type": problem_type,
        "num_classes": len(classes),
        "train_clips": len(train_dataset),
        "train": train_result.metrics,
    }
    if eval_dataset is not None:
        results.update(evaluate_frames(trainer, eval_dataset, problem_type, config.multi_frame_eval))
    if trainer.is_world_process_zero():
        (output_dir / "eval_results.json").write_text(json.dumps(results, indent=2, default=float))
        print(_format_results(results, output_dir))
    if hub is not None:
        hub.push_model(output_dir, commit_message="LG-CAV-MAE fine-tuning: final model")
    return output_dir


def evaluate_frames(trainer, eval_dataset, problem_type: str, multi_frame: bool = True) -> dict[str, Any]:
    """Middle-frame metrics (``trainer.evaluate``) and, unless the model ignores images, the official
    multi-frame metrics: every frame of every clip predicted, softmax/sigmoid outputs averaged per clip."""
    from eval.classification import classification_metrics
    from training.data import FrameExpandedDataset

    results = {"single_frame": _strip(trainer.evaluate(eval_dataset, metric_key_prefix="eval"), "eval_")}
    audio_only = trainer.model.config.classifier_mode in ("audio", "missing_visual")
    if multi_frame and not audio_only:
        frames = FrameExpandedDataset(eval_dataset)
        output = trainer.predict(frames, metric_key_prefix="multi_frame")
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        scores = multi_frame_scores(np.asarray(logits), frames.clip_of_row, problem_type)
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


def _is_main_process() -> bool:
    """Rank 0 of a launch (``accelerate launch`` / torchrun set RANK), before Trainer sets up distribution."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


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
    lines.append(f"  model: {output_dir}, results: {output_dir / 'eval_results.json'}")
    return "\n".join(lines)
