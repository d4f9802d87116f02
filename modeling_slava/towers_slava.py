"""The three frozen pretrained towers of SLAVA, loaded through transformers (and msclap as an option).

They live outside the model's module tree (see `SlavaModel.towers`): never trained, never saved with the
projections, never wrapped by DDP. Features are the towers' pooled outputs *before* their own projections:
CLIP's post-layernorm CLS state per frame, CLIP's end-of-text state per caption, CLAP's pooled HTSAT state per
audio window (msclap: HTSAT's `embedding`).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)


class SlavaTowers(nn.Module):
    """Frozen CLIP vision, CLIP text and CLAP audio encoders, always in eval mode, run without gradients."""

    def __init__(self, vision: nn.Module, text: nn.Module, audio: nn.Module, audio_backend: str = "clap"):
        super().__init__()
        self.vision = vision
        self.text = text
        self.audio = audio
        self.audio_backend = audio_backend
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> SlavaTowers:
        """Frozen towers stay in eval mode (no dropout, fixed norms) whatever the caller asks."""
        return super().train(False)

    @torch.no_grad()
    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`[N, 3, H, W]` frames -> `[N, vision_hidden]` pooled CLS states."""
        dtype = next(self.vision.parameters()).dtype
        return self.vision(pixel_values=pixel_values.to(dtype)).pooler_output

    @torch.no_grad()
    def text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`[N, L]` token ids -> `[N, text_hidden]` end-of-text states."""
        return self.text(input_ids=input_ids, attention_mask=attention_mask).pooler_output

    @torch.no_grad()
    def audio_features(self, audio_values: torch.Tensor) -> torch.Tensor:
        """One audio window per row -> `[N, audio_hidden]`.

        CLAP: `[N, 1, frames, mels]` log-mel input; `is_longer` is False for every window (each is at most the
        window length), which keeps fused checkpoints on their deterministic global branch. msclap: `[N, samples]`.
        """
        dtype = next(self.audio.parameters()).dtype
        if self.audio_backend == "msclap":
            return self.audio(audio_values.to(dtype))["embedding"]
        is_longer = torch.zeros((audio_values.shape[0], 1), dtype=torch.bool, device=audio_values.device)
        return self.audio(input_features=audio_values.to(dtype), is_longer=is_longer).pooler_output


def _load_clip(name_or_path: str, revision: str | None, dtype: Any = None):
    from transformers import CLIPModel

    return CLIPModel.from_pretrained(name_or_path, revision=revision, dtype=dtype or torch.float32)


def _load_clap_audio(name_or_path: str, revision: str | None, dtype: Any = None) -> tuple[nn.Module, dict]:
    from transformers import ClapFeatureExtractor, ClapModel

    clap = ClapModel.from_pretrained(name_or_path, revision=revision, dtype=dtype or torch.float32)
    extractor = ClapFeatureExtractor.from_pretrained(name_or_path, revision=revision)
    audio_config = clap.config.audio_config
    info = {
        "hidden_size": int(audio_config.hidden_size),
        "sampling_rate": int(extractor.sampling_rate),
        "window_seconds": float(extractor.nb_max_samples) / float(extractor.sampling_rate),
        "config": audio_config.to_dict(),
    }
    return clap.audio_model, info


def _load_msclap_audio(weights: str | None) -> tuple[nn.Module, dict]:
    """msclap's HTSAT (before its projection), through the checked loader of `msclap_slava` (key check,
    transformers-5 fixes, tiny configs): the same one with or without the `avt` package installed."""
    from .msclap_slava import load_msclap_wrapper

    wrapper = load_msclap_wrapper(weights)
    args = wrapper.args
    info = {
        "hidden_size": int(args.out_emb),
        "sampling_rate": int(args.sampling_rate),
        "window_seconds": float(args.duration),
        "config": {k: v for k, v in vars(args).items() if isinstance(v, str | int | float | bool)},
    }
    return wrapper.clap.audio_encoder.base.float(), info


def load_towers(config, dtype: Any = None) -> tuple[SlavaTowers, dict[str, Any]]:
    """The towers a `SlavaConfig` names, at its recorded revisions; returns `(towers, facts)` where `facts`
    holds each tower's pooled width, its embedded config, the audio window settings and CLIP's projections."""
    references = config.tower_references()
    for tower, (name, _) in references.items():
        if not name and not (tower == "audio" and config.audio_backend == "msclap"):
            raise ValueError(f"the SLAVA config names no {tower} tower (`{tower}_model_name_or_path`)")
    vision_clip = _load_clip(*references["vision"], dtype=dtype)
    same_clip = references["text"] == references["vision"]
    text_clip = vision_clip if same_clip else _load_clip(*references["text"], dtype=dtype)
    if config.audio_backend == "msclap":
        audio, audio_info = _load_msclap_audio(references["audio"][0])
        if dtype is not None:
            audio = audio.to(dtype)
    else:
        audio, audio_info = _load_clap_audio(*references["audio"], dtype=dtype)
    facts = {
        "vision_hidden_size": int(vision_clip.config.vision_config.hidden_size),
        "text_hidden_size": int(text_clip.config.text_config.hidden_size),
        "audio_hidden_size": audio_info["hidden_size"],
        "vision_tower_config": vision_clip.config.vision_config.to_dict(),
        "text_tower_config": text_clip.config.text_config.to_dict(),
        "audio_tower_config": audio_info["config"],
        "audio_sampling_rate": audio_info["sampling_rate"],
        "audio_window_seconds": audio_info["window_seconds"],
        # CLIP's own projections: SLAVA fine-tunes them from there (used when a new model is initialised)
        "clip_visual_projection": vision_clip.visual_projection.weight.detach().clone(),
        "clip_text_projection": text_clip.text_projection.weight.detach().clone(),
    }
    towers = SlavaTowers(vision_clip.vision_model, text_clip.text_model, audio, config.audio_backend)
    logger.info("loaded SLAVA towers: %s", {k: v[0] for k, v in references.items()})
    return towers, facts


__all__ = ["SlavaTowers", "load_towers"]
