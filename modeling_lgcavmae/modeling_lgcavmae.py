"""LG-CAV-MAE: CAV-MAE (Gong et al., ICLR 2023) with language guidance (Ishikawa et al., Interspeech 2025).

The CAV-MAE part reproduces the official `CAVMAE` / `CAVMAEFT` numerics (`FAITHFULNESS.md` lists what is verified and
how; `docs/architecture.md` places the model in the project); the names follow transformers' conventions (ViTMAE for masking and the decoder, CLAP for contrastive outputs). Every place
where the official code does something non-obvious carries a comment saying so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_lgcavmae import LGCavMaeConfig
from .losses_lgcavmae import (
    TermInputs,
    compute_terms,
    patchify_audio,
    patchify_images,
    pretraining_objective,
    unpatchify_audio,
    unpatchify_images,
)

# ----------------------------------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------------------------------


# Shapes: B clips, L_a = num_audio_patches, L_v = num_visual_patches, l_a / l_v the visible (kept) token counts when
# masked (otherwise l_a = L_a, l_v = L_v), D = hidden_size, T = text_embed_dim, p = patch_size, C = num_channels.
# "model dtype" is the parameters' dtype (float32 unless loaded otherwise; bfloat16 inside a bf16 autocast region);
# losses and accuracies are float32 scalars whatever the model dtype.


@dataclass
class LGCavMaeModelOutput(ModelOutput):
    """Encoder outputs.

    Args:
        last_hidden_state (`[B, l_a + l_v, D]`, model dtype): the joint stream, audio tokens then visual tokens, after
            the shared layers with unified norms and the final `layernorm`; `None` unless both modalities are given.
        audio_last_hidden_state (`[B, l_a, D]`, model dtype): the audio stream through the shared layers with the
            audio norms and `audio_layernorm` (what the contrastive loss and retrieval use).
        visual_last_hidden_state (`[B, l_v, D]`, model dtype): the visual counterpart.
        audio_embeds (`[B, D]`, model dtype): mean of `audio_last_hidden_state` over its (visible) tokens, before L2
            normalisation.
        visual_embeds (`[B, D]`, model dtype): the visual counterpart.
        mask_audio (`[B, L_a]`, model dtype): 1 for removed tokens, 0 for kept ones, in the original token order;
            `None` without masking.
        mask_visual (`[B, L_v]`, model dtype): the visual counterpart.
        ids_restore_audio (`[B, L_a]`, int64): argsort of the shuffle, puts decoder tokens back in order; `None`
            without masking.
        ids_restore_visual (`[B, L_v]`, int64): the visual counterpart.
    """

    last_hidden_state: torch.Tensor | None = None
    audio_last_hidden_state: torch.Tensor | None = None
    visual_last_hidden_state: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    visual_embeds: torch.Tensor | None = None
    mask_audio: torch.Tensor | None = None
    mask_visual: torch.Tensor | None = None
    ids_restore_audio: torch.LongTensor | None = None
    ids_restore_visual: torch.LongTensor | None = None


@dataclass
class LGCavMaeForPreTrainingOutput(ModelOutput):
    """Pretraining outputs. A term that was not computed (zero weight, no `text_embeds`, `return_loss=False`,
    `return_contrastive_loss=False`) is `None`. The loss values are those of the term table
    (`losses_lgcavmae.LOSS_TERMS`); a term added to it without a field here comes as an extra key (`output["name"]`).

    Args:
        loss (`[]`, float32): `reconstruction_weight * (L_rec_a + L_rec_v) + contrastive_weight * L_c +
            text_contrastive_weight * (L_a2t + L_v2t)`.
        loss_reconstruction_audio (`[]`, float32): MAE loss of the audio patches, masked patches only.
        loss_reconstruction_visual (`[]`, float32): the visual counterpart.
        loss_contrastive (`[]`, float32): the audio-visual InfoNCE, *unweighted* (the official code returns it
            weighted).
        loss_audio_text (`[]`, float32): InfoNCE between projected audio embeddings and `text_embeds`.
        loss_visual_text (`[]`, float32): the visual counterpart.
        contrastive_accuracy (`[]`, float32): share of clips whose audio-visual arg-max is the right clip (official
            `c_acc`).
        audio_text_accuracy (`[]`, float32): the same for audio-text (both directions averaged when bidirectional).
        visual_text_accuracy (`[]`, float32): the same for visual-text.
        mask_audio (`[B, L_a]`, model dtype): 1 for masked tokens, in token order.
        mask_visual (`[B, L_v]`, model dtype): the visual counterpart.
        ids_restore_audio (`[B, L_a]`, int64): argsort of the audio shuffle.
        ids_restore_visual (`[B, L_v]`, int64): argsort of the visual shuffle.
        audio_embeds (`[B, D]`, model dtype): mean of the visible audio tokens, as the contrastive loss sees them,
            before normalisation.
        visual_embeds (`[B, D]`, model dtype): the visual counterpart.
        audio_text_embeds (`[B, T]`, model dtype): `audio_embeds` projected into the text space.
        visual_text_embeds (`[B, T]`, model dtype): `visual_embeds` projected into the text space.
        reconstruction_audio (`[B, L_a, p*p]`, model dtype): decoder prediction of every audio patch, in token order
            (`unpatchify_audio` turns it into a spectrogram).
        reconstruction_visual (`[B, L_v, p*p*C]`, model dtype): the visual counterpart (`unpatchify_visual`).
    """

    loss: torch.Tensor | None = None
    loss_reconstruction_audio: torch.Tensor | None = None
    loss_reconstruction_visual: torch.Tensor | None = None
    loss_contrastive: torch.Tensor | None = None
    loss_audio_text: torch.Tensor | None = None
    loss_visual_text: torch.Tensor | None = None
    contrastive_accuracy: torch.Tensor | None = None
    audio_text_accuracy: torch.Tensor | None = None
    visual_text_accuracy: torch.Tensor | None = None
    mask_audio: torch.Tensor | None = None
    mask_visual: torch.Tensor | None = None
    ids_restore_audio: torch.LongTensor | None = None
    ids_restore_visual: torch.LongTensor | None = None
    audio_embeds: torch.Tensor | None = None
    visual_embeds: torch.Tensor | None = None
    audio_text_embeds: torch.Tensor | None = None
    visual_text_embeds: torch.Tensor | None = None
    reconstruction_audio: torch.Tensor | None = None
    reconstruction_visual: torch.Tensor | None = None


# The term values the pretraining output declares as fields (in `to_tuple` order); other terms' are extra keys.
_PRETRAINING_OUTPUT_FIELDS = frozenset(f.name for f in fields(LGCavMaeForPreTrainingOutput))


@dataclass
class LGCavMaeForAudioVisualClassificationOutput(ModelOutput):
    """Classification outputs: `logits` only besides the loss, so `Trainer.predict` hands `compute_metrics` a plain
    array (the pooled representation is `model.pool(...)`).

    Args:
        loss (`[]`, float32): cross-entropy, BCE-with-logits or MSE per `problem_type`; `None` without `labels`.
        logits (`[B, num_labels]`, model dtype): the head's scores before softmax / sigmoid.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


