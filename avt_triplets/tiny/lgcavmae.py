"""A tiny random-weight LG-CAV-MAE, saved with `save_pretrained`, for tests, the training smoke runs and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_LGCAVMAE_CONFIG: dict[str, Any] = {
    "audio_length": 256,  # 8 x 16 audio patches
    "num_mel_bins": 128,  # what the processor produces
    "image_size": 64,  # 4 x 4 visual patches
    "hidden_size": 32,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_modality_specific_layers": 1,
    "num_shared_layers": 1,
    "decoder_hidden_size": 32,
    "decoder_num_hidden_layers": 1,
    "decoder_num_attention_heads": 2,
    "decoder_intermediate_size": 64,
    "text_embed_dim": 32,
    "text_projection_hidden_size": 32,
}

# Smaller still (8-pixel patches, 32 mel bins, 64 fbank frames) for unit tests that build many models.
MICRO_LGCAVMAE_CONFIG: dict[str, Any] = {
    "audio_length": 64,
    "num_mel_bins": 32,
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 32,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_modality_specific_layers": 1,
    "decoder_hidden_size": 16,
    "decoder_num_hidden_layers": 1,
    "decoder_num_attention_heads": 2,
    "decoder_intermediate_size": 32,
}


def make_tiny_lgcavmae(
    output_dir: str | Path, seed: int = 0, with_processor: bool = True, **config_overrides: Any
) -> Path:
    """Save a tiny `LGCavMaeForPreTraining` (random weights, fixed seed) to `output_dir` and return the path.

    `config_overrides` replace any `LGCavMaeConfig` field, e.g. `text_embed_dim=1024` to match real CLAP embeddings
    or `num_labels=5` for a later classifier. The folder loads with `AutoModelForPreTraining.from_pretrained` after
    `import modeling_lgcavmae`, or with `trust_remote_code=True` without it. With `with_processor`, the matching
    `LGCavMaeProcessor` (same `audio_length` / `image_size`) is saved too, so `AutoProcessor` works on the folder.
    """
    import torch

    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining, LGCavMaeProcessor

    config = LGCavMaeConfig(**{**TINY_LGCAVMAE_CONFIG, **config_overrides})
    torch.manual_seed(seed)
    model = LGCavMaeForPreTraining(config)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    if with_processor:
        LGCavMaeProcessor.from_config(config).save_pretrained(output_dir)
    return output_dir


__all__ = ["MICRO_LGCAVMAE_CONFIG", "TINY_LGCAVMAE_CONFIG", "make_tiny_lgcavmae"]
