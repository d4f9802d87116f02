"""The GPU-hour model: clips per H100-class GPU-hour for each kind of avt step.

One copy, read by ``avt_recipes`` (the paper's tables: how long each step takes) and by the ``--dry-run`` of
``avt generate`` / ``avt pretrain`` / ``avt finetune`` (what one run would cost). It lives in the shared core because
``avt_triplets`` and ``avt_training`` may not import ``avt_recipes``, which sits on top of them.

Throughput per H100-class GPU (bf16), from FLOP counts at an assumed 30 % model-FLOP utilisation (989 dense bf16
TFLOP/s -> ~300 TFLOP/s), capped by what 16 CPU cores decode. FLOPs per item (docs/reproduce.md, "GPU-hours"):

- BLIP-2 OPT-2.7B caption: ~0.8 TFLOP per frame (ViT-g on 257 tokens ~0.5, OPT prefill + ~20 decoded tokens ~0.3)
- LLaVA-1.5-7B caption: ~9 TFLOP per frame (Vicuna-7B prefill of 576 image tokens dominates)
- LG-CAV-MAE pretraining: 0.234 TFLOP per clip forward + backward (75 % masked; measured, FlopCounterMode)
- fine-tuning: 0.397 TFLOP per clip forward + backward (unmasked; measured); inference 0.132
"""

from __future__ import annotations

CLIPS_PER_GPU_HOUR = {
    "generate:blip2": 130_000,  # 10 frames/clip: 300 / 8 TFLOP ~ 37 clips/s (decode: 16 cores x ~5 clips/s)
    "generate:llava": 12_000,  # 300 / 90 TFLOP ~ 3.3 clips/s
    "generate:none": 280_000,  # labelled sets without captions: decode-bound, ~80 clips/s on 16 cores
    "pretrain": 2_000_000,  # ~550 clips/s: compute allows ~1,280, the input pipeline ~60/s per core
    "finetune": 1_300_000,  # ~360 clips/s
    "inference": 3_600_000,  # ~1,000 forward passes/s (multi-frame classification: one per frame)
}


def gpu_hours(kind: str, clips: float) -> float:
    """H100-class GPU-hours of ``clips`` items of a ``kind`` of step (a key of :data:`CLIPS_PER_GPU_HOUR`)."""
    return clips / CLIPS_PER_GPU_HOUR[kind]


__all__ = ["CLIPS_PER_GPU_HOUR", "gpu_hours"]
