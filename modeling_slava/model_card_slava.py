"""Generated model card (README.md) for a saved SLAVA folder or Hub repo.

A SLAVA checkpoint holds only projections and a temperature; what makes it usable is knowing which frozen towers
(and which commits of them) it was trained against, so the card spells those out. Relative imports only: this
module travels with the checkpoint as remote code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

TAGS = ["audio-visual", "text", "slava", "clip", "clap", "contrastive-learning"]

_CITATION = """SLAVA: *Representation Learning for Semantic Alignment of Language, Audio, and Visual Modalities*
(Sudarsanam, Martín-Morató, Virtanen, 2025; arXiv:2505.14562).

```bibtex
@misc{sudarsanam2025slava,
  title         = {Representation Learning for Semantic Alignment of Language, Audio, and Visual Modalities},
  author        = {Sudarsanam, Parthasaarathy and Martín-Morató, Irene and Virtanen, Tuomas},
  year          = {2025},
  eprint        = {2505.14562},
  archivePrefix = {arXiv}
}
```"""

_TOWER_ROLES = {
    "vision": "CLIP vision tower (frame features averaged over the clip)",
    "text": "CLIP text tower (caption features)",
    "audio": "audio tower (window features averaged over the clip)",
}


def tower_lines(config) -> str:
    """One line per frozen tower: what it is, where it loads from, at which commit, how wide its features are."""
    lines = []
    for role, (name, revision) in config.tower_references().items():
        width = getattr(config, f"{role}_hidden_size")
        kind = _TOWER_ROLES[role]
        if role == "audio":
            kind = f"{'transformers CLAP' if config.audio_backend == 'clap' else 'msclap'} {kind}"
        where = f"`{name}`" if name else "msclap's own download"
        at = f"revision `{revision}`" if revision else "no recorded revision (a local folder or default)"
        lines.append(f"- {role}: {where}, {at}; {kind}, {width}-d")
    return "\n".join(lines)


def parameter_line(model) -> str:
    """Trained vs total parameters of the checkpoint, and the frozen towers' size when they are attached."""
    total = sum(p.numel() for p in model.parameters())
    # from the config, not requires_grad: a training stage may have frozen a projection for a while
    trainable = total - (0 if model.config.temperature_learnable else model.logit_scale.numel())
    line = f"{total:,} parameters in this checkpoint, {trainable:,} of them trained (projections"
    line += ", temperature)" if model.config.temperature_learnable else "; the temperature is fixed)"
    if getattr(model, "has_towers", False):
        frozen = sum(p.numel() for p in model.towers.parameters())
        line += f"; the frozen towers add {frozen:,} parameters, loaded from their references"
    return line


def _dataset_lines(feature_cache: list[dict[str, Any]]) -> list[str]:
    lines = []
    for entry in feature_cache:
        captions = ", ".join(f"{k}: `{v}`" for k, v in (entry.get("captions") or {}).items())
        line = f"  - `{entry.get('dataset')}` (split `{entry.get('split')}`): {entry.get('clips')} clips"
        lines.append(line + (f", captions {captions}" if captions else ""))
    return lines


def training_section(summary: dict[str, Any] | None) -> str:
    """Facts of the run from its `train_summary.json`; only named fields, so nothing else (paths of local caches,
    options, credentials) can reach the card."""
    if not summary:
        return ""
    lines = ["## Training", ""]
    if summary.get("feature_cache"):
        lines += ["- datasets (training, then validation):", *_dataset_lines(summary["feature_cache"])]
    lines.append(
        f"- {summary.get('steps')} steps (per stage: {summary.get('stage_steps')}; epochs per stage: "
        f"{summary.get('stage_epochs')}), {summary.get('samples_seen')} samples, global batch "
        f"{summary.get('global_batch_size')} on {summary.get('num_processes')} process(es)"
    )
    lines.append(f"- {summary.get('clips')} training clips, {summary.get('eval_clips', 0)} validation clips")
    if summary.get("best_step") is not None:
        lines.append(
            f"- best validation loss {summary['best_eval_loss']:.4f} at step {summary['best_step']} (kept in "
            "`best/`); this folder holds the final model"
        )
    return "\n".join(lines) + "\n"


def render_model_card(model, training_summary: dict[str, Any] | None = None, repo_id: str = "") -> ModelCard:
    """A card saying which towers the projections belong to, how to load and use them, and how they were trained."""
    config = model.config
    name = repo_id or "path/to/this/folder"
    data = ModelCardData(library_name="transformers", pipeline_tag="feature-extraction", tags=TAGS)
    content = f"""---
{data.to_yaml()}
---

# SLAVA ({config.variant})

SLAVA aligns language, audio and visual modalities by training one linear projection per modality on top of
frozen pretrained towers (CLIP for images and text, CLAP for audio), into a shared {config.projection_dim}-d space
with InfoNCE losses. This checkpoint was trained with the `{config.variant}` recipe.

Frozen towers (not stored here; loaded from these references by `from_pretrained`):

{tower_lines(config)}

- projections: {config.projection_dim}-d, bias {config.projection_bias}; temperature {config.temperature}
  (learnable: {config.temperature_learnable})
- parameters: {parameter_line(model)}

## Usage

```python
from transformers import AutoModel

model = AutoModel.from_pretrained("{name}", trust_remote_code=True)  # also loads the towers
processor = model.get_processor()
inputs = processor(audio=waveforms, images=clip_frames, text=captions)
audio = model.get_audio_features(inputs["audio_values"], inputs["windows_mask"])
visual = model.get_visual_features(inputs["pixel_values"], inputs["frames_mask"])
text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])  # not normalised
```

With the `avt` package installed, `import modeling_slava` registers the classes and `trust_remote_code` is not
needed.

{training_section(training_summary)}
## Citation

{_CITATION}
"""
    return ModelCard(content)


def write_model_card(
    output_dir: str | Path, model, training_summary: dict[str, Any] | None = None, repo_id: str = ""
) -> Path:
    """Write `README.md` into `output_dir` and return its path."""
    path = Path(output_dir) / "README.md"
    render_model_card(model, training_summary, repo_id).save(path)
    return path


__all__ = ["render_model_card", "write_model_card"]
