"""Loading the captioner and scorer of a run from :class:`~avt_triplets.options.ModelOptions`.

The model host (:mod:`avt_triplets.model_host`) calls these: in this process for the ``local`` and ``accelerate``
distributors, inside each captioner / scorer replica for the ``ray`` distributor (on the GPU share Ray gave it).
"""

from __future__ import annotations

from avt_triplets import captioners, scorers
from avt_triplets.captioners import Captioner
from avt_triplets.options import ModelOptions
from avt_triplets.scorers import AudioTextScorer


def check_model_options(models: ModelOptions) -> None:
    """Model options that cannot work (missing local paths, unknown scorer, dtype or device), before anything loads."""
    from avt_triplets.devices import check_device

    check_device(models.device)
    captioners.check_captioner_options(models.captioner, models.dtype, models.caption_unit)
    scorers.check_scorer_options(models.scorer, models.scorer_weights, models.scorer_text_model)


def load_captioner_from(models: ModelOptions, device) -> Captioner:
    captioner = captioners.load_captioner(
        models.captioner,
        prompt=models.caption_prompt,
        device=device,
        dtype=models.dtype,
        max_new_tokens=models.max_new_tokens,
        revision=models.captioner_revision,
        image_size=models.caption_image_size,
        clip_prompts=models.clip_prompts,
    )
    if models.caption_compile:
        from avt_triplets.caption_compile import compile_captioner

        compile_captioner(captioner)
    return captioner


def load_scorer_from(models: ModelOptions, device) -> AudioTextScorer:
    return scorers.load_scorer(
        models.scorer,
        weights=models.scorer_weights,
        text_model=models.scorer_text_model,
        device=device,
        revision=models.scorer_revision,
    )


def load_models(models: ModelOptions, device=None) -> tuple[Captioner, AudioTextScorer]:
    """The captioner and scorer on ``device`` (default: ``models.device``, else this process's: accelerate's, or
    the srun task's GPU)."""
    if device is None:
        from avt_triplets.devices import process_device

        device = process_device(models.device)
    return load_captioner_from(models, device), load_scorer_from(models, device)


def labels_only(
    captioner: Captioner | None, scorer: AudioTextScorer | None, models: ModelOptions | None
) -> bool:
    """A run without models: none given, and ``models`` says ``--captioner none``."""
    return captioner is None and scorer is None and models is not None and models.labels_only


__all__ = ["check_model_options", "labels_only", "load_captioner_from", "load_models", "load_scorer_from"]
