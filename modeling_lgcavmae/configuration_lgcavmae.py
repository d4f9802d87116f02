"""LG-CAV-MAE configuration.

Defaults reproduce the official CAV-MAE pretraining model (``CAVMAE`` in ``YuanGongND/cav-mae``, as the released
checkpoints were trained: ``norm_pix_loss=True``, ``tr_pos=False``) plus the language-guided (LG) additions.
"""

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from .loss_settings_lgcavmae import LOSS_DEFAULTS, LOSS_SETTINGS

ClassifierMode = Literal["audio_visual", "audio", "visual", "missing_visual", "missing_audio"]


@strict
class LGCavMaeConfig(PreTrainedConfig):
    r"""
    Configuration of [`LGCavMaeModel`], [`LGCavMaeForPreTraining`] and [`LGCavMaeForAudioVisualClassification`].

    CAV-MAE part (official defaults):
        audio_length: spectrogram frames (time); audio input is `[batch, audio_length, num_mel_bins]`.
        num_mel_bins: mel bins (frequency). The audio patch grid is `(num_mel_bins / patch_size) x (audio_length /
            patch_size)` = 8 x 64 by default, tokens numbered frequency-major (`f * 64 + t`) like the official code.
        image_size, patch_size, num_channels: visual input `[batch, num_channels, image_size, image_size]`.
        hidden_size, num_attention_heads, intermediate_size: encoder width (768 / 12 / 3072).
        num_modality_specific_layers: layers per modality stream (official 11).
        num_shared_layers: shared layers with unified / audio / visual LayerNorms (official 1; the official code
            hard-codes 12 layers in total).
        decoder_*: the joint MAE decoder (512 wide, 8 layers, 16 heads, MLP 2048).
        layer_norm_eps: 1e-5 (torch default, what the official code uses; MAE uses 1e-6).
        mask_ratio_audio, mask_ratio_visual: MAE masking ratios (unstructured, per-sample argsort of noise).
        norm_pix_loss: per-patch normalised reconstruction targets (unbiased variance + 1e-6).
        trainable_position_embeddings: make the sin-cos tables trainable in pretraining (official `tr_pos=False`).
        classifier_trainable_position_embeddings: the same for [`LGCavMaeForAudioVisualClassification`]; the
            official fine-tuning model uses `tr_pos=True`.
        reconstruction_weight: weight of the two MAE terms (official `mae_loss_weight=1`); at 0 the decoder is skipped.
        contrastive_temperature, contrastive_bidirectional, contrastive_weight: audio-visual InfoNCE (official
            tau = 0.05 fixed, single direction: softmax over the audio index for each visual sample, weight 0.01).

    The loss numbers (the weights and temperatures above and below) take their defaults from
    `loss_settings_lgcavmae.LOSS_SETTINGS`, which `avt pretrain` also reads for its options.

    Language-guided part:
        text_embed_dim: size of the sentence embeddings the projections map to (MS-CLAP 2023: 1024).
        text_projection_hidden_size: hidden width of the two-layer projection MLPs (default: `hidden_size`).
        text_projection_hidden_act: activation between the two projection layers.
        text_temperature: InfoNCE temperature for audio-text and visual-text. The LG-CAV-MAE paper does not state
            one; we reuse CAV-MAE's fixed 0.05 so the three contrastive terms share one scale.
        text_temperature_learnable: learn the text temperature instead (CLIP-style log-scale parameter initialised
            at `1 / text_temperature`).
        text_loss_bidirectional: symmetric (CLIP-style) InfoNCE for the text terms (default) or modality-to-text only.
        text_contrastive_weight: lambda_2, weight of `L_a2t + L_v2t` (paper 0.01).
        text_model_name_or_path: optional frozen text tower (any transformers model with `get_text_features`, e.g. a
            CLAP checkpoint) used by `LGCavMaeForPreTraining.encode_text` for users without cached text embeddings.

    Fine-tuning:
        classifier_mode: `audio_visual` (joint stream, mean of all tokens), `audio`, `visual`, or the official
            missing-modality inference modes `missing_visual` (only audio given; official `missingaudioonly`) and
            `missing_audio` (only the image given; official `missingvideoonly`).
        num_labels / id2label / problem_type: standard transformers fields (`single_label_classification` uses
            cross-entropy, `multi_label_classification` BCE-with-logits).
    """

    model_type = "lg_cav_mae"

    audio_length: int = 1024
    num_mel_bins: int = 128
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    hidden_size: int = 768
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    num_modality_specific_layers: int = 11
    num_shared_layers: int = 1
    decoder_hidden_size: int = 512
    decoder_num_hidden_layers: int = 8
    decoder_num_attention_heads: int = 16
    decoder_intermediate_size: int = 2048
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    mask_ratio_audio: float = 0.75
    mask_ratio_visual: float = 0.75
    norm_pix_loss: bool = True
    trainable_position_embeddings: bool = False
    classifier_trainable_position_embeddings: bool = True
    reconstruction_weight: float = LOSS_DEFAULTS["reconstruction_weight"]
    contrastive_temperature: float = LOSS_DEFAULTS["contrastive_temperature"]
    contrastive_bidirectional: bool = False
    contrastive_weight: float = LOSS_DEFAULTS["contrastive_weight"]
    text_embed_dim: int = 1024
    text_projection_hidden_size: int | None = None
    text_projection_hidden_act: str = "gelu"
    text_temperature: float = LOSS_DEFAULTS["text_temperature"]
    text_temperature_learnable: bool = False
    text_loss_bidirectional: bool = True
    text_contrastive_weight: float = LOSS_DEFAULTS["text_contrastive_weight"]
    text_model_name_or_path: str | None = None
    classifier_mode: ClassifierMode = "audio_visual"

    def __post_init__(self, **kwargs):
        if self.text_projection_hidden_size is None:
            self.text_projection_hidden_size = self.hidden_size
        super().__post_init__(**kwargs)

    @property
    def audio_grid_size(self) -> tuple[int, int]:
        """(frequency rows, time columns) of the audio patch grid: (8, 64) by default."""
        return self.num_mel_bins // self.patch_size, self.audio_length // self.patch_size

    @property
    def visual_grid_size(self) -> tuple[int, int]:
        return self.image_size // self.patch_size, self.image_size // self.patch_size

    @property
    def num_audio_patches(self) -> int:
        rows, cols = self.audio_grid_size
        return rows * cols

    @property
    def num_visual_patches(self) -> int:
        rows, cols = self.visual_grid_size
        return rows * cols

    def validate_architecture(self):
        """Shapes the model cannot be built with fail here, at config time, with the reason."""
        super().validate_architecture()
        for name in ("audio_length", "num_mel_bins", "image_size"):
            if getattr(self, name) % self.patch_size:
                raise ValueError(
                    f"`{name}` ({getattr(self, name)}) must be a multiple of `patch_size` ({self.patch_size})."
                )
        for width, heads, prefix in (
            (self.hidden_size, self.num_attention_heads, ""),
            (self.decoder_hidden_size, self.decoder_num_attention_heads, "decoder_"),
        ):
            if width % heads:
                raise ValueError(
                    f"`{prefix}hidden_size` ({width}) must be divisible by `{prefix}num_attention_heads` ({heads})."
                )
        for width, prefix in ((self.hidden_size, ""), (self.decoder_hidden_size, "decoder_")):
            if width % 4:
                raise ValueError(
                    f"`{prefix}hidden_size` ({width}) must be divisible by 4 for the 2-D sin-cos tables."
                )
        if self.num_shared_layers < 1:
            raise ValueError(
                "`num_shared_layers` must be at least 1 (the joint stream needs a shared layer)."
            )
        for name in ("mask_ratio_audio", "mask_ratio_visual"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {getattr(self, name)}.")
        for setting in LOSS_SETTINGS:
            if setting.positive and getattr(self, setting.name) <= 0:
                raise ValueError(f"`{setting.name}` must be positive, got {getattr(self, setting.name)}.")


__all__ = ["LGCavMaeConfig"]
