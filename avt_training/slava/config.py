"""Every option of `avt pretrain-slava`: the `SlavaPretrainConfig` dataclass is the Python API and the command line
(`avt_training.options.add_options` builds the arguments from the fields)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from avt_core.errors import UsageError
from avt_core.launch import default_num_workers
from avt_training.options import (
    HUB,
    HubOptions,
    adam_beta_option,
    eval_split_option,
    logging_steps_option,
    max_steps_option,
    num_workers_option,
    option,
    optional_str,
    options_from_any,
    overwrite_option,
    report_to_option,
    require_model_sources,
    require_non_negative,
    require_positive,
    require_trackers,
    train_split_option,
)

BEST_DIR = "best"  # save_pretrained of the lowest validation loss model
FEATURE_CACHE_DIR = "feature_cache"  # default cache folder inside the output folder

Variant = Literal["a&v", "av", "av+avloss", "audioclip", "wav2clip"]
DATA = "data"
MODEL = "model (the towers are frozen; only the projections and the temperature train)"
OPTIM = "optimisation"
CACHE = "feature cache"
RUN = "output and logging"
GROUPS = (DATA, MODEL, OPTIM, CACHE, RUN, HUB)


@dataclass
class SlavaPretrainConfig(HubOptions):
    """Every option of `avt pretrain-slava`; the command line is generated from these fields."""

    datasets: list[str] = option(
        flag="--dataset",
        metavar="DIR_OR_ID[:CONFIG]",
        group=DATA,
        help="triplet dataset (an `avt generate` output folder or a Hub dataset id, optionally with a config such "
        "as top30); repeat to concatenate. Needs clip_id, audio, frames and a caption column",
    )
    output_dir: str = option(
        group=RUN,
        help="folder for the final model (save_pretrained: projections + tower references), best/, "
        "feature_cache/, metrics.jsonl, train_summary.json and runs/ (with --report-to tensorboard)",
    )
    train_split: str = train_split_option(DATA, deprecated=("--dataset-split",))
    eval_datasets: list[str] = option(
        [],
        flag="--eval-dataset",
        metavar="DIR_OR_ID[:CONFIG]",
        group=DATA,
        help="validation triplets (repeatable); after every epoch the variant's loss on them is logged as eval_loss "
        "and the lowest-loss model of the last stage is saved in OUTPUT_DIR/best/ (SLAVA's model selection)",
    )
    eval_split: str = eval_split_option(DATA)
    num_workers: int | None = num_workers_option(
        "DataLoader workers decoding clips for feature extraction, per process", DATA
    )
    variant: Variant = option("a&v", group=MODEL, help="training recipe, see below")
    vision_model: str = option(
        "openai/clip-vit-base-patch32",
        group=MODEL,
        help="CLIP checkpoint (Hub id or folder) whose vision tower encodes every frame (paper: ViT-B/32)",
    )
    text_model: str | None = option(
        None, group=MODEL, help="CLIP checkpoint of the text tower (default: --vision-model)"
    )
    audio_model: str | None = option(
        "laion/clap-htsat-unfused",
        type=optional_str,
        group=MODEL,
        help="audio tower: a transformers CLAP checkpoint (Hub id or folder), or with --audio-backend msclap a "
        "CLAP_weights_2023.pth file or folder ('none': msclap downloads its 2023 weights)",
    )
    audio_backend: Literal["clap", "msclap"] = option(
        "clap",
        group=MODEL,
        help="clap: transformers ClapModel (10 s windows at 48 kHz); msclap: Microsoft CLAP 2023's HTSAT (7 s "
        "windows at 44.1 kHz)",
    )
    model_name_or_path: str | None = option(
        None,
        group=MODEL,
        help="continue from a SLAVA checkpoint (its towers and projections); the tower options are then ignored",
    )
    projection_dim: int = option(512, group=MODEL, help="shared embedding size (paper: 512)")
    temperature: float = option(0.07, group=MODEL, help="initial InfoNCE temperature (CLIP's)")
    fixed_temperature: bool = option(
        False, group=MODEL, help="keep the temperature fixed instead of learning it"
    )
    init_from_clip_projections: bool = option(
        True,
        group=MODEL,
        help="initialise the visual and text projections randomly instead of from CLIP's own (which are used "
        "when --projection-dim equals CLIP's)",
    )
    wav2clip_stage1_fraction: float = option(
        0.5, group=MODEL, help="wav2clip: share of the optimizer steps spent in stage 1 (visual-text)"
    )
    wav2clip_text_projection: Literal["frozen", "trainable"] = option(
        "frozen", group=MODEL, help="wav2clip: whether stage 2 (audio-text) may change the text projection"
    )
    per_device_batch_size: int = option(
        256, group=OPTIM, help="clips per process and step (negatives: x number of processes)"
    )
    learning_rate: float = option(1e-4, group=OPTIM, help="AdamW peak learning rate")
    weight_decay: float = option(
        0.1,
        group=OPTIM,
        help="AdamW decoupled weight decay on the projection weights (not on biases or the temperature)",
    )
    adam_beta1: float = adam_beta_option(1, 0.9, OPTIM, optimizer="AdamW", official=False)
    adam_beta2: float = adam_beta_option(2, 0.999, OPTIM, optimizer="AdamW", official=False)
    num_epochs: int = option(30, group=OPTIM, help="training epochs (all stages together)")
    max_steps: int | None = max_steps_option(OPTIM)
    warmup_steps: int = option(0, group=OPTIM, help="linear warmup steps of each stage")
    lr_scheduler: Literal["cosine", "constant"] = option(
        "cosine", group=OPTIM, help="learning-rate schedule of each stage"
    )
    seed: int = option(0, group=OPTIM, help="seed of the initialisation, data order and caption draws")
    feature_cache_dir: str | None = option(
        None,
        group=CACHE,
        help="where the frozen-tower features are cached (default: OUTPUT_DIR/feature_cache); share one between "
        "runs and variants on the same towers",
    )
    feature_batch_size: int = option(
        32,
        group=CACHE,
        help="clips per frozen-tower forward pass while extracting features (inference, once per clip: a "
        "batch of its own, not --per-device-batch-size, which is the training batch of the projections)",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = option(
        "float32",
        group=CACHE,
        deprecated=("--tower-dtype",),
        help="dtype of the frozen towers while extracting features (bfloat16 halves GPU time and memory); the "
        "name is transformers 5's from_pretrained(dtype=), as `avt generate --dtype`",
    )
    overwrite: bool = overwrite_option(RUN, also="; its default feature cache is kept and reused")
    logging_steps: int = logging_steps_option(RUN)
    report_to: list[str] = report_to_option(RUN)
    run_name: str = option("slava-pretrain", group=RUN, help="tracker run / project name")
    progress: bool = option(True, group=RUN, help="hide progress bars")

    def __post_init__(self) -> None:
        if self.num_workers is None:  # the one default of every command's --num-workers
            self.num_workers = default_num_workers()
        require_positive(
            self, "per_device_batch_size", "num_epochs", "max_steps", "projection_dim", "temperature",
            "feature_batch_size", "logging_steps", "learning_rate",
        )  # fmt: skip
        require_non_negative(self, "num_workers", "warmup_steps", "weight_decay")
        require_trackers(self.report_to)
        require_model_sources(self, "vision_model", "text_model", "model_name_or_path")
        if self.audio_backend == "clap":
            require_model_sources(self, "audio_model")
        if not 0.0 < self.wav2clip_stage1_fraction < 1.0:
            raise UsageError(
                f"--wav2clip-stage1-fraction must be in (0, 1), got {self.wav2clip_stage1_fraction}"
            )
        cache = Path(self.feature_cache_dir).resolve() if self.feature_cache_dir else None
        if self.push_to_hub and cache == Path(self.output_dir).resolve():
            raise UsageError(
                "with --push-to-hub, --feature-cache-dir must not be --output-dir itself (the push leaves the "
                "feature cache out, so it needs a folder of its own)"
            )
        if self.hub_strategy == "every_save" and self.push_to_hub and not self.eval_datasets:
            raise UsageError(
                "--hub-strategy every_save uploads best/ after each better validation: it needs --eval-dataset"
            )
        if self.audio_model is None and self.audio_backend == "clap" and not self.model_name_or_path:
            raise UsageError(
                "--audio-model none only applies to --audio-backend msclap (its default weights)"
            )

    @classmethod
    def from_any(
        cls, value: SlavaPretrainConfig | argparse.Namespace | dict[str, Any]
    ) -> SlavaPretrainConfig:
        return options_from_any(cls, value)


__all__ = ["BEST_DIR", "FEATURE_CACHE_DIR", "GROUPS", "SlavaPretrainConfig"]
