"""The triplet dataset schema: the columns of a row and their features, and the failure reasons
(docs/architecture.md, "The triplet dataset"); where rows are stored is :mod:`avt_triplets.layout`'s.

Every part of the project that reads or writes triplets goes through these names, so the
schema is defined once.
"""

from __future__ import annotations

import datasets

AUDIO_SAMPLING_RATE = 16_000
FRAME_SHORT_SIDE = 224

# Version of the row columns: 2 added ``original_start_s``. An output keeps the layout its manifest records (1 for
# manifests older than the key), so a resumed output never mixes shards with different columns.
ROW_LAYOUT = 2
MEDIA_COLUMNS = ("audio", "frames")
# What captioning and scoring add to a row; absent (not null) in a `--captioner none` output, so a column that
# exists always holds data and readers test for a column, never for nulls in it.
CAPTION_COLUMNS = ("captions", "caption_scores", "caption", "caption_index", "clap_score", "text_embedding")


def has_captions(column_names) -> bool:
    """Whether rows with these columns are captioned triplets (False: labelled clips of `--captioner none`)."""
    return "clap_score" in set(column_names)


SPLIT_COLUMN = "split"  # `--split all` outputs only: the input list's split of each clip


def triplet_features(
    with_media: bool = True,
    with_captions: bool = True,
    with_split: bool = False,
    row_layout: int = ROW_LAYOUT,
) -> datasets.Features:
    """Features of one triplet row; ``with_media=False`` is the copyright-safe metadata-only export,
    ``with_captions=False`` a labelled-only output (``avt generate --captioner none``: no ``CAPTION_COLUMNS``),
    ``with_split`` an output of ``--split all`` (the list's ``split`` column, after ``labels``), ``row_layout`` 1
    the columns of outputs started before ``original_start_s``."""
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
        columns = {name: feature for name, feature in columns.items() if name not in CAPTION_COLUMNS}
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
