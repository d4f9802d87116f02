"""The triplet dataset schema and the on-disk layout of a generation output (docs/architecture.md,
"The triplet dataset").

Every part of the project that reads or writes triplets goes through these names, so the
schema is defined once.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from avt_core.storage import as_path

AUDIO_SAMPLING_RATE = 16_000
FRAME_SHORT_SIDE = 224

# On-disk layout of a generation output (``avt generate --output-dir DIR``):
#   DIR/README.md                   dataset card; its YAML ``configs`` make ``load_dataset(DIR[, cfg])`` work
#   DIR/manifest.json               the run's options and input list digest (a rerun must match them)
#   DIR/data/shard-00000.parquet    triplet rows of shard 0 (written atomically)
#   DIR/failures/shard-00000.parquet  clips of shard 0 that could not be used: clip_id, video_path, reason, detail
#   DIR/stats/shard-00000_stats.json  written last and atomically: the shard is done once it exists (it records
#                                   each file's size and sha256; a shard whose files differ is redone)
#   DIR/subsets.json                the top-k / random-k configs written by ``avt filter``
#   DIR/.parts/shard-00000/         finished chunks of an uncommitted shard (ray distributor; hidden from
#                                   load_dataset, removed once the shard is committed)
DATA_DIR = "data"
FAILURES_DIR = "failures"
STATS_DIR = "stats"
PARTS_DIR = ".parts"
MANIFEST_FILE = "manifest.json"
# ``format`` of manifest.json; a folder whose manifest carries it is an avt output avt may write into.
MANIFEST_FORMAT = "avt-triplets/1"
SUBSETS_FILE = "subsets.json"
CARD_FILE = "README.md"

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


def shard_name(index: int) -> str:
    """File stem of shard ``index``; zero-padded so lexical order is shard order."""
    return f"shard-{index:05d}"


def data_path(root: str | Path, index: int) -> Path:
    return as_path(root) / DATA_DIR / f"{shard_name(index)}.parquet"


def failures_path(root: str | Path, index: int) -> Path:
    return as_path(root) / FAILURES_DIR / f"{shard_name(index)}.parquet"


def stats_path(root: str | Path, index: int) -> Path:
    return as_path(root) / STATS_DIR / f"{shard_name(index)}_stats.json"


def parts_dir(root: str | Path, index: int) -> Path:
    """Where the finished chunks of shard ``index`` wait for the shard's commit."""
    return as_path(root) / PARTS_DIR / shard_name(index)


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
