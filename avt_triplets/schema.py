"""The triplet dataset schema: the columns of a row and their features, and the failure reasons
(docs/architecture.md, "The triplet dataset"); where rows are stored is :mod:`avt_triplets.layout`'s.

Every part of the project that reads or writes triplets goes through these names, so the
schema is defined once.
"""

from __future__ import annotations

from collections.abc import Iterable

import datasets

AUDIO_SAMPLING_RATE = 16_000
FRAME_SHORT_SIDE = 224

# Version of the row columns: 2 added ``original_start_s``, 3 the visual-caption columns of captioned rows. An output
# keeps the layout its manifest records (1 for manifests older than the key), so a resumed output never mixes shards
# with different columns.
ROW_LAYOUT = 3
MEDIA_COLUMNS = ("audio", "frames")
# What captioning and scoring add to a row; absent (not null) in a `--captioner none` output, so a column that
# exists always holds data and readers test for a column, never for nulls in it.
CAPTION_COLUMNS = ("captions", "caption_scores", "caption", "caption_index", "clap_score", "text_embedding")

# Modality captions (issue 21): one group per caption kind, each optional as a whole. A group's columns are there
# for every row or for none (absent, never null), so readers test for a column, as for CAPTION_COLUMNS.
#   visual: the frame captions themselves (row layout 3, every captioned output; no model beyond the captioner)
#   audio:  an audio-language model's captions of the clip's audio, scored against it by the CLAP scorer
#   av:     captions of audio and frames together (an omni model, or a text model merging the two)
VISUAL_CAPTION_COLUMNS = ("visual_captions", "visual_caption", "visual_text_embedding")
AUDIO_CAPTION_COLUMNS = (
    "audio_captions",
    "audio_caption_scores",
    "audio_caption",
    "audio_caption_score",
    "audio_text_embedding",
)
AV_CAPTION_COLUMNS = ("av_captions", "av_caption")
MODALITY_CAPTION_COLUMNS = VISUAL_CAPTION_COLUMNS + AUDIO_CAPTION_COLUMNS + AV_CAPTION_COLUMNS
# The manifest records of the models (their roles, avt_triplets.model_host.ROLES) whose presence means an output's rows
# carry a caption kind's columns: how the writer of a resumed run knows the columns (shards.recorded_caption_kinds).
# ``av``: either model makes it (the omni AV captioner, or the LLM merging audio and visual captions).
CAPTION_KIND_RECORDS = {"audio": ("audio_captioner",), "av": ("av_captioner", "caption_merger")}
# The CLAP text embedding (same text tower, same normalisation as ``text_embedding``) of each kind's chosen caption:
# what `avt pretrain --text-source modality` contrasts the audio and visual streams with.
MODALITY_TEXT_EMBEDDINGS = {"audio": "audio_text_embedding", "visual": "visual_text_embedding"}

# How each column is made, for the dataset card's column table (one place; the card lists the columns present).
COLUMN_ORIGINS = {
    "clip_id": "path relative to the input root without extension, or `ytid_start` for list inputs",
    "video_path": "the source video, relative to the input root",
    "start_s": "start of the clip window used, in the file",
    "end_s": "end of the clip window used, in the file",
    "original_start_s": "where the window starts in the whole video (the list's start)",
    "audio": "mono 16 kHz, decoded with PyAV",
    "frames": "frames sampled at --fps, JPEG, short side 224",
    "frame_times_s": "time of each frame inside the clip",
    "captions": "one caption per frame (the captioner)",
    "caption_scores": "CLAP cosine of each frame caption with the clip's audio (the scorer)",
    "caption": "the frame caption with the highest CLAP score (LG-CAV-MAE's choice)",
    "caption_index": "the frame of `caption`",
    "clap_score": "CLAP score of `caption`: what `avt filter` ranks by by default",
    "text_embedding": "CLAP text embedding of `caption`, L2-normalised",
    "visual_captions": "the visual captions: the frame captions (`captions`)",
    "visual_caption": "the chosen visual caption: the frame caption with the highest CLAP score (`caption`)",
    "visual_text_embedding": "CLAP text embedding of `visual_caption`, L2-normalised",
    "audio_captions": "captions of the clip's audio by an audio-language model (--audio-captioner)",
    "audio_caption_scores": "CLAP cosine of each audio caption with the clip's audio",
    "audio_caption": "the audio caption with the highest CLAP score",
    "audio_caption_score": "CLAP score of `audio_caption`",
    "audio_text_embedding": "CLAP text embedding of `audio_caption`, L2-normalised",
    "av_captions": "audio-visual captions (an omni model on frames and audio, or a text model merging captions)",
    "av_caption": "the chosen audio-visual caption",
    "labels": "from the input list (empty for a folder)",
    "split": "the input list's split of the clip (--split all)",
    "sample_key": "uniform [0, 1) hash of clip_id: the key of the random{k} subsets",
}
# How the caption columns are made with `avt generate --caption-unit clip` (the manifest's captioner.caption_unit)
CLIP_UNIT_ORIGINS = {
    "captions": "candidate captions of the clip window's frames as one video, one per prompt (the captioner)",
    "caption_scores": "CLAP cosine of each candidate with the clip's audio (the scorer)",
    "caption": "the candidate with the highest CLAP score",
    "caption_index": "the candidate of `caption` (its prompt: manifest captioner.clip_prompts)",
    "visual_captions": "the visual captions: the clip's candidates (`captions`)",
    "visual_caption": "the chosen visual caption: the candidate with the highest CLAP score (`caption`)",
}


