"""SLAVA: frozen CLIP (vision, text) and CLAP (audio) towers aligned by training one linear projection each.

Only the projections and the temperature are parameters of the model (what `save_pretrained` writes); the towers
are loaded from the references in the config and kept outside the module tree (`model.towers`), frozen and in eval
mode. Device and dtype moves (`.to`, `.half`, ...) still reach them. Features:

- `get_*_tower_features`: the towers' pooled outputs, averaged over a clip's frames / audio windows (what a feature
  cache stores);
- `project_*`: the trained projections on those;
- `get_audio_features` / `get_visual_features` / `get_text_features`: both, from processor outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_slava import SlavaConfig
from .losses_slava import batch_recipe, slava_loss
from .model_card_slava import render_model_card
from .processing_slava import SlavaProcessor
from .towers_slava import SlavaTowers, load_towers

REMOTE_CODE_AUTO_MAP = {
    "AutoConfig": "configuration_slava.SlavaConfig",
    "AutoModel": "modeling_slava.SlavaModel",
}
# transformers' template card says this; a card without it was written by someone and is kept.
GENERIC_CARD_MARK = "has been automatically generated"
_TOWER_FACT_FIELDS = (
    "vision_hidden_size",
    "text_hidden_size",
    "audio_hidden_size",
    "vision_tower_config",
    "text_tower_config",
    "audio_tower_config",
    "audio_sampling_rate",
    "audio_window_seconds",
)


@dataclass
class SlavaOutput(ModelOutput):
    """Projected embeddings (not normalised), the logit scale and, with `return_loss`, the variant's loss terms.

    Shapes: B clips (or captions), P = `projection_dim`. "model dtype" is the projections' dtype (float32 unless
    loaded otherwise). An embedding whose modality was not given is `None`; so is every loss without `return_loss`.

    Args:
        loss (`[]`, float32): the sum of the batch's terms (`losses_slava.slava_loss`, over L2-normalised embeddings
            in float32).
        loss_audio_visual (`[]`, float32): symmetric InfoNCE between audio and visual embeddings, unweighted; `None`
            when the batch's terms do not include `av`.
        loss_audio_text (`[]`, float32): the same for audio-text (`at`).
        loss_visual_text (`[]`, float32): the same for visual-text (`vt`).
        audio_embeds (`[B, P]`, model dtype): `audio_projection` of the audio tower's window-mean features.
        visual_embeds (`[B, P]`, model dtype): `visual_projection` of the vision tower's frame-mean features.
        text_embeds (`[B, P]`, model dtype): `text_projection` of the text tower's pooled caption features.
        logit_scale (`[]`, model dtype): `1 / temperature`, clamped at `config.max_logit_scale`, that multiplies the
            cosine similarities.
    """

    loss: torch.Tensor | None = None
    loss_audio_visual: torch.Tensor | None = None
    loss_audio_text: torch.Tensor | None = None
    loss_visual_text: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    visual_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None
    logit_scale: torch.Tensor | None = None


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over dim 1 of `[B, N, D]` where `mask` `[B, N]` is True (all of them without a mask)."""
    if mask is None:
        return values.mean(dim=1)
    weights = mask.to(values.dtype).unsqueeze(-1)
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class SlavaPreTrainedModel(PreTrainedModel):
    config: SlavaConfig
    config_class = SlavaConfig
    base_model_prefix = "slava"
    main_input_name = "pixel_values"
    input_modalities = ("audio", "image", "text")
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Projections as CLIP initialises its own (normal, std = in_features^-0.5); temperature at its init value."""
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=module.in_features**-0.5)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, SlavaModel):
            init.constant_(module.logit_scale, math.log(1.0 / self.config.temperature))

    def save_pretrained(self, save_directory, *args, **kwargs):
        """List the SLAVA classes in `auto_map`, so the folder loads with `trust_remote_code` anywhere."""
        if self._auto_class is not None:
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **REMOTE_CODE_AUTO_MAP}
        return super().save_pretrained(save_directory, *args, **kwargs)

    def push_to_hub(self, repo_id: str, *args, training_summary: dict | None = None, **kwargs):
        """`PreTrainedModel.push_to_hub`, then the SLAVA card (towers, variant, usage) in place of transformers'
        generic template; a card already written for the repo is kept."""
        result = super().push_to_hub(repo_id, *args, **kwargs)
        from huggingface_hub import HfApi, ModelCard

        token, revision = kwargs.get("token"), kwargs.get("revision")
        if GENERIC_CARD_MARK in ModelCard.load(repo_id, token=token).content:
            HfApi().upload_file(
                path_or_fileobj=str(render_model_card(self, training_summary, repo_id)).encode(),
                path_in_repo="README.md",
                repo_id=repo_id,
                token=token,
                revision=revision,
                commit_message="Add SLAVA model card",
            )
        return result


class SlavaModel(SlavaPreTrainedModel):
    """Three projections into one shared space plus a CLIP-style temperature; frozen towers attached."""

    def __init__(self, config: SlavaConfig):
        super().__init__(config)
        bias = config.projection_bias
        self.audio_projection = nn.Linear(config.audio_hidden_size, config.projection_dim, bias=bias)
        self.visual_projection = nn.Linear(config.vision_hidden_size, config.projection_dim, bias=bias)
        self.text_projection = nn.Linear(config.text_hidden_size, config.projection_dim, bias=bias)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))
        self.logit_scale.requires_grad_(config.temperature_learnable)
        object.__setattr__(
            self, "_towers", None
        )  # outside the module tree: never saved, trained or DDP-wrapped
        self.post_init()

    # -- towers ------------------------------------------------------------------------------------------------------

    @property
    def towers(self) -> SlavaTowers:
        if self._towers is None:
            raise RuntimeError(
                "the SLAVA towers are not loaded: call `model.load_towers()` (from_pretrained loads them unless "
                "`load_towers=False`)"
            )
        return self._towers

    @property
    def has_towers(self) -> bool:
        return self._towers is not None

    def attach_towers(self, towers: SlavaTowers) -> None:
        object.__setattr__(self, "_towers", towers.to(device=self.logit_scale.device))

    def release_towers(self) -> None:
        """Drop the towers (e.g. once their features are cached); `load_towers()` brings them back."""
        object.__setattr__(self, "_towers", None)

    def load_towers(self, dtype=None) -> SlavaTowers:
        """Load the towers the config names (at their recorded revisions) and attach them."""
        towers, facts = load_towers(self.config, dtype=dtype)
        for field in ("vision_hidden_size", "text_hidden_size", "audio_hidden_size"):
            if facts[field] != getattr(self.config, field):
                raise ValueError(
                    f"the {field.split('_')[0]} tower gives {facts[field]}-d features but the projections expect "
                    f"{getattr(self.config, field)}: the config's tower reference does not match the checkpoint"
                )
        self.attach_towers(towers)
        return towers

    def get_processor(self) -> SlavaProcessor:
        """The towers' own image processor, tokenizer and audio front end, from the config's references."""
        return SlavaProcessor.from_config(self.config)

    @classmethod
    def from_towers(
        cls,
        vision_model_name_or_path: str,
        audio_model_name_or_path: str | None,
        text_model_name_or_path: str | None = None,
        init_from_clip_projections: bool = True,
        **config_kwargs,
    ) -> SlavaModel:
        """A new SLAVA on these towers: tower facts filled into the config, the visual / text projections copied
        from CLIP's own when `projection_dim` equals CLIP's (SLAVA fine-tunes them), the audio one initialised."""
        config = SlavaConfig(
            vision_model_name_or_path=vision_model_name_or_path,
            text_model_name_or_path=text_model_name_or_path,
            audio_model_name_or_path=audio_model_name_or_path,
            **config_kwargs,
        )
        towers, facts = load_towers(config)
        for field in _TOWER_FACT_FIELDS:
            setattr(config, field, facts[field])
        model = cls(config)
        if init_from_clip_projections and not config.projection_bias:
            for name in ("visual", "text"):
                weight = facts[f"clip_{name}_projection"]
                layer = getattr(model, f"{name}_projection")
                if weight.shape == layer.weight.shape:
                    layer.weight.data.copy_(weight)
        model.attach_towers(towers)
        return model

    @classmethod
    def from_pretrained(cls, *args, load_towers: bool = True, **kwargs):
        """`PreTrainedModel.from_pretrained` for the projections, then the towers from the config's references
        (skip them with `load_towers=False`, e.g. to train on cached tower features)."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        # transformers 5 re-creates loaded parameters with requires_grad=True; a fixed temperature stays fixed.
        model.logit_scale.requires_grad_(model.config.temperature_learnable)
        if load_towers:
            model.load_towers(dtype=model.dtype)
        return loaded

    def _apply(self, fn, recurse: bool = True):
        """Device and dtype moves reach the towers too, although they are not submodules."""
        super()._apply(fn, recurse)
        if self._towers is not None:
            self._towers._apply(fn)
        return self

    # -- features ----------------------------------------------------------------------------------------------------

    def get_audio_tower_features(
        self, audio_values: torch.Tensor, windows_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`[B, W, ...]` windows (or `[B, ...]`, one window per clip) -> `[B, audio_hidden]` window mean."""
        per_window_ndim = 3 if self.config.audio_backend == "clap" else 1
        if audio_values.dim() == per_window_ndim + 1:
            audio_values = audio_values.unsqueeze(1)
        batch, windows = audio_values.shape[:2]
        flat = self.towers.audio_features(audio_values.flatten(0, 1))
        return masked_mean(flat.view(batch, windows, -1).float(), windows_mask)

    def get_visual_tower_features(
        self, pixel_values: torch.Tensor, frames_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`[B, M, 3, H, W]` frames (or `[B, 3, H, W]`) -> `[B, vision_hidden]` frame mean."""
        if pixel_values.dim() == 4:
            pixel_values = pixel_values.unsqueeze(1)
        batch, frames = pixel_values.shape[:2]
        if frames_mask is not None:  # encode only the real frames
            valid = frames_mask.to(pixel_values.device).flatten()
            flat = pixel_values.flatten(0, 1)[valid]
            features = self.towers.vision_features(flat).float()
            full = features.new_zeros((batch * frames, features.shape[-1]))
            full[valid] = features
            return masked_mean(full.view(batch, frames, -1), frames_mask.to(full.device))
        flat = self.towers.vision_features(pixel_values.flatten(0, 1)).float()
        return flat.view(batch, frames, -1).mean(dim=1)

    def get_text_tower_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.towers.text_features(input_ids, attention_mask).float()

    def project_audio(self, audio_tower_features: torch.Tensor) -> torch.Tensor:
        return self.audio_projection(audio_tower_features.to(self.audio_projection.weight.dtype))

    def project_visual(self, visual_tower_features: torch.Tensor) -> torch.Tensor:
        return self.visual_projection(visual_tower_features.to(self.visual_projection.weight.dtype))

    def project_text(self, text_tower_features: torch.Tensor) -> torch.Tensor:
        return self.text_projection(text_tower_features.to(self.text_projection.weight.dtype))

    def get_audio_features(
        self, audio_values: torch.Tensor, windows_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Shared-space audio embedding of each clip (not normalised)."""
        return self.project_audio(self.get_audio_tower_features(audio_values, windows_mask))

    def get_visual_features(
        self, pixel_values: torch.Tensor, frames_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Shared-space visual embedding of each clip (not normalised)."""
        return self.project_visual(self.get_visual_tower_features(pixel_values, frames_mask))

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Shared-space embedding of each caption (not normalised)."""
        return self.project_text(self.get_text_tower_features(input_ids, attention_mask))

    @property
    def clamped_logit_scale(self) -> torch.Tensor:
        """`1 / temperature`, clamped at `max_logit_scale` as CLIP does."""
        return self.logit_scale.exp().clamp(max=self.config.max_logit_scale)

    # -- forward -----------------------------------------------------------------------------------------------------

    def forward(
        self,
        audio_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        windows_mask: torch.Tensor | None = None,
        frames_mask: torch.Tensor | None = None,
        audio_tower_features: torch.Tensor | None = None,
        visual_tower_features: torch.Tensor | None = None,
        text_tower_features: torch.Tensor | None = None,
        terms: tuple[str, ...] | None = None,
        return_loss: bool = True,
    ) -> SlavaOutput:
        """Embeddings from raw inputs (through the towers) or from cached tower features, and the local loss.

        `terms` (e.g. `("av", "at")`) default to the first batch recipe of `config.variant`; the loss needs every
        modality those terms read. A training loop spread over processes computes the global-batch loss itself
        from the returned embeddings (`losses_slava.slava_loss` with a gather).
        """
        if audio_tower_features is None and audio_values is not None:
            audio_tower_features = self.get_audio_tower_features(audio_values, windows_mask)
        if visual_tower_features is None and pixel_values is not None:
            visual_tower_features = self.get_visual_tower_features(pixel_values, frames_mask)
        if text_tower_features is None and input_ids is not None:
            text_tower_features = self.get_text_tower_features(input_ids, attention_mask)
        embeds = {}
        if audio_tower_features is not None:
            embeds["audio"] = self.project_audio(audio_tower_features)
        if visual_tower_features is not None:
            embeds["visual"] = self.project_visual(visual_tower_features)
        if text_tower_features is not None:
            embeds["text"] = self.project_text(text_tower_features)
        scale = self.clamped_logit_scale
        output = SlavaOutput(
            audio_embeds=embeds.get("audio"),
            visual_embeds=embeds.get("visual"),
            text_embeds=embeds.get("text"),
            logit_scale=scale,
        )
        if return_loss:
            terms = terms or batch_recipe(self.config.variant)[1]
            output.loss, logs = slava_loss(embeds, terms, scale)
            for name in ("loss_audio_visual", "loss_audio_text", "loss_visual_text"):
                setattr(output, name, logs.get(name))
        return output


__all__ = ["SlavaModel", "SlavaOutput", "SlavaPreTrainedModel", "masked_mean"]