# ----------------------------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------------------------


def build_2d_sincos_position_embedding(embed_dim: int, grid_rows: int, grid_cols: int) -> torch.Tensor:
    """MAE 2-D sin-cos table `[rows * cols, embed_dim]` for tokens numbered `row * cols + col`.

    Layout of the official `get_2d_sincos_pos_embed` (verified against it): channels `[0, D/4)` = sin(col * w),
    `[D/4, D/2)` = cos(col * w), `[D/2, 3D/4)` = sin(row * w), `[3D/4, D)` = cos(row * w), with
    `w_i = 10000^(-i / (D/4))`. So the first half encodes the column (audio: time), the second the row (audio:
    frequency). Computed in float64 like the numpy original, then cast to float32.
    """
    quarter = embed_dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(
        torch.arange(grid_rows, dtype=torch.float64),
        torch.arange(grid_cols, dtype=torch.float64),
        indexing="ij",
    )
    col_angles = cols.reshape(-1, 1) * omega
    row_angles = rows.reshape(-1, 1) * omega
    table = torch.cat([col_angles.sin(), col_angles.cos(), row_angles.sin(), row_angles.cos()], dim=1)
    return table.float()


def random_masking(
    sequence: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE per-sample random masking; returns `(kept_tokens, mask, ids_restore)`.

    `len_keep = int(L * (1 - mask_ratio))`; the tokens with the smallest noise are kept, *in shuffled order* (sorted
    by noise), as in the official code. `mask` is 1 for removed tokens, in the original order. Without `noise`, one
    `torch.rand(N, L)` is drawn from the global generator on the sequence's device, like the official code.
    """
    batch, length, dim = sequence.shape
    len_keep = int(length * (1 - mask_ratio))
    if noise is None:
        noise = torch.rand(batch, length, device=sequence.device)
    elif noise.shape != (batch, length):
        raise ValueError(f"Masking noise must have shape {(batch, length)}, got {tuple(noise.shape)}.")
    noise = noise.to(sequence.device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    kept = torch.gather(sequence, dim=1, index=ids_keep.unsqueeze(-1).expand(-1, -1, dim))
    mask = torch.ones(batch, length, device=sequence.device, dtype=sequence.dtype)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return kept, mask, ids_restore


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`softmax(q k^T * scale) v`, the way timm 0.4.5's `Attention` (used by the official code) computes it."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class LGCavMaeAttention(nn.Module):
    """Multi-head self-attention with one fused `qkv` projection (official layout `(B, N, 3, heads, head_dim)`)."""

    def __init__(self, config: LGCavMaeConfig, hidden_size: int, num_heads: int):
        super().__init__()
        self.config = config
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=True)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        batch, length, width = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, _ = attention_interface(
            self, query, key, value, None, dropout=0.0, scaling=self.scaling, is_causal=False, **kwargs
        )
        return self.proj(attn_output.reshape(batch, length, width))


class LGCavMaeMLP(nn.Module):
    def __init__(self, config: LGCavMaeConfig, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.activation_fn = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(hidden_states)))


class LGCavMaeLayer(GradientCheckpointingLayer):
    """Pre-norm transformer block (timm `Block`, no dropout or drop-path): `x + attn(ln1(x))`, `x + mlp(ln2(x))`."""

    def __init__(self, config: LGCavMaeConfig, hidden_size: int, num_heads: int, intermediate_size: int):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.attention = LGCavMaeAttention(config, hidden_size, num_heads)
        self.layernorm_after = nn.LayerNorm(hidden_size, eps=config.layer_norm_eps)
        self.mlp = LGCavMaeMLP(config, hidden_size, intermediate_size)

    def _norms(self, modality: str | None) -> tuple[nn.Module, nn.Module]:
        return self.layernorm_before, self.layernorm_after

    def forward(self, hidden_states: torch.Tensor, modality: str | None = None, **kwargs) -> torch.Tensor:
        norm_before, norm_after = self._norms(modality)
        hidden_states = hidden_states + self.attention(norm_before(hidden_states), **kwargs)
        return hidden_states + self.mlp(norm_after(hidden_states))


class LGCavMaeSharedLayer(LGCavMaeLayer):
    """The shared block: one set of attention/MLP weights, three LayerNorm sets.

    `modality=None` uses the unified norms (joint stream), `"audio"` / `"visual"` the modality's own norms.
    """

    def __init__(self, config: LGCavMaeConfig, hidden_size: int, num_heads: int, intermediate_size: int):
        super().__init__(config, hidden_size, num_heads, intermediate_size)
        eps = config.layer_norm_eps
        self.audio_layernorm_before = nn.LayerNorm(hidden_size, eps=eps)
        self.audio_layernorm_after = nn.LayerNorm(hidden_size, eps=eps)
        self.visual_layernorm_before = nn.LayerNorm(hidden_size, eps=eps)
        self.visual_layernorm_after = nn.LayerNorm(hidden_size, eps=eps)

    def _norms(self, modality: str | None) -> tuple[nn.Module, nn.Module]:
        if modality is None:
            return self.layernorm_before, self.layernorm_after
        if modality == "audio":
            return self.audio_layernorm_before, self.audio_layernorm_after
        if modality == "visual":
            return self.visual_layernorm_before, self.visual_layernorm_after
        raise ValueError(f"modality must be None, 'audio' or 'visual', got {modality!r}")


class LGCavMaeAudioEmbeddings(nn.Module):
    """Spectrogram `[B, T, F]` -> patch tokens + 2-D sin-cos positions + audio modality embedding.

    The spectrogram is transposed to `[B, 1, F, T]` (frequency as image height) before the 16x16 patch conv, so
    tokens are numbered `f * (T/16) + t` and the table is built on the `(F/16) x (T/16)` = 8 x 64 grid.
    """

    def __init__(self, config: LGCavMaeConfig):
        super().__init__()
        self.config = config
        self.grid_size = config.audio_grid_size
        self.projection = nn.Conv2d(
            1, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, config.num_audio_patches, config.hidden_size),
            requires_grad=config.trainable_position_embeddings,
        )
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, audio_values: torch.Tensor) -> torch.Tensor:
        expected = (self.config.audio_length, self.config.num_mel_bins)
        if audio_values.ndim != 3 or tuple(audio_values.shape[1:]) != expected:
            raise ValueError(
                f"audio_values must have shape [batch, {expected[0]}, {expected[1]}] (frames x mel bins), "
                f"got {tuple(audio_values.shape)}."
            )
        spectrogram = audio_values.unsqueeze(1).transpose(2, 3)
        tokens = self.projection(spectrogram.to(self.projection.weight.dtype)).flatten(2).transpose(1, 2)
        # Two separate additions in the official order, so fp32 results match bit for bit.
        return tokens + self.position_embeddings + self.modality_embedding


class LGCavMaeVisualEmbeddings(nn.Module):
    """Image `[B, C, H, W]` -> patch tokens (row-major) + 2-D sin-cos positions + visual modality embedding."""

    def __init__(self, config: LGCavMaeConfig):
        super().__init__()
        self.config = config
        self.grid_size = config.visual_grid_size
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.position_embeddings = nn.Parameter(
            torch.zeros(1, config.num_visual_patches, config.hidden_size),
            requires_grad=config.trainable_position_embeddings,
        )
        self.modality_embedding = nn.Parameter(torch.zeros(1, 1, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        size = self.config.image_size
        expected = (self.config.num_channels, size, size)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(
                f"pixel_values must have shape [batch, {', '.join(map(str, expected))}], got {tuple(pixel_values.shape)}."
            )
        tokens = self.projection(pixel_values.to(self.projection.weight.dtype)).flatten(2).transpose(1, 2)
        return tokens + self.position_embeddings + self.modality_embedding


class LGCavMaeDecoder(nn.Module):
    """Joint MAE decoder: both modalities' visible tokens plus mask tokens, unshuffled, through one transformer."""

    def __init__(self, config: LGCavMaeConfig):
        super().__init__()
        self.config = config
        width = config.decoder_hidden_size
        self.num_audio_patches = config.num_audio_patches
        self.decoder_embed = nn.Linear(config.hidden_size, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.audio_position_embeddings = nn.Parameter(
            torch.zeros(1, config.num_audio_patches, width),
            requires_grad=config.trainable_position_embeddings,
        )
        self.visual_position_embeddings = nn.Parameter(
            torch.zeros(1, config.num_visual_patches, width),
            requires_grad=config.trainable_position_embeddings,
        )
        self.audio_modality_embedding = nn.Parameter(torch.zeros(1, 1, width))
        self.visual_modality_embedding = nn.Parameter(torch.zeros(1, 1, width))
        self.layers = nn.ModuleList(
            LGCavMaeLayer(config, width, config.decoder_num_attention_heads, config.decoder_intermediate_size)
            for _ in range(config.decoder_num_hidden_layers)
        )
        self.layernorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.audio_pred = nn.Linear(width, config.patch_size**2)
        self.visual_pred = nn.Linear(width, config.patch_size**2 * config.num_channels)

    def _unshuffle(self, visible: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        batch, num_visible, width = visible.shape
        mask_tokens = self.mask_token.to(visible.dtype).expand(
            batch, ids_restore.shape[1] - num_visible, width
        )
        tokens = torch.cat([visible, mask_tokens], dim=1)
        return torch.gather(tokens, dim=1, index=ids_restore.unsqueeze(-1).expand(-1, -1, width))

    def forward(
        self,
        hidden_states: torch.Tensor,
        ids_restore_audio: torch.Tensor,
        ids_restore_visual: torch.Tensor,
        num_visible_audio: int,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden_states = self.decoder_embed(hidden_states)
        audio = self._unshuffle(hidden_states[:, :num_visible_audio], ids_restore_audio)
        visual = self._unshuffle(hidden_states[:, num_visible_audio:], ids_restore_visual)
        positions = torch.cat([self.audio_position_embeddings, self.visual_position_embeddings], dim=1)
        modality = torch.cat(
            [
                self.audio_modality_embedding.expand(-1, audio.shape[1], -1),
                self.visual_modality_embedding.expand(-1, visual.shape[1], -1),
            ],
            dim=1,
        )
        hidden_states = torch.cat([audio, visual], dim=1) + positions + modality
        for layer in self.layers:
            hidden_states = layer(hidden_states, **kwargs)
        hidden_states = self.layernorm(hidden_states)
        audio_pred = self.audio_pred(hidden_states[:, : self.num_audio_patches])
        visual_pred = self.visual_pred(hidden_states[:, self.num_audio_patches :])
        return audio_pred, visual_pred


class LGCavMaeTextProjection(nn.Module):
    """Two-layer MLP from a pooled audio or visual embedding to the text-embedding space (LG-CAV-MAE)."""

    def __init__(self, config: LGCavMaeConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.text_projection_hidden_size)
        self.activation_fn = ACT2FN[config.text_projection_hidden_act]
        self.fc2 = nn.Linear(config.text_projection_hidden_size, config.text_embed_dim)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(pooled)))


class LGCavMaeClassificationHead(nn.Module):
    """Official fine-tuning head `mlp_head = Sequential(LayerNorm, Linear)`."""

    def __init__(self, config: LGCavMaeConfig):
        super().__init__()
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dense = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.dense(self.layernorm(pooled))


# ----------------------------------------------------------------------------------------------------------------------
# Pretrained model base
# ----------------------------------------------------------------------------------------------------------------------

REMOTE_CODE_AUTO_MAP = {
    "AutoConfig": "configuration_lgcavmae.LGCavMaeConfig",
    "AutoModel": "modeling_lgcavmae.LGCavMaeModel",
    "AutoModelForPreTraining": "modeling_lgcavmae.LGCavMaeForPreTraining",
    "AutoModelForAudioClassification": "modeling_lgcavmae.LGCavMaeForAudioVisualClassification",
}


class LGCavMaePreTrainedModel(PreTrainedModel):
    config: LGCavMaeConfig
    config_class = LGCavMaeConfig
    base_model_prefix = "cav_mae"
    main_input_name = "audio_values"
    input_modalities = ("audio", "image")
    supports_gradient_checkpointing = True
    _no_split_modules = ["LGCavMaeLayer", "LGCavMaeSharedLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True  # no data-dependent shapes: token counts come from the config
    # `**kwargs` in forward only carries attention-backend options; without this, Trainer would assume the model
    # normalises its loss by `num_items_in_batch` and skip its own gradient-accumulation / multi-device scaling.
    accepts_loss_kwargs = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Official `initialize_weights`: xavier-uniform Linear (qkv as one matrix) with zero bias, LayerNorm 1/0,
        patch convs xavier-uniform on their `[out, in * p * p]` view, tokens normal(0.02), fixed sin-cos tables."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            # A view loses the "already loaded" flag, so check it on the parameter itself.
            if not getattr(module.weight, "_is_hf_initialized", False):
                nn.init.xavier_uniform_(module.weight.view(module.weight.shape[0], -1))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (LGCavMaeAudioEmbeddings, LGCavMaeVisualEmbeddings)):
            rows, cols = module.grid_size
            table = build_2d_sincos_position_embedding(module.position_embeddings.shape[-1], rows, cols)
            init.copy_(module.position_embeddings, table.unsqueeze(0))
            init.normal_(module.modality_embedding, std=std)
        elif isinstance(module, LGCavMaeDecoder):
            width = module.mask_token.shape[-1]
            for table, (rows, cols) in (
                (module.audio_position_embeddings, self.config.audio_grid_size),
                (module.visual_position_embeddings, self.config.visual_grid_size),
            ):
                init.copy_(table, build_2d_sincos_position_embedding(width, rows, cols).unsqueeze(0))
            init.normal_(module.mask_token, std=std)
            init.normal_(module.audio_modality_embedding, std=std)
            init.normal_(module.visual_modality_embedding, std=std)
        elif isinstance(module, LGCavMaeForPreTraining) and module.text_logit_scale is not None:
            init.constant_(module.text_logit_scale, math.log(1.0 / self.config.text_temperature))

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also list every LG-CAV-MAE head in `auto_map`, so remote code can load the folder as any of them."""
        if self._auto_class is not None:
            self.config.auto_map = {**(getattr(self.config, "auto_map", None) or {}), **REMOTE_CODE_AUTO_MAP}
        return super().save_pretrained(save_directory, *args, **kwargs)

    def push_to_hub(
        self, repo_id: str, *args, card_source: str = "", conversion_report: str | None = None, **kwargs
    ):
        """`PreTrainedModel.push_to_hub`, then our generated model card in place of transformers' generic template
        (a card already written for the repo is kept)."""
        result = super().push_to_hub(repo_id, *args, **kwargs)
        from huggingface_hub import HfApi, ModelCard

        token, revision = kwargs.get("token"), kwargs.get("revision")
        current = ModelCard.load(repo_id, token=token)
        if "has been automatically generated" in current.content:
            from .model_card_lgcavmae import render_model_card

            card = render_model_card(
                self, source=card_source, conversion_report=conversion_report, repo_id=repo_id
            )
            HfApi().upload_file(
                path_or_fileobj=str(card).encode(),
                path_in_repo="README.md",
                repo_id=repo_id,
                token=token,
                revision=revision,
                commit_message="Add LG-CAV-MAE model card",
            )
        return result

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        # transformers 5 re-creates every loaded floating-point parameter with requires_grad=True, which would
        # silently unfreeze the fixed sin-cos tables (ViTMAE has the same problem); restore what the config says.
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.set_position_embeddings_trainable(model._position_embeddings_trainable())
        return loaded

    def _position_embeddings_trainable(self) -> bool:
        return self.config.trainable_position_embeddings

    def position_embedding_parameters(self) -> list[nn.Parameter]:
        """The sin-cos tables (frozen by default; the official optimiser excludes them)."""
        return [p for name, p in self.named_parameters() if "position_embeddings" in name]

    def set_position_embeddings_trainable(self, trainable: bool) -> None:
        for parameter in self.position_embedding_parameters():
            parameter.requires_grad_(trainable)


# ----------------------------------------------------------------------------------------------------------------------
# Encoders
# ----------------------------------------------------------------------------------------------------------------------


# Loading the encoder (alone or under a classifier) from a pretraining checkpoint skips these heads quietly.
_PRETRAINING_ONLY_KEYS = [r"^decoder\.", r"_text_projection\.", r"^text_logit_scale$"]


class LGCavMaeModel(LGCavMaePreTrainedModel):
    """The two modality-specific encoders and the shared layer(s) with their three norm sets."""

    _keys_to_ignore_on_load_unexpected = _PRETRAINING_ONLY_KEYS

    def __init__(self, config: LGCavMaeConfig):
        super().__init__(config)
        self.config = config
        self.audio_embeddings = LGCavMaeAudioEmbeddings(config)
        self.visual_embeddings = LGCavMaeVisualEmbeddings(config)

        def stack(count: int, layer_class: type[LGCavMaeLayer]) -> nn.ModuleList:
            return nn.ModuleList(
                layer_class(config, config.hidden_size, config.num_attention_heads, config.intermediate_size)
                for _ in range(count)
            )

        self.audio_layers = stack(config.num_modality_specific_layers, LGCavMaeLayer)
        self.visual_layers = stack(config.num_modality_specific_layers, LGCavMaeLayer)
        self.shared_layers = stack(config.num_shared_layers, LGCavMaeSharedLayer)
        self.audio_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.visual_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    # -- pieces, reused by the heads ------------------------------------------------------------------------------

    @staticmethod
    def _run(layers: nn.ModuleList, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        for layer in layers:
            hidden_states = layer(hidden_states, **kwargs)
        return hidden_states

    def encode_audio_tokens(self, audio_values: torch.Tensor, **kwargs) -> torch.Tensor:
        """Unmasked audio tokens through the audio-specific layers (before the shared layers)."""
        return self._run(self.audio_layers, self.audio_embeddings(audio_values), **kwargs)

    def encode_visual_tokens(self, pixel_values: torch.Tensor, **kwargs) -> torch.Tensor:
        return self._run(self.visual_layers, self.visual_embeddings(pixel_values), **kwargs)

    def modality_stream(self, hidden_states: torch.Tensor, modality: str, **kwargs) -> torch.Tensor:
        """Shared layer(s) with the modality's own norms, then its final norm (`norm_a` / `norm_v`).

        The official pretraining loop feeds the *same input* to every shared layer (`ca = blk(a, 'a')`), which equals
        chaining only with one shared layer, the only configuration it was ever run with. We match it at depth 1 and
        chain the layers properly at larger depths (as the official retrieval and fine-tuning paths do).
        """
        hidden_states = self._run(self.shared_layers, hidden_states, modality=modality, **kwargs)
        final_norm = self.audio_layernorm if modality == "audio" else self.visual_layernorm
        return final_norm(hidden_states)

    def joint_stream(self, audio_tokens: torch.Tensor, visual_tokens: torch.Tensor, **kwargs) -> torch.Tensor:
        """Concatenated tokens through the shared layer(s) with unified norms, then `layernorm` (official `norm`)."""
        hidden_states = torch.cat([audio_tokens, visual_tokens], dim=1)
        return self.layernorm(self._run(self.shared_layers, hidden_states, **kwargs))

    def get_audio_features(self, audio_values: torch.Tensor) -> torch.Tensor:
        """Official retrieval feature (`forward_feat`): unmasked audio stream through the shared layer(s) with the
        audio norms, `norm_a`, mean over all tokens. Not L2-normalised."""
        return self.modality_stream(self.encode_audio_tokens(audio_values), "audio").mean(dim=1)

    def get_visual_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Visual counterpart of `get_audio_features`."""
        return self.modality_stream(self.encode_visual_tokens(pixel_values), "visual").mean(dim=1)

    def forward(
        self,
        audio_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        audio_noise: torch.Tensor | None = None,
        visual_noise: torch.Tensor | None = None,
        apply_masking: bool = False,
        mask_ratio_audio: float | None = None,
        mask_ratio_visual: float | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> LGCavMaeModelOutput | tuple:
        """Encode audio and/or images.

        Without masking (default), this is the official feature path for each modality plus the joint stream of
        the fine-tuning model. With `apply_masking=True` (or when a noise tensor is given) it is the official
        pretraining encoder: MAE masking after the embeddings (audio noise drawn before visual noise), and the
        pooled embeddings average the visible tokens only.
        """
        if audio_values is None and pixel_values is None:
            raise ValueError("Pass audio_values, pixel_values or both.")
        masking = apply_masking or audio_noise is not None or visual_noise is not None
        ratio_audio = self.config.mask_ratio_audio if mask_ratio_audio is None else mask_ratio_audio
        ratio_visual = self.config.mask_ratio_visual if mask_ratio_visual is None else mask_ratio_visual

        audio = self.audio_embeddings(audio_values) if audio_values is not None else None
        visual = self.visual_embeddings(pixel_values) if pixel_values is not None else None
        mask_audio = mask_visual = ids_restore_audio = ids_restore_visual = None
        if masking and audio is not None:
            audio, mask_audio, ids_restore_audio = random_masking(audio, ratio_audio, audio_noise)
        if masking and visual is not None:
            visual, mask_visual, ids_restore_visual = random_masking(visual, ratio_visual, visual_noise)

        audio_stream = visual_stream = joint = None
        if audio is not None:
            audio = self._run(self.audio_layers, audio, **kwargs)
        if visual is not None:
            visual = self._run(self.visual_layers, visual, **kwargs)
        if audio is not None and visual is not None:
            joint = self.joint_stream(audio, visual, **kwargs)
        if audio is not None:
            audio_stream = self.modality_stream(audio, "audio", **kwargs)
        if visual is not None:
            visual_stream = self.modality_stream(visual, "visual", **kwargs)

        output = LGCavMaeModelOutput(
            last_hidden_state=joint,
            audio_last_hidden_state=audio_stream,
            visual_last_hidden_state=visual_stream,
            audio_embeds=audio_stream.mean(dim=1) if audio_stream is not None else None,
            visual_embeds=visual_stream.mean(dim=1) if visual_stream is not None else None,
            mask_audio=mask_audio,
            mask_visual=mask_visual,
            ids_restore_audio=ids_restore_audio,
            ids_restore_visual=ids_restore_visual,
        )
        return (
            output
            if (return_dict if return_dict is not None else self.config.return_dict)
            else output.to_tuple()
        )


# ----------------------------------------------------------------------------------------------------------------------
# Pretraining
# ----------------------------------------------------------------------------------------------------------------------


class LGCavMaeForPreTraining(LGCavMaePreTrainedModel):
    """CAV-MAE encoders + joint decoder + text projections, with all LG-CAV-MAE pretraining losses."""

    def __init__(self, config: LGCavMaeConfig):
        super().__init__(config)
        self.config = config
        self.cav_mae = LGCavMaeModel(config)
        self.decoder = LGCavMaeDecoder(config)
        self.audio_text_projection = LGCavMaeTextProjection(config)
        self.visual_text_projection = LGCavMaeTextProjection(config)
        self.text_logit_scale = nn.Parameter(torch.zeros(())) if config.text_temperature_learnable else None
        self._text_encoder = None  # optional frozen tower, loaded on first `encode_text`; never saved
        self.post_init()

    # -- features ---------------------------------------------------------------------------------------------------

    def get_audio_features(self, audio_values: torch.Tensor) -> torch.Tensor:
        return self.cav_mae.get_audio_features(audio_values)

    def get_visual_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.cav_mae.get_visual_features(pixel_values)

    def get_text_aligned_audio_features(self, audio_values: torch.Tensor) -> torch.Tensor:
        """Unmasked audio feature projected into the text space (for text -> audio retrieval); not normalised."""
        return self.audio_text_projection(self.get_audio_features(audio_values))

    def get_text_aligned_visual_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.visual_text_projection(self.get_visual_features(pixel_values))

    def encode_text(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Embed captions with the frozen text tower named by `config.text_model_name_or_path` (L2-normalised).

        Pretraining normally reads cached embeddings from the triplet dataset; this is for users without them. The
        tower must be the one the cached embeddings came from for the two to be interchangeable.
        """
        if self._text_encoder is None:
            from .text_encoder_lgcavmae import FrozenTextEncoder

            if not self.config.text_model_name_or_path:
                raise ValueError("Set `config.text_model_name_or_path` to embed raw captions.")
            self._text_encoder = FrozenTextEncoder(self.config.text_model_name_or_path, device=self.device)
        embeds = self._text_encoder(texts, batch_size=batch_size)
        if embeds.shape[-1] != self.config.text_embed_dim:
            raise ValueError(
                f"The text tower gives {embeds.shape[-1]}-d embeddings but `text_embed_dim` is {self.config.text_embed_dim}."
            )
        return embeds.to(self.device)

    @property
    def text_temperature(self) -> float | torch.Tensor:
        if self.text_logit_scale is None:
            return self.config.text_temperature
        return torch.exp(-self.text_logit_scale)

    # -- patches ----------------------------------------------------------------------------------------------------

    def patchify_audio(self, audio_values: torch.Tensor) -> torch.Tensor:
        return patchify_audio(audio_values, self.config.patch_size)

    def patchify_visual(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return patchify_images(pixel_values, self.config.patch_size)

    def unpatchify_audio(self, patches: torch.Tensor) -> torch.Tensor:
        c = self.config
        return unpatchify_audio(patches, c.patch_size, c.num_mel_bins, c.audio_length)

    def unpatchify_visual(self, patches: torch.Tensor) -> torch.Tensor:
        c = self.config
        return unpatchify_images(patches, c.patch_size, c.num_channels, c.image_size, c.image_size)

    # -- forward: the official forward_encoder / forward_decoder steps, then the loss terms -------------------------

    def forward_encoder(
        self,
        audio_values: torch.Tensor,
        pixel_values: torch.Tensor,
        audio_noise: torch.Tensor | None = None,
        visual_noise: torch.Tensor | None = None,
        mask_ratio_audio: float | None = None,
        mask_ratio_visual: float | None = None,
        **kwargs,
    ) -> LGCavMaeModelOutput:
        """Masked encoding of both modalities: visible tokens, joint stream, pooled embeddings, masks."""
        return self.cav_mae(
            audio_values,
            pixel_values,
            audio_noise=audio_noise,
            visual_noise=visual_noise,
            apply_masking=True,
            mask_ratio_audio=mask_ratio_audio,
            mask_ratio_visual=mask_ratio_visual,
            return_dict=True,
            **kwargs,
        )

    def forward_decoder(self, encoded: LGCavMaeModelOutput, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-patch predictions `[B, L_a, p*p]` and `[B, L_v, p*p*C]` of every token, masked ones included."""
        num_visible_audio = encoded.audio_last_hidden_state.shape[1]
        return self.decoder(
            encoded.last_hidden_state,
            encoded.ids_restore_audio,
            encoded.ids_restore_visual,
            num_visible_audio,
            **kwargs,
        )

    def forward_loss_terms(
        self, inputs: TermInputs, global_batch: bool | None = None
    ) -> dict[str, torch.Tensor]:
        """The terms of `LOSS_TERMS` with this batch's negatives (one process): the official forward_mae_loss and
        forward_contrastive. A distributed loop computes the global-batch ones itself
        (`avt_training.losses.PretrainingLoss`)."""
        return compute_terms(inputs, global_batch)

    def forward(
        self,
        audio_values: torch.Tensor,
        pixel_values: torch.Tensor,
        text_embeds: torch.Tensor | None = None,
        audio_noise: torch.Tensor | None = None,
        visual_noise: torch.Tensor | None = None,
        return_loss: bool = True,
        return_contrastive_loss: bool = True,
        mask_ratio_audio: float | None = None,
        mask_ratio_visual: float | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> LGCavMaeForPreTrainingOutput | tuple:
        """One pretraining step's forward.

        audio_values `[B, audio_length, num_mel_bins]`, pixel_values `[B, C, image_size, image_size]`, text_embeds
        `[B, text_embed_dim]` (optional: without it the text terms are skipped). `audio_noise` `[B, L_a]` and
        `visual_noise` `[B, L_v]` fix the masking (smaller noise = kept); otherwise it is drawn from the global RNG,
        audio first, like the official code. `return_contrastive_loss=False` returns the embeddings and the
        terms that do not need the global batch (the reconstruction) but leaves the ones that do (the contrastive
        terms, `LossTerm.global_batch`) and so `loss` to the caller, as a loop with global-batch negatives does.
        """
        config = self.config
        encoded = self.forward_encoder(
            audio_values,
            pixel_values,
            audio_noise,
            visual_noise,
            mask_ratio_audio,
            mask_ratio_visual,
            **kwargs,
        )
        audio_text_embeds = self.audio_text_projection(encoded.audio_embeds)
        visual_text_embeds = self.visual_text_projection(encoded.visual_embeds)
        reconstruction_audio = reconstruction_visual = None
        if config.reconstruction_weight != 0 or not return_loss:
            reconstruction_audio, reconstruction_visual = self.forward_decoder(encoded, **kwargs)
        loss, values = None, {}
        if return_loss:
            inputs = TermInputs(
                config,
                audio_embeds=encoded.audio_embeds,
                visual_embeds=encoded.visual_embeds,
                audio_text_embeds=audio_text_embeds,
                visual_text_embeds=visual_text_embeds,
                text_embeds=text_embeds,
                text_temperature=self.text_temperature,
                audio_values=audio_values,
                pixel_values=pixel_values,
                reconstruction_audio=reconstruction_audio,
                reconstruction_visual=reconstruction_visual,
                mask_audio=encoded.mask_audio,
                mask_visual=encoded.mask_visual,
            )
            values = self.forward_loss_terms(inputs, None if return_contrastive_loss else False)
            if return_contrastive_loss:
                loss = pretraining_objective(config, values)
        declared = {name: values.pop(name) for name in list(values) if name in _PRETRAINING_OUTPUT_FIELDS}
        output = LGCavMaeForPreTrainingOutput(
            loss=loss,
            **declared,
            mask_audio=encoded.mask_audio,
            mask_visual=encoded.mask_visual,
            ids_restore_audio=encoded.ids_restore_audio,
            ids_restore_visual=encoded.ids_restore_visual,
            audio_embeds=encoded.audio_embeds,
            visual_embeds=encoded.visual_embeds,
            audio_text_embeds=audio_text_embeds,
            visual_text_embeds=visual_text_embeds,
            reconstruction_audio=reconstruction_audio,
            reconstruction_visual=reconstruction_visual,
        )
        for name, value in values.items():  # a term registered beyond the declared fields: an extra key
            output[name] = value
        return (
            output if (return_dict if return_dict is not None else config.return_dict) else output.to_tuple()
        )


# ----------------------------------------------------------------------------------------------------------------------
# Fine-tuning
# ----------------------------------------------------------------------------------------------------------------------


class LGCavMaeForAudioVisualClassification(LGCavMaePreTrainedModel):
    """Official `CAVMAEFT`: encoders + `LayerNorm -> Linear` head on mean-pooled tokens, no masking.

    Position tables are trainable here by default (official `tr_pos=True`; `classifier_trainable_position_embeddings`).
    """

    _keys_to_ignore_on_load_unexpected = _PRETRAINING_ONLY_KEYS

    def __init__(self, config: LGCavMaeConfig):
        super().__init__(config)
        self.config = config
        self.num_labels = config.num_labels
        self.cav_mae = LGCavMaeModel(config)
        self.classifier = LGCavMaeClassificationHead(config)
        self.post_init()
        self.set_position_embeddings_trainable(self._position_embeddings_trainable())

    def _position_embeddings_trainable(self) -> bool:
        return self.config.classifier_trainable_position_embeddings

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Also save the `audio-visual-classification` pipeline (`pipeline_lgcavmae.py`, named in the config's
        `custom_pipelines`), so `pipeline(task, model=folder_or_hub_id, trust_remote_code=True)` works anywhere."""
        if self._auto_class is None:
            return super().save_pretrained(save_directory, *args, **kwargs)
        import shutil
        from pathlib import Path

        from . import pipeline_lgcavmae

        self.config.custom_pipelines = {
            **(getattr(self.config, "custom_pipelines", None) or {}),
            **pipeline_lgcavmae.PIPELINE_CONFIG,
        }
        result = super().save_pretrained(save_directory, *args, **kwargs)
        shutil.copy(pipeline_lgcavmae.__file__, Path(save_directory) / Path(pipeline_lgcavmae.__file__).name)
        return result

    def get_audio_features(self, audio_values: torch.Tensor) -> torch.Tensor:
        """Retrieval feature from the fine-tuned encoder (official `CAVMAEFT.forward_feat`, mean-pooled)."""
        return self.cav_mae.get_audio_features(audio_values)

    def get_visual_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.cav_mae.get_visual_features(pixel_values)

    def pool(
        self,
        audio_values: torch.Tensor | None,
        pixel_values: torch.Tensor | None,
        classifier_mode: str | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """The pooled representation the head sees, per official fine-tuning mode."""
        mode = classifier_mode or self.config.classifier_mode
        model = self.cav_mae
        needs_audio = mode in ("audio_visual", "audio", "missing_visual")
        needs_visual = mode in ("audio_visual", "visual", "missing_audio")
        if needs_audio and audio_values is None:
            raise ValueError(f"classifier_mode={mode!r} needs audio_values.")
        if needs_visual and pixel_values is None:
            raise ValueError(f"classifier_mode={mode!r} needs pixel_values.")
        if mode == "audio_visual":
            audio = model.encode_audio_tokens(audio_values, **kwargs)
            visual = model.encode_visual_tokens(pixel_values, **kwargs)
            return model.joint_stream(audio, visual, **kwargs).mean(dim=1)
        if mode in ("audio", "missing_visual"):
            tokens, modality = model.encode_audio_tokens(audio_values, **kwargs), "audio"
        elif mode in ("visual", "missing_audio"):
            tokens, modality = model.encode_visual_tokens(pixel_values, **kwargs), "visual"
        else:
            raise ValueError(f"Unknown classifier_mode {mode!r}.")
        pooled = model.modality_stream(tokens, modality, **kwargs).mean(dim=1)
        if mode in ("missing_visual", "missing_audio"):
            # Model fine-tuned on both modalities, one missing at inference: average the unified-norm path (as in
            # the joint stream) and the modality-norm path.
            unified = model.layernorm(model._run(model.shared_layers, tokens, **kwargs)).mean(dim=1)
            pooled = (unified + pooled) / 2
        return pooled

    def inference_mode(self, has_audio: bool, has_visual: bool) -> str:
        """The mode for the inputs at hand: the configured one, or, when it needs a stream that is absent, the
        official missing-modality mode (`missing_visual` / `missing_audio`) of an audio-visual model."""
        mode = self.config.classifier_mode
        if mode == "audio_visual" and has_audio and not has_visual:
            return "missing_visual"
        if mode == "audio_visual" and has_visual and not has_audio:
            return "missing_audio"
        return mode

    def forward(
        self,
        audio_values: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        classifier_mode: str | None = None,
        return_dict: bool | None = None,
        input_values: torch.Tensor | None = None,
        **kwargs,
    ) -> LGCavMaeForAudioVisualClassificationOutput | tuple:
        """labels: class indices `[B]` (single-label) or multi-hot / soft targets `[B, num_labels]` (multi-label).

        `input_values` is the fbank under the name transformers' audio feature extractors and the
        `audio-classification` pipeline give it (our processor's `audio_values`); given alone to an audio-visual
        model, it is classified in the official missing-visual mode."""
        if input_values is not None and audio_values is None:
            audio_values = input_values
            classifier_mode = classifier_mode or self.inference_mode(True, pixel_values is not None)
        pooled = self.pool(audio_values, pixel_values, classifier_mode, **kwargs)
        logits = self.classifier(pooled)
        loss = self.compute_loss(logits, labels) if labels is not None else None
        output = LGCavMaeForAudioVisualClassificationOutput(loss=loss, logits=logits)
        return (
            output
            if (return_dict if return_dict is not None else self.config.return_dict)
            else output.to_tuple()
        )

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (single-label), BCE-with-logits (multi-label) or MSE (regression), per `problem_type`;
        inferred from the labels like transformers' sequence classifiers when unset."""
        problem_type = self.config.problem_type
        if problem_type is None:
            if self.num_labels == 1:
                problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int) and labels.ndim == 1:
                problem_type = "single_label_classification"
            else:
                problem_type = "multi_label_classification"
        labels = labels.to(logits.device)
        if problem_type == "regression":
            return F.mse_loss(logits.squeeze(-1).float(), labels.float().view(-1))
        if problem_type == "single_label_classification":
            if labels.ndim == 2:  # soft / mixup targets, as the official VGGSound recipe feeds CE
                return F.cross_entropy(logits.float(), labels.float())
            return F.cross_entropy(logits.float(), labels.long().view(-1))
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


__all__ = [
    "LGCavMaeForAudioVisualClassification",
    "LGCavMaeForPreTraining",
    "LGCavMaeModel",
    "LGCavMaePreTrainedModel",
    "build_2d_sincos_position_embedding",
    "random_masking",
]
