"""``--visual-scorer``: a CLIP-style image-text model picks each clip's visual caption (issue 21 §1).

A clip's frames are captioned one by one; LG-CAV-MAE keeps the caption CLAP matches best to the *audio*
(``caption``). The visual caption of an AVCaps-style triplet should instead be the one that describes the *picture*
best, so a CLIP-style model scores every frame caption against its own frame (cosine of the normalised image and
text embeddings, what ``CLIPModel``'s forward returns) and ``visual_caption`` is the caption of the best pair.
Without ``--visual-scorer`` the visual caption is the CLAP-chosen one, as before, so nothing changes unless asked.

The model loads through :mod:`avt_triplets.extra_models` (source check, model type, one-line errors, identity);
:func:`check_visual_scorer` probes it on a synthetic frame before any video is decoded: a score that is not finite
(NaN weights) refuses the run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from avt_core.errors import RunAborted
from avt_triplets.extra_models import ModelIdentity, ModelSpec, check_source_type, load_checked

if TYPE_CHECKING:
    import torch


def _spec() -> ModelSpec:
    from transformers import AutoModel, AutoProcessor

    return ModelSpec(
        option="--visual-scorer",
        model_types=("clip",),
        kind="a CLIP image-text model (CLIPModel)",
        load_model=AutoModel.from_pretrained,
        load_processor=AutoProcessor.from_pretrained,
    )


class ClipVisualScorer:
    """Scores (frame, caption) pairs with a CLIP-style model; one forward pass per batch of pairs."""

    def __init__(self, model: Any, processor: Any, identity: ModelIdentity):
        self.model, self.processor, self.identity = model, processor, identity
        self.name = identity.name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def record(self) -> dict[str, Any]:
        """The manifest's ``visual_scorer`` record."""
        return self.identity.record()

    def score_pairs(self, frames: Sequence[Any], captions: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each frame with the caption at the same position (float32, one per pair)."""
        import torch

        if len(frames) != len(captions):
            raise ValueError(f"{len(frames)} frames but {len(captions)} captions")
        inputs = self.processor(
            text=list(captions), images=list(frames), return_tensors="pt", padding=True, truncation=True
        )
        dtype = next(self.model.parameters()).dtype
        inputs = {
            k: v.to(self.device, dtype if v.is_floating_point() else v.dtype) for k, v in inputs.items()
        }
        with torch.inference_mode():
            outputs = self.model(**inputs)
        pairs = (outputs.image_embeds * outputs.text_embeds).sum(-1)
        return pairs.float().cpu().numpy()

    def choose(self, frames: Sequence[Any], captions: Sequence[str]) -> tuple[int, np.ndarray]:
        """The index of the best (frame, caption) pair (first on ties) and every pair's score."""
        scores = self.score_pairs(frames, captions)
        return int(np.argmax(scores)), scores


def check_visual_scorer_options(name_or_path: str | os.PathLike, revision: str | None = None) -> None:
    """The cheap pre-run checks of ``--visual-scorer`` (:class:`UsageError`)."""
    check_source_type(_spec(), name_or_path, revision)


def load_visual_scorer(
    name_or_path: str | os.PathLike, *, device: Any = None, dtype: Any = None, revision: str | None = None
) -> ClipVisualScorer:
    """Load a CLIP-style model as a visual scorer; dtype as the captioner's (bf16 on GPU, fp32 on CPU)."""
    from avt_triplets.captioners import resolve_dtype
    from avt_triplets.devices import default_device

    device = default_device(device)
    model, processor, identity = load_checked(
        _spec(), name_or_path, device=device, dtype=resolve_dtype(dtype, device), revision=revision
    )
    return ClipVisualScorer(model, processor, identity)


def check_visual_scorer(scorer: ClipVisualScorer) -> float:
    """Score a synthetic frame against a caption; returns the score, or :class:`RunAborted` naming the model when
    it fails or is not finite (the run would pick visual captions at random)."""
    from avt_triplets.preflight import synthetic_frame

    try:
        score = float(scorer.score_pairs([synthetic_frame(64)], ["a red square on a gradient"])[0])
    except Exception as error:  # noqa: BLE001 - any failure means the scorer can't run
        raise RunAborted(
            f"the visual scorer {scorer.name!r} fails on a synthetic frame, before any video was decoded: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not np.isfinite(score):
        raise RunAborted(
            f"the visual scorer {scorer.name!r} scores a synthetic frame as {score}, before any video was decoded: "
            "its weights or --dtype give no usable similarity"
        )
    return score


__all__ = [
    "ClipVisualScorer",
    "check_visual_scorer",
    "check_visual_scorer_options",
    "load_visual_scorer",
]
