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
    from avt_triplets.audio_captioners import check_audio_captioner_options
    from avt_triplets.devices import check_device

    check_device(models.device)
    captioners.check_captioner_options(models.captioner, models.dtype, models.caption_unit)
    check_audio_captioner_options(models.audio_captioner)
    check_caption_kind_options(models)
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


def load_audio_captioner_from(models: ModelOptions, device):
    """The ``--audio-captioner`` (same ``--dtype`` and ``--max-new-tokens`` as the captioner)."""
    from avt_triplets.audio_captioners import load_audio_captioner

    return load_audio_captioner(
        models.audio_captioner,
        prompt=models.audio_caption_prompt,
        device=device,
        dtype=models.dtype,
        max_new_tokens=models.max_new_tokens,
        revision=models.audio_captioner_revision,
        windows=models.audio_caption_windows,
    )


def check_caption_kind_options(models: ModelOptions) -> None:
    """``--visual-scorer``, ``--av-captioner``, ``--av-caption-from``: sources and local folders' model types."""
    from avt_triplets.av_captioners import check_av_captioner_options
    from avt_triplets.caption_mergers import check_merger_options
    from avt_triplets.visual_scorers import check_visual_scorer_options

    if models.visual_scorer is not None:
        check_visual_scorer_options(models.visual_scorer, models.visual_scorer_revision)
    if models.av_captioner is not None:
        check_av_captioner_options(models.av_captioner, models.av_captioner_revision)
    if models.av_caption_from is not None:
        check_merger_options(
            models.av_caption_from, models.av_caption_prompt, models.av_caption_from_revision
        )


def load_visual_scorer_from(models: ModelOptions, device):
    """The ``--visual-scorer`` (same ``--dtype`` as the captioner)."""
    from avt_triplets.visual_scorers import load_visual_scorer

    return load_visual_scorer(
        models.visual_scorer, device=device, dtype=models.dtype, revision=models.visual_scorer_revision
    )


def load_av_captioner_from(models: ModelOptions, device):
    """The ``--av-captioner`` (same ``--dtype`` and ``--max-new-tokens`` as the captioner)."""
    from avt_triplets.av_captioners import load_av_captioner

    return load_av_captioner(
        models.av_captioner,
        prompt=models.av_caption_prompt,
        device=device,
        dtype=models.dtype,
        revision=models.av_captioner_revision,
        max_new_tokens=models.max_new_tokens,
        candidates=models.av_captions,
    )


def load_caption_merger_from(models: ModelOptions, device):
    """The LLM of ``--av-caption-from llm:MODEL`` (same ``--dtype`` and ``--max-new-tokens`` as the captioner)."""
    from avt_triplets.caption_mergers import load_caption_merger

    return load_caption_merger(
        models.av_caption_from,
        prompt=models.av_caption_prompt,
        device=device,
        dtype=models.dtype,
        revision=models.av_caption_from_revision,
        max_new_tokens=models.max_new_tokens,
    )


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


__all__ = [
    "check_model_options",
    "labels_only",
    "check_caption_kind_options",
    "load_audio_captioner_from",
    "load_av_captioner_from",
    "load_caption_merger_from",
    "load_visual_scorer_from",
    "load_captioner_from",
    "load_models",
    "load_scorer_from",
]
