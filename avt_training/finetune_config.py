"""Every option of ``avt finetune``: the ``FinetuneConfig`` dataclass is the Python API and the command line.

Defaults are the official CAV-MAE VGGSound fine-tuning recipe (``src/run_cavmae_ft.py``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Literal

from avt_core.errors import UsageError
from avt_core.launch import default_num_workers
from avt_training.options import (
    HUB,
    HubOptions,
    MixedPrecision,
    adam_beta_option,
    logging_steps_option,
    lr_decay_gamma_option,
    lr_decay_start_option,
    lr_decay_step_option,
    max_steps_option,
    num_workers_option,
    option,
    optional_int,
    optional_str,
    options_from_any,
    overwrite_option,
    report_to_option,
    require_in_range,
    require_model_sources,
    require_non_negative,
    require_positive,
    require_trackers,
    save_total_limit_option,
    shuffle_window_option,
    train_split_option,
)

ProblemType = Literal["auto", "single_label_classification", "multi_label_classification"]
ClassifierMode = Literal["audio_visual", "audio", "visual", "missing_visual", "missing_audio"]
EvalStrategy = Literal["no", "steps", "epoch"]
AUTO_EVAL_SPLIT = "auto"  # --eval-split default: a split that exists (test, else an --eval-dataset's train)

DATA = "data and model"
OPTIM = "optimisation (defaults: official VGGSound fine-tuning)"
AUG = "augmentation (official fine-tuning values; 0 turns one off)"
RUN = "running, checkpoints and logging"
GROUPS = (DATA, OPTIM, AUG, RUN, HUB)


@dataclass
class FinetuneConfig(HubOptions):
    """Every option of ``avt finetune``; the command line is generated from these fields."""

    model_name_or_path: str = option(
        flag="--model",
        aliases=("--model-name-or-path",),
        group=DATA,
        help="pretrained LG-CAV-MAE folder or Hub id (ours, or an official CAV-MAE checkpoint after conversion); "
        "a new classification head is initialised",
    )
    datasets: list[str] = option(
        flag="--dataset",
        metavar="DIR_OR_ID[:CONFIG]",
        group=DATA,
        help="labelled triplet dataset(s) (a `labels` column): a folder, Hub id or fsspec URL (s3://...), read in "
        "place; repeat to concatenate",
    )
    output_dir: str = option(group=RUN, help="folder for checkpoints, the final model and eval_results.json")
    train_split: str = train_split_option(DATA)
    eval_datasets: list[str] | None = option(
        None,
        flag="--eval-dataset",
        metavar="DIR_OR_ID[:CONFIG]",
        group=DATA,
        help="dataset(s) to evaluate on (default: the training datasets, --eval-split)",
    )
    eval_split: str | None = option(
        AUTO_EVAL_SPLIT,
        type=optional_str,
        group=DATA,
        help="evaluation split ('none' to skip evaluation). auto: 'test' where it exists, else the --eval-dataset's "
        "'train' split (an `avt generate` output's only split), else no evaluation (said); a split named here "
        "must exist in --eval-dataset",
    )
    label_csv: str | None = option(
        None,
        group=DATA,
        help="class list as the official CSV `index,mid,display_name` (labels may be mids or display names); "
        "the model records both (config id2label + class_mids), so `avt evaluate classification` maps either. "
        "Default: the class list the training data's manifest records (`avt generate --label-csv`, or every "
        "split's labels of VGGSound's csv), else the sorted labels found in the training data. Labels not in the "
        "list are ignored (a clip keeps "
        "its known ones; one without any is skipped), counted and reported once per split in the log and "
        "eval_results.json",
    )
    max_unknown_label_fraction: float = option(
        0.5,
        group=DATA,
        help="stop before training when more than this fraction of the training (or eval) clips' labels are not "
        "in the class list: a wrong --label-csv would otherwise train on a few clips; 1 accepts any (fine-tuning "
        "on a subset of the classes)",
    )
    problem_type: ProblemType = option(
        "auto",
        group=DATA,
        help="auto: multi-label if any training clip has several labels (AudioSet), else single-label (VGGSound)",
    )
    classifier_mode: ClassifierMode = option(
        "audio_visual",
        group=DATA,
        help="which stream the head sees (official modes: multimodal, audioonly, videoonly, missing-modality)",
    )
    per_device_batch_size: int = option(48, group=OPTIM, help="training clips per device and step")
    per_device_eval_batch_size: int = option(48, group=OPTIM, help="evaluation clips per device")
    gradient_accumulation_steps: int = option(1, group=OPTIM, help="passes per optimizer step")
    learning_rate: float = option(1e-4, group=OPTIM, help="Adam lr of the pretrained weights")
    head_lr_multiplier: float = option(
        10.0,
        group=OPTIM,
        help="the new head's lr is learning-rate x this (official: 10 VGGSound, 100 AudioSet-20K, 50 AudioSet-2M)",
    )
    adam_beta1: float = adam_beta_option(1, 0.95, OPTIM)
    adam_beta2: float = adam_beta_option(2, 0.999, OPTIM)
    weight_decay: float = option(5e-7, group=OPTIM, help="Adam (coupled) weight decay, all weights")
    num_epochs: float = option(10, group=OPTIM, help="training epochs")
    max_steps: int | None = max_steps_option(OPTIM)
    lr_scheduler: str = option(
        "multistep",
        group=OPTIM,
        help="multistep (official: x gamma every --lr-decay-step-epochs from --lr-decay-start-epoch) or any "
        "transformers scheduler name (cosine, linear, constant_with_warmup, ...)",
    )
    lr_decay_start_epoch: int = lr_decay_start_option(2, OPTIM)
    lr_decay_step_epochs: int = lr_decay_step_option(1, OPTIM)
    lr_decay_gamma: float = lr_decay_gamma_option(0.5, OPTIM)
    warmup_steps: int = option(0, group=OPTIM, help="warmup steps (transformers schedulers only)")
    max_grad_norm: float = option(0.0, group=OPTIM, help="gradient clipping (0: off, as official)")
    mixed_precision: MixedPrecision = option("no", group=OPTIM, help="autocast precision")
    balanced_sampling: bool = option(
        False,
        group=OPTIM,
        help="official class-balanced sampling (bal=bal): each epoch draws as many clips as the training set "
        "holds, with replacement, clip weight = sum over its labels of 1000/(class count + 0.01); the official "
        "AudioSet-2M and VGGSound recipes use it, AudioSet-20K does not; seeded by --seed, works with "
        "multi-process (accelerate) runs",
    )
    seed: int = option(0, group=OPTIM, help="seed of initialisation, data order and augmentation")
    freq_mask: int = option(48, group=AUG, help="SpecAugment frequency mask width (torchaudio)")
    time_mask: int = option(192, group=AUG, help="SpecAugment time mask width (torchaudio)")
    mixup: float = option(
        0.5,
        group=AUG,
        help="probability of mixing a clip with a random other one (audio waveform, image and labels, "
        "lambda ~ Beta(10, 10))",
    )
    label_smoothing: float = option(
        0.1, group=AUG, help="official smoothing: negatives get ls/K, positives are set to 1-ls"
    )
    audio_noise: bool = option(True, group=AUG, help="turn off the fbank noise + random circular time shift")
    multi_frame_eval: bool = option(
        True, group=AUG, help="skip the final multi-frame evaluation (every frame of every clip)"
    )
    num_workers: int | None = num_workers_option("DataLoader workers decoding clips, per process", RUN)
    shuffle_window: int = shuffle_window_option(RUN, also="mixup partners come from the same window")
    logging_steps: int = logging_steps_option(RUN)
    eval_strategy: EvalStrategy = option("epoch", group=RUN, help="when to evaluate")
    eval_steps: int | None = option(
        None,
        type=optional_int,
        group=RUN,
        help="with --eval-strategy steps: evaluate every N optimizer steps (default: --logging-steps, as transformers)",
    )
    save_strategy: EvalStrategy = option("epoch", group=RUN, help="when to checkpoint")
    save_steps: int | None = option(
        None,
        type=optional_int,
        group=RUN,
        help="with --save-strategy steps: checkpoint every N optimizer steps (default: 500, as transformers)",
    )
    save_total_limit: int | None = save_total_limit_option(RUN)
    gradient_checkpointing: bool = option(
        False,
        group=RUN,
        help="recompute each encoder layer's activations in the backward pass: less memory, ~30%% slower",
    )
    torch_compile: bool = option(
        False, group=RUN, help="compile the model with torch.compile (TrainingArguments.torch_compile)"
    )
    report_to: list[str] = report_to_option(RUN)
    run_name: str | None = option(
        None, group=RUN, help="the run's name in the trackers (default: each tracker's own, as transformers)"
    )
    trainer_args: list[str] = option(
        [],
        flag="--trainer-arg",
        metavar="NAME=VALUE",
        group=RUN,
        help="any other transformers.TrainingArguments field, as its --NAME VALUE in a transformers script "
        "(repeatable; lists comma-separated), e.g. --trainer-arg eval_on_start=true --trainer-arg "
        "dataloader_persistent_workers=true; checked against the dataclass before anything loads",
    )
    resume: str | None = option(
        None,
        metavar="latest|PATH",
        group=RUN,
        help="resume a Trainer checkpoint (latest: newest in --output-dir, starting fresh if there is none)",
    )
    overwrite: bool = overwrite_option(RUN, also=" (its checkpoints too)")

    def __post_init__(self) -> None:
        if self.num_workers is None:  # the one default of every command's --num-workers
            self.num_workers = default_num_workers()
        require_positive(
            self,
            "per_device_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "num_epochs",
            "max_steps",
            "logging_steps",
            "save_total_limit",
            "shuffle_window",
            "learning_rate",
        )
        require_non_negative(self, "num_workers", "warmup_steps")
        require_positive(self, "eval_steps", "save_steps")
        for steps, strategy in (("eval_steps", "eval_strategy"), ("save_steps", "save_strategy")):
            if getattr(self, steps) and getattr(self, strategy) != "steps":
                raise UsageError(
                    f"--{steps.replace('_', '-')} needs --{strategy.replace('_', '-')} steps "
                    f"(it is {getattr(self, strategy)!r})"
                )
        require_in_range(self, "max_unknown_label_fraction", 0.0, 1.0)
        require_in_range(self, "mixup", 0.0, 1.0)  # a probability
        require_in_range(self, "label_smoothing", 0.0, 1.0, high_inclusive=False)  # 1 leaves no positive
        require_trackers(self.report_to)
        require_model_sources(self, "model_name_or_path")

    @classmethod
    def from_any(cls, value: FinetuneConfig | argparse.Namespace | dict[str, Any]) -> FinetuneConfig:
        return options_from_any(cls, value)
