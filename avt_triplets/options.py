"""Every setting of a generation run, with its default, its help and its `avt generate` flag, in one place.

``GenerationOptions`` is what :func:`avt_triplets.pipeline.generate_triplets` takes; ``ModelOptions`` says which
captioner and scorer `avt generate` loads. Fields made with :func:`~avt_triplets.cli_fields.cli_field` are the
command's options (see :mod:`avt_triplets.commands.generate`); the others are for library users and tests.
Standard library only, so ``avt generate --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from avt_triplets.cli_fields import cli_field, non_negative_int, positive_float, positive_int
from avt_triplets.inputs import DEFAULT_PATH_TEMPLATE

DEFAULT_CAPTIONER = "Salesforce/blip2-opt-2.7b"
DEFAULT_SCORER = "msclap:2023"
DEFAULT_MAX_NEW_TOKENS = 30


@dataclass
class ModelOptions:
    """The models of a run: what `avt generate` loads before any clip is decoded."""

    captioner: str = cli_field(
        DEFAULT_CAPTIONER,
        "Image captioner: any image-text-to-text Hub id or local folder (BLIP-2, LLaVA-1.5, ...).",
        group="models",
    )
    captioner_revision: str | None = cli_field(
        None, "Hub branch, tag or commit of --captioner.", group="models"
    )
    caption_prompt: str | None = cli_field(
        None,
        "Prompt for chat captioners (e.g. LLaVA), or a text prefix for BLIP-2. None: the backend's default.",
        group="models",
    )
    max_new_tokens: int = cli_field(
        DEFAULT_MAX_NEW_TOKENS,
        "Longest caption, in tokens (greedy decoding).",
        group="models",
        type=positive_int,
    )
    dtype: str | None = cli_field(
        None,
        "Captioner dtype (bfloat16, float16, float32). None: bfloat16 on GPU, float32 on CPU.",
        group="models",
    )
    scorer: str = cli_field(
        DEFAULT_SCORER,
        "Audio-text scorer: 'msclap:2023' (the paper's Microsoft CLAP) or a transformers CLAP id/folder "
        "such as laion/clap-htsat-unfused.",
        group="models",
    )
    scorer_revision: str | None = cli_field(
        None, "Hub branch, tag or commit of a transformers CLAP --scorer.", group="models"
    )
    scorer_weights: str | None = cli_field(
        None,
        "msclap only: a local CLAP_weights_2023.pth (or a folder holding it) instead of downloading it.",
        group="models",
        metavar="PATH",
    )
    scorer_text_model: str | None = cli_field(
        None,
        "msclap only: a local GPT-2 folder for its text encoder instead of downloading 'gpt2'.",
        group="models",
        metavar="PATH",
    )
    device: str | None = cli_field(
        None, "Device for the models. None: this process's accelerate device.", group="models"
    )


@dataclass
class GenerationOptions:
    """Every knob of a run. Those in ``shards.IDENTITY_KEYS`` must match when resuming an output."""

    fps: float = cli_field(1.0, "Frames captioned per second of clip.", group="clips", type=positive_float)
    clip_seconds: float = cli_field(
        10.0, "Clip length from each start_s.", group="clips", type=positive_float
    )
    limit: int | None = cli_field(
        None, "Only the first N clips of the (sorted) input.", group="clips", type=positive_int, metavar="N"
    )
    input_root: str | None = cli_field(
        None,
        "Folder that list paths are relative to (clip ids and video paths are stored relative to it). "
        "None: the list file's folder.",
        group="clips",
    )
    allow_absolute_paths: bool = cli_field(
        False,
        "Accept list paths outside --input-root and store them as absolute paths (they then appear in "
        "clip_id and video_path of the dataset, which may be published).",
        group="clips",
    )
    path_template: str = cli_field(
        DEFAULT_PATH_TEMPLATE,
        "Local file of a ytid,start row, relative to the input root; fields {ytid}, {start} (int) and "
        "{start_s} (float).",
        group="clips",
    )
    trimmed: bool = cli_field(
        True,
        "ytid,start rows point at full-length videos: cut the window at start (default: files are "
        "already-trimmed clips, decoded from 0).",
        group="clips",
        flag="--untrimmed",
    )
    shard_size: int = cli_field(
        1000, "Clips per output shard (the unit of resuming).", group="run", type=positive_int
    )
    num_workers: int | None = cli_field(
        None,
        "CPU decode worker processes per GPU process (0: decode inline). None: cores per process - 1, at most 8.",
        group="run",
        type=non_negative_int,
    )
    caption_batch_size: int = cli_field(32, "Frames per captioner call.", group="run", type=positive_int)
    score_batch_size: int = cli_field(
        64, "Clips (audio) or captions (text) per scorer call.", group="run", type=positive_int
    )
    retry_failed: bool = cli_field(
        False, "Also rerun clips recorded in finished shards' failure tables.", group="run"
    )
    overwrite: bool = cli_field(
        False, "Delete an existing output's shards and start over (only in a folder avt wrote).", group="run"
    )
    seed: int = cli_field(0, "Seed (per shard: seed + shard index) for any sampling.", group="run", type=int)
    progress: bool = cli_field(True, "No progress bar.", group="run", flag="--no-progress")
    # Library-only settings.
    prefetch: int | None = None  # decoded clips queued per worker; None: enough to cover one batch cycle
    jpeg_quality: int = 95
    decoder_threads: int = 1
    write_card: bool = True
    rank: int | None = None  # None: from accelerate.PartialState()
    world_size: int | None = None


__all__ = [
    "DEFAULT_CAPTIONER",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_SCORER",
    "GenerationOptions",
    "ModelOptions",
]
