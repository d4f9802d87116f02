"""The hyperparameters of the recipes (the paper's, and the tiny CI ones) and the GPU-hour model of their steps.

Sources of the paper values (figures carried over, see docs/reproduce.md for the full list and where we differ):

- LG-CAV-MAE (Ishikawa et al., Interspeech 2025, arXiv 2507.11967) §2: frames at 1 fps over 10 s clips, BLIP-2
  captions (LLaVA-1.5 compared), Microsoft CLAP 2023 scores, best caption per clip, top k % of clips with
  k in {10, 30, 50}, VGGSound + Kinetics-700 top 30 % best; λ1 = λ2 = 0.01; Adam, lr 5e-4.
- CAV-MAE (Gong et al., ICLR 2023) official scripts, where the LG paper follows it: batch 120, 25 epochs, Adam
  (0.95, 0.999), weight decay 5e-7, lr halved every 5 epochs from epoch 10, IN-initial (ImageNet MAE) start; VGGSound
  fine-tuning lr 1e-4 / head x10 / 10 epochs / batch 48 / class-balanced; AudioSet-20K lr 5e-5 / head x100 /
  15 epochs / decay from epoch 5 / batch 36; retrieval on 5 clips per class, middle frame, fp16 autocast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from avt_core.cost_model import CLIPS_PER_GPU_HOUR, gpu_hours
from avt_core.errors import UsageError


@dataclass(frozen=True)
class FinetuneRecipe:
    """One downstream task's fine-tuning options (global batch; split over the GPUs by the recipe)."""

    learning_rate: float
    head_lr_multiplier: float
    num_epochs: float
    lr_decay_start_epoch: int
    global_batch: int
    balanced_sampling: bool
    max_steps: int | None = None


@dataclass(frozen=True)
class Settings:
    """Everything a recipe needs beyond the user's data: models, generation, training and evaluation options."""

    # generation (LG-CAV-MAE §2.3)
    fps: float = 1.0
    clip_seconds: float = 10.0
    shard_size: int = 1000
    generate_workers: int | None = None  # None: avt generate's default (cores per process - 1, at most 8)
    top_k: tuple[int, ...] = (10, 30, 50, 100)  # 100: every clip (no filter), the reference row of Table 3
    random_k: tuple[int, ...] = (30,)
    main_k: int = 30
    # pretraining
    lambda1: float = 0.01
    lambda2: float = 0.01
    lambda2_sweep: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1)  # 0: no text terms, i.e. CAV-MAE
    pretrain_global_batch: int = 120
    pretrain_lr: float = 5e-4
    pretrain_epochs: float = 25
    pretrain_max_steps: int | None = None
    mixed_precision: str | None = "bf16"  # the official code used fp16 autocast + GradScaler
    init_from_vitmae: bool = True  # official IN-initial (ImageNet MAE ViT-B)
    loader_workers: int = 8  # DataLoader workers per process (pretraining and fine-tuning)
    # fine-tuning
    vggsound: FinetuneRecipe = FinetuneRecipe(1e-4, 10.0, 10, 2, 48, balanced_sampling=True)
    audioset: FinetuneRecipe = FinetuneRecipe(5e-5, 100.0, 15, 5, 36, balanced_sampling=False)
    # evaluation
    retrieval_per_class: int = 5
    eval_precision: str = "fp16"  # evaluate --mixed-precision
    eval_batch_size: int = 100
    # offline test mode: tiny models, no progress bars, every step in this process
    tiny: bool = False
    extra_pretrain_args: tuple[str, ...] = field(default_factory=tuple)


PAPER = Settings()

# Small enough that every recipe runs end to end on a 2-core CPU in seconds per step (tests/avt_recipes): the same
# steps and command lines as PAPER, with tiny models, a few optimizer steps and small batches.
TINY = Settings(
    shard_size=16,
    generate_workers=0,
    pretrain_global_batch=2,
    pretrain_lr=1e-3,
    pretrain_max_steps=4,
    mixed_precision=None,
    init_from_vitmae=True,  # a tiny ImageNet-MAE-shaped model, built locally
    loader_workers=0,
    vggsound=FinetuneRecipe(1e-3, 10.0, 1, 2, 8, balanced_sampling=True, max_steps=3),
    audioset=FinetuneRecipe(1e-3, 100.0, 1, 5, 8, balanced_sampling=False, max_steps=3),
    eval_precision="no",
    eval_batch_size=16,
    tiny=True,
    extra_pretrain_args=("--save-steps", "0", "--logging-steps", "2"),
)


def split_batch(global_batch: int, gpus: int, max_per_gpu: int | None = None) -> tuple[int, int]:
    """(per-GPU batch, gradient-accumulation steps) for a global batch on ``gpus`` GPUs holding at most
    ``max_per_gpu`` clips each. Exact when the numbers divide; else rounded up to a slightly larger global batch
    (the recipe says so before running)."""
    if global_batch < 1 or (max_per_gpu is not None and max_per_gpu < 1):
        raise UsageError(f"batch sizes must be positive, got {global_batch} (at most {max_per_gpu} per GPU)")
    per_gpu = math.ceil(global_batch / gpus)
    accumulation = math.ceil(per_gpu / max_per_gpu) if max_per_gpu else 1
    return math.ceil(per_gpu / accumulation), accumulation


# -- GPU-hours: the model lives in avt_core.cost_model (the dry runs of avt generate / pretrain / finetune read it
# too); re-exported here for the recipes.

# Clips per dataset when the input can't be counted (dry runs without data): approximate public sizes.
NOMINAL_CLIPS = {
    "vggsound-train": 183_000,
    "vggsound-test": 15_000,
    "kinetics": 545_000,
    "audioset-20k": 20_000,
    "audioset-eval": 17_249,  # usable AudioSet eval clips in the official CAV-MAE log
}


__all__ = [
    "CLIPS_PER_GPU_HOUR",
    "NOMINAL_CLIPS",
    "PAPER",
    "TINY",
    "FinetuneRecipe",
    "Settings",
    "gpu_hours",
    "split_batch",
]
