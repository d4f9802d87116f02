"""Every option of ``avt pretrain``: the ``PretrainConfig`` dataclass is the Python API and the command line.

Loss: ``L = L_rec(audio) + L_rec(visual) + λ1 L_c(audio-visual) + λ2 (L_audio-text + L_visual-text)``; λ1 and λ2 are
``contrastive_weight`` and ``text_contrastive_weight``, the names of the model config's fields they set. Those
options, the reconstruction weight and the temperatures are not declared here: ``LossOptions`` is generated from the
model package's loss settings (``avt_training.loss_options``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Literal

from avt_core.errors import UsageError
from avt_core.launch import default_num_workers
from avt_training.loss_options import loss_options_dataclass, require_loss_settings
from avt_training.options import (
    HUB,
    HubOptions,
    MixedPrecision,
    adam_beta_option,
    eval_split_option,
    logging_steps_option,
    lr_decay_gamma_option,
    lr_decay_start_option,
    lr_decay_step_option,
    max_steps_option,
    num_workers_option,
    option,
    optional_int,
    options_from_any,
    overwrite_option,
    report_to_option,
    require_model_sources,
    require_non_negative,
    require_positive,
    require_trackers,
    save_total_limit_option,
    shuffle_window_option,
    train_split_option,
)

ContrastiveScope = Literal["global", "per-process"]
TextSource = Literal["caption", "modality"]
SchedulerName = Literal["multistep", "cosine", "constant"]

DATA = "data"
MODEL = "model initialisation (default: random init of the paper's architecture)"
LOSS = "loss"
OPTIM = "optimisation (defaults: official CAV-MAE recipe, LG-CAV-MAE paper lr)"
RUN = "checkpoints and logging"
GROUPS = (DATA, MODEL, LOSS, OPTIM, RUN, HUB)


# The weights and temperatures of the loss: the model config's fields, declared once in the model package.
LossOptions = loss_options_dataclass(LOSS)


@dataclass
class PretrainConfig(HubOptions, LossOptions):
    """Every option of ``avt pretrain``; the command line is generated from these fields (the loss weights and
    temperatures from the model config's loss settings, ``LossOptions``)."""

    datasets: list[str] = option(
        flag="--dataset",
        metavar="DIR_OR_ID[:CONFIG]",
        group=DATA,
        help="triplet dataset: a local `avt generate` output folder, a Hub dataset id or an fsspec URL (s3://..., "
        "credentials and endpoint from the environment, e.g. FSSPEC_S3_ENDPOINT_URL), optionally with a config "
        "(top10/top30/top50/random30/...), read in place (no copy in the datasets cache). Repeat to concatenate "
        "(paper's best: VGGSound all + Kinetics top30).",
    )
    output_dir: str = option(
        group=RUN,
        help="folder for the final model (save_pretrained + processor), checkpoints/, runs/ (with --report-to "
        "tensorboard), metrics.jsonl, loss_curve.png, train_summary.json, the model card README.md and best/ (with "
        "--eval-dataset)",
    )
    train_split: str = train_split_option(DATA, deprecated=("--dataset-split",))
    eval_datasets: list[str] = option(
        [],
        flag="--eval-dataset",
        metavar="DIR_OR_ID[:CONFIG]",
        group=DATA,
        help="validation triplets (same syntax as --dataset, repeatable), evaluated after every epoch as the "
        "official loop does: middle frame, no audio noise, still 75%% masking with masks seeded per clip. Logs "
        "eval_loss and every term of the loss as training logs it, prefixed eval_ (eval_loss_contrastive, "
        "eval_contrastive_accuracy, ...) and keeps the lowest eval_loss model in OUTPUT_DIR/best/ "
        "(save_pretrained + processor)",
    )
    eval_split: str = eval_split_option(DATA)
    eval_steps: int | None = option(
        None,
        type=optional_int,
        group=DATA,
        help="also evaluate every N optimizer steps (default: only at the end of each epoch and of training; "
        "needs --eval-dataset)",
    )
    per_device_eval_batch_size: int | None = option(
        None,
        type=optional_int,
        group=DATA,
        deprecated=("--eval-batch-size",),
        help="clips per process and eval batch (default: --per-device-batch-size); the contrastive terms of an "
        "eval batch use its clips as negatives, so eval losses depend on it (not on the number of processes when "
        "the eval set is a multiple of it)",
    )
    audio_noise: bool = option(
        True,
        group=DATA,
        help="turn off the official pretraining fbank augmentation (uniform noise + random circular time shift)",
    )
    num_workers: int | None = num_workers_option(
        "DataLoader worker processes per training process decoding audio/frames (official: 32)", DATA
    )
    shuffle_window: int = shuffle_window_option(DATA, also="larger = closer to a full permutation")
    model_name_or_path: str | None = option(
        None,
        group=MODEL,
        help="start from an LG-CAV-MAE checkpoint: a folder or Hub id (e.g. an official CAV-MAE checkpoint "
        "converted with `python -m modeling_lgcavmae.convert_cavmae_checkpoint`)",
    )
    config_name_or_path: str | None = option(
        None,
        group=MODEL,
        help="random init with this LGCavMaeConfig (folder or Hub id with a config.json); text_embed_dim follows "
        "the dataset",
    )
    init_from_vitmae: str | None = option(
        None,
        metavar="DIR_OR_ID",
        group=MODEL,
        help="initialise the encoders and decoder from ImageNet MAE weights (e.g. facebook/vit-mae-base), the "
        "official CAV-MAE initialisation",
    )
    text_source: TextSource = option(
        "caption",
        group=LOSS,
        help="the texts of the audio-text and visual-text terms: caption (the paper: the chosen frame caption's "
        "CLAP embedding, text_embedding, for both) or modality (a research option: L_a2t contrasts the audio "
        "caption's embedding, audio_text_embedding, L_v2t the visual caption's, visual_text_embedding; both "
        "columns are needed, e.g. from `avt generate --audio-captioner`)",
    )
    contrastive_scope: ContrastiveScope = option(
        "global",
        group=LOSS,
        help="negatives from the global batch (all-gather with gradients) or from each process's batch "
        "(official); see below",
    )
    per_device_batch_size: int = option(
        30,
        group=OPTIM,
        help="clips per process and step (official CAV-MAE-Scale+: 30 per GPU x 4 GPUs = 120)",
    )
    gradient_accumulation_steps: int = option(
        1,
        group=OPTIM,
        help="forward/backward passes per optimizer step (on contrastive negatives, see below)",
    )
    learning_rate: float = option(
        5e-4,
        group=OPTIM,
        help="Adam learning rate (LG-CAV-MAE paper: 5e-4; official CAV-MAE: 5e-5 base, 1e-4 Scale+, 2e-4 Scale++)",
    )
    adam_beta1: float = adam_beta_option(1, 0.95, OPTIM)
    adam_beta2: float = adam_beta_option(2, 0.999, OPTIM)
    weight_decay: float = option(
        5e-7,
        group=OPTIM,
        help="Adam (coupled) weight decay on all trainable parameters; the frozen position tables are excluded",
    )
    num_epochs: int = option(25, group=OPTIM, help="training epochs (official 25)")
    max_steps: int | None = max_steps_option(OPTIM)
    lr_scheduler: SchedulerName = option(
        "multistep",
        group=OPTIM,
        help="multistep: official, lr x gamma every --lr-decay-step-epochs epochs from --lr-decay-start-epoch, "
        "stepped per epoch; cosine / constant: per optimizer step, with --warmup-steps",
    )
    lr_decay_start_epoch: int = lr_decay_start_option(10, OPTIM)
    lr_decay_step_epochs: int = lr_decay_step_option(5, OPTIM)
    lr_decay_gamma: float = lr_decay_gamma_option(0.5, OPTIM)
    warmup_steps: int = option(0, group=OPTIM, help="linear warmup steps (cosine/constant only)")
    max_grad_norm: float | None = option(
        None, group=OPTIM, help="clip the gradient norm to this value (official: no clipping)"
    )
    mixed_precision: MixedPrecision | None = option(
        None,
        group=OPTIM,
        help="autocast precision (bf16 recommended on GPUs that support it); default: what `accelerate launch` / "
        "`accelerate config` says, else no",
    )
    seed: int = option(0, group=OPTIM, help="seed of the data order, augmentations, masks and initialisation")
    save_steps: int | None = option(
        1000,
        type=optional_int,
        group=RUN,
        deprecated=("--checkpoint-steps",),
        help="save the full training state (model, optimizer, RNG, loop state) every N optimizer steps (0: only at "
        "the end)",
    )
    save_total_limit: int | None = save_total_limit_option(RUN, deprecated=("--checkpoints-total-limit",))
    resume: str | None = option(
        None,
        metavar="latest|PATH",
        group=RUN,
        help="continue exactly from a checkpoint (same data order, optimizer, scheduler, RNG): `latest` picks the "
        "newest in --output-dir and starts fresh if there is none",
    )
    overwrite: bool = overwrite_option(RUN, also=" (its checkpoints too)")
    logging_steps: int = logging_steps_option(RUN)
    report_to: list[str] = report_to_option(
        RUN, also="; they get the loss terms, contrastive accuracy, lr, samples/s (metrics.jsonl always)"
    )
    run_name: str = option("lgcavmae-pretrain", group=RUN, help="tracker run / project name")

    def __post_init__(self) -> None:
        if self.num_workers is None:  # the one default of every command's --num-workers
            self.num_workers = default_num_workers()
        require_positive(
            self,
            "per_device_batch_size",
            "gradient_accumulation_steps",
            "num_epochs",
            "max_steps",
            "eval_steps",
            "per_device_eval_batch_size",
            "save_steps",
            "save_total_limit",
            "logging_steps",
            "shuffle_window",
            "learning_rate",
        )
        require_non_negative(self, "num_workers", "warmup_steps")
        require_loss_settings(self)
        require_trackers(self.report_to)
        require_model_sources(self, "model_name_or_path", "config_name_or_path", "init_from_vitmae")
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
