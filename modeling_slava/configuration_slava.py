"""SLAVA configuration: which frozen towers, how wide the trained projections are, which loss recipe.

The towers are *references* (Hub ids or folders, with the commit they were trained against), never weights:
a saved SLAVA holds three projections and a temperature, and loads its towers from those references.
"""

from typing import Any, Literal

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

Variant = Literal["a&v", "av", "av+avloss", "audioclip", "wav2clip"]
AudioBackend = Literal["clap", "msclap"]
VARIANTS: tuple[str, ...] = ("a&v", "av", "av+avloss", "audioclip", "wav2clip")
AUDIO_BACKENDS: tuple[str, ...] = ("clap", "msclap")


@strict
class SlavaConfig(PreTrainedConfig):
    r"""
    Configuration of [`SlavaModel`]: three frozen pretrained towers aligned by training one linear projection each
    (SLAVA, Sudarsanam et al. 2025, "Representation Learning for Semantic Alignment of Language, Audio, and Visual
    Modalities").

    Towers:
        vision_model_name_or_path: a CLIP checkpoint (Hub id or folder) whose vision tower encodes every frame;
            frame features are averaged over the clip (paper: CLIP ViT-B/32, 768-d pooled CLS states).
        text_model_name_or_path: the CLIP checkpoint of the text tower (default: the vision checkpoint).
        audio_model_name_or_path: a transformers CLAP checkpoint (`audio_backend="clap"`, e.g.
            `laion/clap-htsat-unfused`, 10 s windows at 48 kHz) or msclap weights (`audio_backend="msclap"`: a
            `CLAP_weights_2023.pth` file or folder, None = msclap's own download; 7 s windows at 44.1 kHz). Window
            features are averaged over the clip.
        *_revision: the Hub commit each tower is loaded from (recorded at training time; None for folders).
        vision_tower_config / text_tower_config / audio_tower_config: the towers' own configs, embedded for
            reference (architecture, sizes) so a checkpoint documents what it was trained against.
        vision_hidden_size / text_hidden_size / audio_hidden_size: width of the pooled tower features, the input
            of each projection.
        audio_sampling_rate / audio_window_seconds: the audio tower's input rate and window length.

    Projections and loss:
        projection_dim: shared embedding size (paper: 512).
        projection_bias: CLIP's projections have no bias; keeping that lets them start from CLIP's own.
        temperature: InfoNCE temperature (CLIP's 0.07 initial value).
        temperature_learnable: learn it as CLIP does (log-scale parameter, clamped at `max_logit_scale`).
        variant: the training recipe (`a&v`, `av`, `av+avloss`, `audioclip`, `wav2clip`); see `losses_slava`.
    """

    model_type = "slava"

    vision_model_name_or_path: str | None = None
    text_model_name_or_path: str | None = None
    audio_model_name_or_path: str | None = None
    audio_backend: AudioBackend = "clap"
    vision_model_revision: str | None = None
    text_model_revision: str | None = None
    audio_model_revision: str | None = None
    vision_tower_config: dict[str, Any] | None = None
    text_tower_config: dict[str, Any] | None = None
    audio_tower_config: dict[str, Any] | None = None
    vision_hidden_size: int = 768
    text_hidden_size: int = 512
    audio_hidden_size: int = 768
    audio_sampling_rate: int = 48_000
    audio_window_seconds: float = 10.0
    projection_dim: int = 512
    projection_bias: bool = False
    temperature: float = 0.07
    temperature_learnable: bool = True
    max_logit_scale: float = 100.0
    variant: Variant = "a&v"

    def __post_init__(self, **kwargs):
        if self.text_model_name_or_path is None:
            self.text_model_name_or_path = self.vision_model_name_or_path
            if self.text_model_revision is None:
                self.text_model_revision = self.vision_model_revision
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Settings the model cannot be built with fail here, with the reason."""
        super().validate_architecture()
        if self.variant not in VARIANTS:
            raise ValueError(f"`variant` must be one of {VARIANTS}, got {self.variant!r}.")
        if self.audio_backend not in AUDIO_BACKENDS:
            raise ValueError(f"`audio_backend` must be one of {AUDIO_BACKENDS}, got {self.audio_backend!r}.")
        if self.temperature <= 0:
            raise ValueError(f"`temperature` must be positive, got {self.temperature}.")
        for name in ("vision_hidden_size", "text_hidden_size", "audio_hidden_size", "projection_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)}.")

    def tower_references(self) -> dict[str, tuple[str | None, str | None]]:
        """`{"vision" | "text" | "audio": (name_or_path, revision)}`."""
        return {
            "vision": (self.vision_model_name_or_path, self.vision_model_revision),
            "text": (self.text_model_name_or_path, self.text_model_revision),
            "audio": (self.audio_model_name_or_path, self.audio_model_revision),
        }


__all__ = ["AUDIO_BACKENDS", "VARIANTS", "SlavaConfig"]
