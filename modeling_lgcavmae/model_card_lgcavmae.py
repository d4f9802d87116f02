"""Generated model card (README.md) for a saved LG-CAV-MAE folder or Hub repo."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

_CITATION = """```bibtex
@inproceedings{gong2023contrastive,
  title     = {Contrastive Audio-Visual Masked Autoencoder},
  author    = {Gong, Yuan and Rouditchenko, Andrew and Liu, Alexander H. and Harwath, David and Karlinsky, Leonid
               and Kuehne, Hilde and Glass, James},
  booktitle = {International Conference on Learning Representations},
  year      = {2023}
}
@inproceedings{ishikawa2025lgcavmae,
  title     = {Language-Guided Contrastive Audio-Visual Masked Autoencoder with Automatically Generated
               Audio-Visual-Text Triplets from Videos},
  author    = {Ishikawa, Yuchi and Nakada, Shota and Munakata, Hokuto and Saito, Kazuhiro and Komatsu, Tatsuya
               and Aoki, Yoshimitsu},
  booktitle = {Interspeech},
  year      = {2025}
}
```"""

_TASKS = {
    "LGCavMaeForPreTraining": ("AutoModelForPreTraining", None),
    "LGCavMaeForAudioVisualClassification": ("AutoModelForAudioClassification", "audio-classification"),
    "LGCavMaeModel": ("AutoModel", "feature-extraction"),
}


def render_model_card(
    model, source: str = "", conversion_report: str | None = None, repo_id: str = ""
) -> ModelCard:
    """A card describing the architecture, how to load the weights, and where they came from."""
    config = model.config
    class_name = type(model).__name__
    auto_class, pipeline_tag = _TASKS.get(class_name, ("AutoModel", None))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    name = repo_id or "path/to/this/folder"
    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=["audio-visual", "cav-mae", "lg-cav-mae", "contrastive-learning", "masked-autoencoder"],
    )
    labels = ""
    if class_name == "LGCavMaeForAudioVisualClassification":
        labels = (
            f"\n- classifier: {config.num_labels} labels, `problem_type={config.problem_type}`, "
            f"`classifier_mode={config.classifier_mode}`"
        )
    report = f"\n## Conversion report\n\n```\n{conversion_report}\n```\n" if conversion_report else ""
    content = f"""---
{data.to_yaml()}
---

# LG-CAV-MAE ({class_name})

{source}

LG-CAV-MAE is CAV-MAE (contrastive audio-visual masked autoencoder) with language guidance: pooled audio and
visual embeddings are projected to a text-embedding space and aligned with caption embeddings (InfoNCE). The
CAV-MAE part reproduces the official `YuanGongND/cav-mae` numerics (masking, shared-layer norms, losses).

- encoder: {config.num_modality_specific_layers} modality-specific + {config.num_shared_layers} shared layer(s),
  width {config.hidden_size}, {config.num_attention_heads} heads; decoder {config.decoder_num_hidden_layers} layers,
  width {config.decoder_hidden_size}
- inputs: `audio_values` [batch, {config.audio_length}, {config.num_mel_bins}] (Kaldi fbank, normalised
  (x + 5.081) / 4.4849), `pixel_values` [batch, {config.num_channels}, {config.image_size}, {config.image_size}]
  (ImageNet mean/std) — use `LGCavMaeProcessor`
- text space: {config.text_embed_dim}-d; contrastive tau {config.contrastive_temperature}, text tau
  {config.text_temperature}
- parameters: {total / 1e6:.3f} M ({trainable / 1e6:.3f} M trainable; the fixed sin-cos tables are frozen
  unless configured otherwise){labels}

## Usage

```python
import modeling_lgcavmae  # registers the Auto classes; or pass trust_remote_code=True instead
from transformers import {auto_class}

model = {auto_class}.from_pretrained("{name}")
audio_features = model.get_audio_features(audio_values)    # retrieval features (mean-pooled, not normalised)
visual_features = model.get_visual_features(pixel_values)
```

Without the `avt` package installed: `{auto_class}.from_pretrained("{name}", trust_remote_code=True)`.
{report}
## Citation

{_CITATION}
"""
    return ModelCard(content)


def write_model_card(
    output_dir: str | Path, model, source: str = "", conversion_report: str | None = None, repo_id: str = ""
) -> Path:
    """Write `README.md` into `output_dir` and return its path."""
    path = Path(output_dir) / "README.md"
    render_model_card(model, source, conversion_report, repo_id).save(path)
    return path


__all__ = ["render_model_card", "write_model_card"]
