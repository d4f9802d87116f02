"""Options of `avt pretrain-slava` (the command line is generated from the same names)."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.options import options_from_any

BEST_DIR = "best"  # save_pretrained of the lowest validation loss model
FEATURE_CACHE_DIR = "feature_cache"  # default cache folder inside the output folder


@dataclass
class SlavaPretrainConfig:
    """Every option of `avt pretrain-slava`."""

    datasets: list[str]
    output_dir: str
    variant: str = "a&v"
    dataset_split: str = "train"
    eval_datasets: list[str] = field(default_factory=list)
    eval_dataset_split: str = "train"
    # towers (a new model) or a SLAVA checkpoint to continue from
    vision_model: str = "openai/clip-vit-base-patch32"
    text_model: str | None = None
    audio_model: str | None = "laion/clap-htsat-unfused"
    audio_backend: str = "clap"
    model_name_or_path: str | None = None
    projection_dim: int = 512
    temperature: float = 0.07
    fixed_temperature: bool = False
    init_from_clip_projections: bool = True
    # Wav2CLIP reference: share of the steps in stage 1 (visual-text), text projection in stage 2
    wav2clip_stage1_fraction: float = 0.5
    wav2clip_text_projection: str = "frozen"
    # optimisation
    per_device_batch_size: int = 256
    learning_rate: float = 1e-4
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    num_epochs: int = 30
    max_steps: int | None = None
    warmup_steps: int = 0
    lr_scheduler: str = "cosine"
    seed: int = 0
    # feature cache
    feature_cache_dir: str | None = None
    feature_batch_size: int = 32
    tower_dtype: str = "float32"
    num_workers: int = 4
    # logging
    logging_steps: int = 10
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    run_name: str = "slava-pretrain"
    progress: bool = True

    @classmethod
    def from_any(cls, value) -> SlavaPretrainConfig:
        return options_from_any(cls, value)


__all__ = ["BEST_DIR", "FEATURE_CACHE_DIR", "SlavaPretrainConfig"]