def column_origins(caption_unit: str = "frame") -> dict[str, str]:
    """How each column is made (for the card), for an output of ``caption_unit`` ``frame`` or ``clip``."""
    return {**COLUMN_ORIGINS, **(CLIP_UNIT_ORIGINS if caption_unit == "clip" else {})}


def has_captions(column_names) -> bool:
    """Whether rows with these columns are captioned triplets (False: labelled clips of `--captioner none`)."""
    return "clap_score" in set(column_names)


SPLIT_COLUMN = "split"  # `--split all` outputs only: the input list's split of each clip


def modality_caption_features(kinds: Iterable[str]) -> dict[str, datasets.features.FeatureType]:
    """The columns of the caption kinds ``kinds`` (``visual``, ``audio``, ``av``) in schema order."""
    string, score = datasets.Value("string"), datasets.Value("float32")
    every = {
        "visual": {
            "visual_captions": datasets.List(string),
            "visual_caption": string,
            "visual_text_embedding": datasets.List(score),
        },
        "audio": {
            "audio_captions": datasets.List(string),
            "audio_caption_scores": datasets.List(score),
            "audio_caption": string,
            "audio_caption_score": score,
            "audio_text_embedding": datasets.List(score),
        },
        "av": {"av_captions": datasets.List(string), "av_caption": string},
    }
    wanted = set(kinds)
    unknown = wanted - set(every)
    if unknown:
        raise ValueError(f"unknown caption kind(s) {sorted(unknown)}; known: {list(every)}")
    return {name: feature for kind in every if kind in wanted for name, feature in every[kind].items()}


def triplet_features(
    with_media: bool = True,
    with_captions: bool = True,
    with_split: bool = False,
    row_layout: int = ROW_LAYOUT,
    caption_kinds: Iterable[str] = (),
) -> datasets.Features:
    """Features of one triplet row; ``with_media=False`` is the copyright-safe metadata-only export,
    ``with_captions=False`` a labelled-only output (``avt generate --captioner none``: no ``CAPTION_COLUMNS``),
    ``with_split`` an output of ``--split all`` (the list's ``split`` column, after ``labels``), ``row_layout`` 1
    the columns of outputs started before ``original_start_s``, 2 those before the visual-caption columns.
    ``caption_kinds`` adds the columns of further caption kinds (``audio``, ``av``: the models that make them are
    optional); the ``visual`` kind comes with captions from row layout 3 on."""
    columns: dict[str, datasets.features.FeatureType] = {
        "clip_id": datasets.Value("string"),
        "video_path": datasets.Value("string"),
        "start_s": datasets.Value("float32"),
        "end_s": datasets.Value("float32"),
    }
    if row_layout >= 2:
        # where the window starts in the whole video: the list's (YouTube) start, also for a trimmed clip file
        # whose start_s is 0
        columns["original_start_s"] = datasets.Value("float32")
    if with_media:
        columns["audio"] = datasets.Audio(sampling_rate=AUDIO_SAMPLING_RATE)
        columns["frames"] = datasets.List(datasets.Image())
    columns.update(
        {
            "frame_times_s": datasets.List(datasets.Value("float32")),
            "captions": datasets.List(datasets.Value("string")),
            "caption_scores": datasets.List(datasets.Value("float32")),
            "caption": datasets.Value("string"),
            "caption_index": datasets.Value("int32"),
            "clap_score": datasets.Value("float32"),
            "text_embedding": datasets.List(datasets.Value("float32")),
            **modality_caption_features({*caption_kinds, *(("visual",) if row_layout >= 3 else ())}),
            "labels": datasets.List(datasets.Value("string")),
            # uniform [0, 1) hash of clip_id: makes the seeded random-k% subsets exact, small row filters
            # (see avt_triplets.selection.sample_key)
            "sample_key": datasets.Value("float64"),
        }
    )
    if with_split:
        at = list(columns).index("labels") + 1
        items = list(columns.items())
        columns = dict([*items[:at], (SPLIT_COLUMN, datasets.Value("string")), *items[at:]])
    if not with_captions:
        dropped = set(CAPTION_COLUMNS) | set(MODALITY_CAPTION_COLUMNS)
        columns = {name: feature for name, feature in columns.items() if name not in dropped}
    return datasets.Features(columns)


FAILURE_FEATURES = datasets.Features(
    {
        "clip_id": datasets.Value("string"),
        "video_path": datasets.Value("string"),
        "reason": datasets.Value("string"),
        "detail": datasets.Value("string"),
    }
)

# Reasons a clip is recorded as a failure instead of a row (counted in stats and the card).
FAILURE_REASONS = (
    "unreadable_path",  # missing file, permission denied
    "not_media",  # not a container FFmpeg recognises (text file, random bytes, zero bytes)
    "no_audio_stream",
    "no_video_stream",
    "undecodable",  # container opens, but decoding fails (truncated, corrupt)
    "zero_length",  # no audio samples or no frames inside the clip window
    "caption_failed",  # the captioner failed even at batch size 1
    "score_failed",  # the scorer failed even at batch size 1
)
