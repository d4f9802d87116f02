"""What a generation run checks before it spends GPU time, so mistakes cost seconds, not a model load.

1. Before any model loads (the options checked their own values when built), once per run, by
   :func:`~avt_triplets.run_plan.plan_run` with the parts here: the input (:func:`resolve_inputs`: a folder or
   list that yields clips, finite start times, paths inside the input root; :func:`check_missing_videos`: a
   list's videos that are missing, counted with one stat each: none there is an error), the output folder
   (new, empty or an avt output, writable) and, when resuming, the options recorded in its manifest.
   Problems are :class:`~avt_core.errors.UsageError`\\ s.
2. :func:`check_models`, after the models load and before any video is decoded: the captioner captions two
   synthetic frames (an empty caption fails too: a model that loads but produces nothing) and the scorer embeds one synthetic clip and that caption. A model that fails here would
   fail on every clip, so the run stops with :class:`~avt_core.errors.RunAborted` naming the model and
   the exception, instead of recording every clip as failed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from avt_core import storage
from avt_core.errors import RunAborted, UsageError
from avt_triplets.inputs import VIDEO_EXTENSIONS, ClipSpec, InputSet, check_unique, load_inputs
from avt_triplets.missing_videos import find_missing
from avt_triplets.model_inputs import (
    audio_inputs,
    audio_preprocessor_of,
    caption_rows,
    embed_audio_inputs,
    frame_inputs,
    image_preprocessor_of,
)
from avt_triplets.options import GenerationOptions
from avt_triplets.selection import is_empty_caption

logger = logging.getLogger(__name__)


def resolve_inputs(
    inputs: str | os.PathLike | Sequence[ClipSpec] | InputSet, options: GenerationOptions
) -> InputSet:
    """The clips of a folder, a list file, an already loaded :class:`InputSet` or a list of clip specs."""
    if isinstance(inputs, InputSet):
        return inputs
    if isinstance(inputs, str | os.PathLike):
        with storage.access_refusals_as_usage_errors(inputs):
            return load_inputs(
                inputs,
                input_root=options.input_root,
                path_template=options.path_template,
                trimmed=options.trimmed,
                limit=options.limit,
                allow_absolute_paths=options.allow_absolute_paths,
                split=options.split,
                label_csv=options.label_csv,
                storage_options=options.storage_options,
                clip_seconds=options.clip_seconds,
            )
    clips = list(inputs)[: options.limit] if options.limit is not None else list(inputs)
    check_unique(clips)
    return InputSet(clips=clips, root=Path.cwd(), source="<clip list>")


def check_missing_videos(input_set: InputSet, max_fraction: float) -> InputSet:
    """A list's clips with how many of their videos are missing (one stat each, once per input set, logged);
    :class:`UsageError` when none is there (unless ``max_fraction`` is 1), before any model loads."""
    if not input_set.is_list or input_set.missing is not None:
        return input_set
    sources = [clip.source for clip in input_set.clips]
    missing = find_missing(sources, input_set.root, input_set.path_template, VIDEO_EXTENSIONS)
    if missing is None:
        return input_set
    logger.info("%s", missing.count_line())
    if missing.missing == missing.total and max_fraction < 1.0:
        raise UsageError(missing.error_line(max_fraction))
    return replace(input_set, missing=missing)


def synthetic_frame(size: int = 224) -> Any:
    """An RGB gradient with a square in it: a frame any captioner can take."""
    from PIL import Image

    ramp = np.linspace(0, 255, size, dtype=np.float32)
    pixels = np.stack(
        [np.add.outer(ramp, ramp) / 2, np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size))], -1
    )
    pixels[size // 4 : size // 2, size // 4 : size // 2] = (230, 40, 40)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def synthetic_audio(sampling_rate: int, seconds: float) -> np.ndarray:
    """A 440 Hz tone with a little noise, mono float32: audio any scorer can take."""
    t = np.arange(max(1, round(sampling_rate * seconds))) / sampling_rate
    noise = np.random.default_rng(0).standard_normal(t.size)
    return (0.2 * np.sin(2 * np.pi * 440.0 * t) + 0.01 * noise).astype(np.float32)


def _abort(role: str, model: Any, error: BaseException) -> RunAborted:
    name = getattr(model, "name", type(model).__name__)
    return RunAborted(
        f"the {role} {name!r} fails on a synthetic test input, before any video was decoded: "
        f"{type(error).__name__}: {error}"
    )


def probe_frames() -> list[np.ndarray]:
    """Two different synthetic frames (the gradient and its mirror image in other colours)."""
    frame = np.asarray(synthetic_frame())
    return [frame, np.ascontiguousarray(frame[:, ::-1, ::-1])]


def _probe_captions(captioner: Any) -> list[str]:
    """The captions of the synthetic frames: each frame's (as the decode workers prepare them), or with
    ``--caption-unit clip`` the frames as one video with each clip prompt."""
    if captioner.caption_unit == "clip":
        captions = [captioner.caption_video(probe_frames(), 1.0, p) for p in captioner.clip_prompts]
        if not captions or not all(isinstance(c, str) for c in captions):
            raise ValueError(f"expected one caption string per clip prompt, got {captions!r}")
        return captions
    frames = frame_inputs(probe_frames(), image_preprocessor_of(captioner))
    rows = [frames.row(k) for k in range(frames.num_unique)]
    captions = caption_rows(captioner, rows, frames.preprocessed)
    if len(captions) != frames.num_unique or not all(isinstance(c, str) for c in captions):
        raise ValueError(f"expected one caption string per image, got {captions!r}")
    return captions


def check_captioner(captioner: Any) -> str:
    """Caption two synthetic frames, preprocessed as the decode workers will (:mod:`avt_triplets.model_inputs`;
    with ``--caption-unit clip``: the two as one video, with each clip prompt); returns the first caption, or
    raises :class:`RunAborted` naming the captioner. A captioner that loads but produces nothing (NaN weights,
    only end-of-sequence tokens) captions them as empty strings: it is refused here, before any video is decoded,
    instead of filling the dataset with empty captions."""
    try:
        captions = _probe_captions(captioner)
    except Exception as error:  # noqa: BLE001 - any failure means the captioner can't run
        raise _abort("captioner", captioner, error) from error
    if any(is_empty_caption(c) for c in captions):
        name = captioner.name
        raise RunAborted(
            f"the captioner {name!r} captions synthetic test frames as {captions!r}, before any video was decoded: "
            "it loads but produces no caption (NaN weights, or only end-of-sequence/special tokens); check the "
            "checkpoint, --dtype and --max-new-tokens"
        )
    return captions[0]


def check_scorer(scorer: Any, clip_seconds: float, caption: str = "a test caption") -> None:
    """Embed one synthetic clip (prepared as the decode workers will) and ``caption``; :class:`RunAborted`
    naming the scorer if that fails."""
    try:
        clip = synthetic_audio(int(scorer.sampling_rate), clip_seconds)
        audio = embed_audio_inputs(scorer, [audio_inputs(clip, audio_preprocessor_of(scorer))])
        text = np.asarray(scorer.embed_text([caption or "a test caption"]))
        if audio.shape[0] != 1 or text.shape[0] != 1 or audio.shape[-1] != text.shape[-1]:
            raise ValueError(f"embedding shapes do not match: audio {audio.shape}, text {text.shape}")
        if not (np.isfinite(audio).all() and np.isfinite(text).all()):
            raise ValueError("embeddings are not finite")
    except Exception as error:  # noqa: BLE001 - any failure means the scorer can't run
        raise _abort("scorer", scorer, error) from error


def check_audio_captioner(captioner: Any, clip_seconds: float) -> str:
    """Caption the windows of one synthetic clip (16 kHz, as stored); returns the first caption, or raises
    :class:`RunAborted` naming the audio captioner (a failure, or only empty captions: a broken model)."""
    from avt_triplets.audio_caption_contract import audio_windows
    from avt_triplets.schema import AUDIO_SAMPLING_RATE

    try:
        windows = audio_windows(synthetic_audio(AUDIO_SAMPLING_RATE, clip_seconds), captioner.windows)
        captions = captioner.caption_audio(windows)
        if len(captions) != len(windows) or not all(isinstance(c, str) for c in captions):
            raise ValueError(f"expected one caption string per audio window, got {captions!r}")
    except Exception as error:  # noqa: BLE001 - any failure means the audio captioner can't run
        raise _abort("audio captioner", captioner, error) from error
    if all(is_empty_caption(c) for c in captions):
        raise RunAborted(
            f"the audio captioner {captioner.name!r} captions a synthetic test clip as {captions!r}, before any "
            "video was decoded: it loads but produces no caption (NaN weights, or only end-of-sequence tokens)"
        )
    return captions[0]


def check_models(captioner: Any, scorer: Any, clip_seconds: float) -> None:
    """Caption one synthetic frame and score one synthetic clip; :class:`RunAborted` if a model fails."""
    check_scorer(scorer, clip_seconds, check_captioner(captioner))


__all__ = [
    "check_audio_captioner",
    "check_captioner",
    "check_missing_videos",
    "check_models",
    "check_scorer",
    "resolve_inputs",
    "synthetic_audio",
    "synthetic_frame",
]
