"""Every setting of a generation run, with its default, its help and its `avt generate` flag, in one place.

``GenerationOptions`` is what :func:`avt_triplets.pipeline.generate_triplets` takes; ``ModelOptions`` says which
captioner and scorer `avt generate` loads. Fields declared with :func:`~avt_core.dataclass_cli.option` are
the command's options (see :mod:`avt_triplets.commands.generate`); the others are for library users and tests.
Values no run can use raise :class:`~avt_core.errors.UsageError` when the dataclass is built, so they are
refused before any model loads. Light imports only, so ``avt generate --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from avt_core.dataclass_cli import (
    json_object,
    num_workers_option,
    option,
    require_non_negative,
    require_positive,
)
from avt_core.errors import UsageError
from avt_triplets.caption_merge_prompt import check_merge_prompt, merger_model
from avt_triplets.inputs import DEFAULT_PATH_TEMPLATE

DEFAULT_CAPTIONER = "Salesforce/blip2-opt-2.7b"
DEFAULT_SCORER = "msclap:2023"
NO_CAPTIONER = "none"  # ``--captioner none``: package clips with their labels, no model loaded
# ModelOptions fields that still mean something without models (the others must keep their defaults then).
_USED_WITHOUT_MODELS = ("captioner",)
DEFAULT_MAX_NEW_TOKENS = 30
MODELS, CLIPS, RUN, RAY = "models", "clips", "run", "ray distributor"
RAY_OPTIONS = (
    "ray_address",
    "captioner_gpus",
    "scorer_gpus",
    "audio_captioner_gpus",
    "visual_scorer_gpus",
    "av_captioner_gpus",
    "caption_merger_gpus",
    "captioner_replicas",
    "scorer_replicas",
)


def batch_size_or_auto(text: str) -> int | str:
    """``--caption-batch-size``: a positive number of frames, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frames or 'auto', got {text!r}") from None


def image_size_or_native(text: str) -> int | str:
    """``--caption-image-size``: a positive short side in pixels, or ``native``."""
    if text.strip().lower() == "native":
        return "native"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'native', got {text!r}") from None


def hwaccel_device(text: str) -> str:
    """``--video-hwaccel``: a hardware device type this FFmpeg build knows (whether it opens is checked later)."""
    from av.codec.hwaccel import hwdevices_available

    if text not in hwdevices_available():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a hardware decoder of this FFmpeg: {hwdevices_available()}"
        )
    return text


@dataclass
class ModelOptions:
    """The models of a run: what `avt generate` loads before any clip is decoded."""

    captioner: str = option(
        DEFAULT_CAPTIONER,
        group=MODELS,
        help="Image captioner: any image-text-to-text Hub id or local folder (BLIP-2, LLaVA-1.5, ...). "
        "'none': no captions and no models at all: clips are decoded and stored with their labels only (for "
        "fine-tuning and evaluation sets such as VGGSound or AudioSet); the caption columns are then absent "
        "and the other model options must stay unset.",
    )
    captioner_revision: str | None = option(
        None, group=MODELS, help="Hub branch, tag or commit of --captioner."
    )
    caption_prompt: str | None = option(
        None,
        group=MODELS,
        help="Prompt for chat captioners (e.g. LLaVA), or a text prefix for BLIP-2. None: the backend's default.",
    )
    max_new_tokens: int = option(
        DEFAULT_MAX_NEW_TOKENS, group=MODELS, help="Longest caption, in tokens (greedy decoding)."
    )
    dtype: str | None = option(
        None,
        group=MODELS,
        help="Captioner dtype (bfloat16, float16, float32). None: bfloat16 on GPU, float32 on CPU.",
    )
    caption_image_size: int | Literal["native"] = option(
        224,
        group=MODELS,
        type=image_size_or_native,
        metavar="N|native",
        help="Short side, in pixels, of the frames the captioner sees. native: the model's own input size, read "
        "from its image processor (a tile for SmolVLM; the decoded video's size for Qwen, which takes any). The "
        "stored frames stay at 224 px either way.",
    )
    caption_compile: bool = option(
        False,
        group=MODELS,
        help="Decode captions with a static KV cache and a torch.compile'd step (CUDA graphs on GPU): faster "
        "after a warm-up of tens of seconds per batch size; same captions.",
    )
    scorer: str = option(
        DEFAULT_SCORER,
        group=MODELS,
        help="Audio-text scorer: 'msclap:2023' (the paper's Microsoft CLAP) or a transformers CLAP id/folder "
        "such as laion/clap-htsat-unfused.",
    )
    scorer_revision: str | None = option(
        None, group=MODELS, help="Hub branch, tag or commit of a transformers CLAP --scorer."
    )
    scorer_weights: str | None = option(
        None,
        group=MODELS,
        metavar="PATH",
        help="msclap only: a local CLAP_weights_2023.pth (or a folder holding it) instead of downloading it.",
    )
    scorer_text_model: str | None = option(
        None,
        group=MODELS,
        metavar="PATH",
        help="msclap only: a local GPT-2 folder for its text encoder instead of downloading 'gpt2'.",
    )
    audio_captioner: str | None = option(
        None,
        group=MODELS,
        metavar="MODEL",
        help="Audio captioner: an audio-text-to-text Hub id or local folder (Qwen2-Audio, Audio Flamingo 3) that "
        "captions each clip's stored audio; its candidates are scored by --scorer against the audio and written as "
        "the audio_caption columns. None: no audio captions (the columns are absent).",
    )
    audio_captioner_revision: str | None = option(
        None, group=MODELS, help="Hub branch, tag or commit of --audio-captioner."
    )
    audio_caption_prompt: str | None = option(
        None,
        group=MODELS,
        help="Instruction given to --audio-captioner with each audio window. None: the family's default.",
    )
    audio_caption_windows: int = option(
        1,
        group=MODELS,
        metavar="N",
        help="Audio caption candidates per clip: the clip's audio cut into N equal windows, one caption each "
        "(1: the whole clip).",
    )
    visual_scorer: str | None = option(
        None,
        group=MODELS,
        metavar="MODEL",
        help="Visual scorer: a CLIP model (Hub id or local folder) that scores each frame caption against its own "
        "frame; visual_caption is the caption of the best pair. None: visual_caption is the frame caption with "
        "the highest CLAP score (caption), as before.",
    )
    visual_scorer_revision: str | None = option(
        None, group=MODELS, help="Hub branch, tag or commit of --visual-scorer."
    )
    av_captioner: str | None = option(
        None,
        group=MODELS,
        metavar="MODEL",
        help="Audio-visual captioner: a Qwen2.5-Omni model (Hub id or local folder, the whole model or its "
        "thinker) given each clip's frames and audio together; its --av-captions candidates are scored by "
        "--scorer against the audio and written as av_captions / av_caption. None: no AV captioner.",
    )
    av_captioner_revision: str | None = option(
        None, group=MODELS, help="Hub branch, tag or commit of --av-captioner."
    )
    av_captions: int = option(
        1,
        group=MODELS,
        metavar="N",
        help="--av-captioner candidates per clip: the greedy caption, then N-1 sampled ones, each seeded by the "
        "run's --seed, the clip and its number (the same candidates on every rerun).",
    )
    av_caption_from: str | None = option(
        None,
        group=MODELS,
        metavar="llm:MODEL",
        help="Make av_caption by merging each clip's chosen audio and visual captions with a local chat LLM "
        "(AutoModelForCausalLM, Hub id or folder), greedily: AVCaps's GPT-4 step done locally. Needs "
        "--audio-captioner; not with --av-captioner.",
    )
    av_caption_from_revision: str | None = option(
        None, group=MODELS, help="Hub branch, tag or commit of --av-caption-from's model."
    )
    av_caption_prompt: str | None = option(
        None,
        group=MODELS,
        help="The instruction of --av-captioner, or the merge prompt of --av-caption-from (must contain "
        "{audio_caption} and {visual_caption}). None: the documented default (README).",
    )
    device: str | None = option(
        None, group=MODELS, help="Device for the models. None: this process's accelerate device."
    )

    def __post_init__(self) -> None:
        require_positive(self, "max_new_tokens", "audio_caption_windows", "av_captions")
        self._check_av_options()
        size = self.caption_image_size
        if size != "native" and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise UsageError(
                f"--caption-image-size must be a positive number of pixels or 'native', got {size!r}"
            )
        if self.labels_only:
            self._refuse_model_settings()

    def _check_av_options(self) -> None:
        """The AV caption options that contradict each other, in one line before anything loads."""
        if self.av_captioner is not None and self.av_caption_from is not None:
            raise UsageError("--av-captioner and --av-caption-from both make av_caption(s); give one of them")
        if self.av_caption_from is not None:
            merger_model(self.av_caption_from)
            if self.audio_captioner is None:
                raise UsageError(
                    "--av-caption-from merges each clip's audio caption with its visual caption; it needs "
                    "--audio-captioner"
                )
            if self.av_caption_prompt is not None:
                check_merge_prompt(self.av_caption_prompt)
        if self.av_captions != 1 and self.av_captioner is None:
            raise UsageError("--av-captions counts --av-captioner candidates; give --av-captioner")

    @property
    def labels_only(self) -> bool:
        """``--captioner none``: no captioner, no scorer; rows carry media and labels only."""
        return self.captioner.strip().lower() == NO_CAPTIONER

    def _refuse_model_settings(self) -> None:
        """A model setting given with ``--captioner none`` would be silently ignored: refuse it instead."""
        given = [
            f"--{f.name.replace('_', '-')}"
            for f in dataclasses.fields(self)
            if f.name not in _USED_WITHOUT_MODELS and getattr(self, f.name) != f.default
        ]
        if given:
            raise UsageError(
                f"--captioner {NO_CAPTIONER} loads no model, so {', '.join(given)} would have no effect; drop "
                f"{'it' if len(given) == 1 else 'them'}"
            )


@dataclass
class GenerationOptions:
    """Every knob of a run. Those in ``manifest.IDENTITY_KEYS`` must match when resuming an output."""

    fps: float = option(1.0, group=CLIPS, help="Frames captioned per second of clip.")
    clip_seconds: float = option(10.0, group=CLIPS, help="Clip length from each start_s.")
    limit: int | None = option(
        None, group=CLIPS, metavar="N", help="Only the first N clips of the (sorted) input."
    )
    input_root: str | None = option(
        None,
        group=CLIPS,
        help="Folder that list paths are relative to (clip ids and video paths are stored relative to it). "
        "None: the list file's folder.",
    )
    allow_absolute_paths: bool = option(
        False,
        group=CLIPS,
        help="Accept list paths outside --input-root and store them as absolute paths (they then appear in "
        "clip_id and video_path of the dataset, which may be published).",
    )
    path_template: str = option(
        DEFAULT_PATH_TEMPLATE,
        group=CLIPS,
        help="Local file of a ytid,start row, relative to the input root, as the downloader named it: fields "
        "{ytid}, {start} / {end} (whole seconds), {start_s} / {end_s} (float), {start_ms} / {end_ms} (audiosetdl), "
        "{label} (first label, filesystem-safe), {split}, each with a format spec ({start:06d}); e.g. "
        "{ytid}_{start}_{end}.mp4, {ytid}_{start_ms}_{end_ms}.mp4, {split}/{label}/{ytid}_{start:06d}.mp4, "
        "Y{ytid}.mp4. {end}: the row's end, else start + --clip-seconds.",
    )
    split: str | None = option(
        None,
        group=CLIPS,
        metavar="NAME",
        help="Keep the list rows whose split column has this value (VGGSound: train or test); 'all' keeps "
        "every row in one output with a split column, whose splits load_dataset sees (train, test). Required when the list holds several splits, so each split becomes its own output. "
        "AudioSet lists have no split column: their split is the file (balanced_train_segments.csv, "
        "eval_segments.csv).",
    )
    label_csv: str | None = option(
        None,
        group=CLIPS,
        metavar="CSV",
        help="Class list 'index,mid,display_name' (AudioSet's class_labels_indices.csv): labels that are ids "
        "(AudioSet's /m/09x0r) are stored as display names (Speech); a label that is neither an id nor a name "
        "of the list is an error. Default: labels are stored as the list gives them.",
    )
    trimmed: bool = option(
        True,
        group=CLIPS,
        flag="--untrimmed",
        help="ytid,start rows point at full-length videos: cut the window at start (default: files are "
        "already-trimmed clips, decoded from 0). A video_path row's start_s is a time inside its file unless the "
        "row's whole_video column says false. Rows keep the list's start as original_start_s either way.",
    )
    max_missing_fraction: float = option(
        0.5,
        group=CLIPS,
        metavar="F",
        help="Listed videos missing (unreadable_path) that a run accepts: every path is checked before models "
        "load and the count printed; a run with more missing still writes what it could, then exits 1 naming the "
        "root, the template and one expected path (usually a wrong --input-root or --path-template); all "
        "missing stops it before models load. 1: accept any.",
    )
    shard_size: int = option(1000, group=RUN, help="Clips per output shard (the unit of resuming).")
    chunk_size: int = option(
        64,
        group=RUN,
        help="Clips per unit of model work inside a shard. Batches never cross a chunk, so rows are the same "
        "whichever process or distributor computes them; the ray distributor schedules, retries and resumes "
        "chunks. Large enough to fill --score-batch-size.",
    )
    distributor: Literal["auto", "local", "accelerate", "ray"] = option(
        "auto",
        group=RUN,
        help="Where the work runs: 'local' (this process + --num-workers decode processes), 'accelerate' "
        "(each process of `accelerate launch`/torchrun/srun takes shards rank::world), 'ray' (a Ray Data pipeline: "
        "decode tasks on any node's CPUs, captioner and scorer actor pools on GPU shares; pip install "
        "avt[ray]). auto: accelerate when launched with several processes, else local.",
    )
    num_workers: int | None = num_workers_option("CPU decode worker processes per GPU process", RUN)
    video_hwaccel: str | None = option(
        None,
        group=RUN,
        metavar="DEVICE",
        type=hwaccel_device,
        help="Decode video on a hardware decoder, e.g. 'cuda' (NVDEC); falls back to the CPU with a warning "
        "when the device can't be opened. Default: CPU decoding.",
    )
    caption_batch_size: int | Literal["auto"] = option(
        "auto",
        group=RUN,
        type=batch_size_or_auto,
        metavar="N|auto",
        help="Frames per captioner call. auto: on a GPU the largest batch that fits its free memory (probed once "
        "before the first chunk, halving on out-of-memory, and recorded in the output's manifest so a resumed run "
        "uses the same batches); on the CPU 32.",
    )
    score_batch_size: int = option(64, group=RUN, help="Clips (audio) or captions (text) per scorer call.")
    audio_caption_batch_size: int = option(
        8, group=RUN, help="Audio windows per --audio-captioner call (fixed: batches are cut by content)."
    )
    visual_score_batch_size: int = option(
        64,
        group=RUN,
        help="(frame, caption) pairs per --visual-scorer call (fixed: batches are cut by content).",
    )
    merge_batch_size: int = option(
        8, group=RUN, help="Caption pairs per --av-caption-from call (fixed: batches are cut by content)."
    )
    retry_failed: bool = option(
        False, group=RUN, help="Also rerun clips recorded in finished shards' failure tables."
    )
    verify: bool = option(
        False,
        group=RUN,
        help="Check every finished shard's files against the checksums its stats file records (reads them all; "
        "without it a rerun compares file sizes only); a shard that does not match is redone.",
    )
    overwrite: bool = option(
        False,
        group=RUN,
        help="Delete an existing output's shards and start over (only in a folder avt wrote).",
    )
    seed: int = option(0, group=RUN, help="Seed (per chunk, from seed + shard index) for any sampling.")
    progress: bool = option(True, group=RUN, help="No progress bar.")
    storage_options: dict | None = option(
        None,
        group=RUN,
        metavar="JSON",
        type=json_object,
        repr=False,
        help="fsspec options for INPUT and --output-dir URLs (s3://, gs://, hf://), e.g. "
        '\'{"endpoint_url": "http://...", "key": "...", "secret": "..."}\'. Never written to any file; '
        "credentials may also come from the environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, HF_TOKEN).",
    )
    ray_address: str | None = option(
        None,
        group=RAY,
        metavar="ADDR",
        help="Ray cluster to join: 'auto' (the cluster this node belongs to, e.g. after `ray start`), "
        "host:port or ray://host:10001. None: start a local Ray instance on this machine.",
    )
    captioner_gpus: float | None = option(
        None,
        group=RAY,
        help="GPU share of each captioner replica (0.5: two per GPU). None: 0.75 on a cluster with GPUs, so a "
        "captioner and a scorer share each GPU; 0 without GPUs.",
    )
    scorer_gpus: float | None = option(
        None, group=RAY, help="GPU share of each scorer replica. None: 0.25 on a cluster with GPUs, else 0."
    )
    audio_captioner_gpus: float | None = option(
        None,
        group=RAY,
        help="GPU share of each --audio-captioner replica. None: 0.5 on a cluster with GPUs, else 0.",
    )
    visual_scorer_gpus: float | None = option(
        None,
        group=RAY,
        help="GPU share of each --visual-scorer replica. None: 0.25 on a cluster with GPUs, else 0.",
    )
    av_captioner_gpus: float | None = option(
        None,
        group=RAY,
        help="GPU share of each --av-captioner replica. None: 0.5 on a cluster with GPUs, else 0.",
    )
    caption_merger_gpus: float | None = option(
        None,
        group=RAY,
        help="GPU share of each --av-caption-from replica. None: 0.25 on a cluster with GPUs, else 0.",
    )
    captioner_replicas: int | None = option(
        None,
        group=RAY,
        help="Captioner actors. None: Ray Data scales the pool from 1 up to what the cluster's GPUs hold "
        "(one on a CPU-only cluster).",
    )
    scorer_replicas: int | None = option(
        None,
        group=RAY,
        help="Scorer actors. None: Ray Data scales the pool from 1 up to a quarter of the captioners (at least 1).",
    )
    license: str | None = option(
        None,
        group=RUN,
        help="Licence of the dataset card: an SPDX id as the Hub writes it (cc-by-4.0, apache-2.0, mit, ...) or "
        "`other` with --license-name and --license-link. Default: the card's licence, `other` on a new card.",
    )
    license_name: str | None = option(
        None, group=RUN, help="With `--license other`: its short name (my-terms-1.0)."
    )
    license_link: str | None = option(None, group=RUN, help="With `--license other`: a link to its text.")
    # Library-only settings.
    prefetch: int | None = None  # decoded clips queued per worker; None: enough to cover one batch cycle
    jpeg_quality: int = 95
    decoder_threads: int = 1
    write_card: bool = True
    rank: int | None = None  # None: from accelerate.PartialState()
    world_size: int | None = None

    def __post_init__(self) -> None:
        require_positive(
            self,
            "fps",
            "clip_seconds",
            "shard_size",
            "chunk_size",
            "score_batch_size",
            "audio_caption_batch_size",
            "visual_score_batch_size",
            "merge_batch_size",
        )
        if self.caption_batch_size != "auto":
            if isinstance(self.caption_batch_size, bool) or not isinstance(self.caption_batch_size, int):
                raise UsageError(
                    f"--caption-batch-size must be a number of frames or 'auto', got {self.caption_batch_size!r}"
                )
            require_positive(self, "caption_batch_size")
        require_positive(self, "limit", "prefetch", "decoder_threads")
        self.card_license()  # refused now, before any model loads
        require_non_negative(
            self,
            "num_workers",
            "captioner_gpus",
            "scorer_gpus",
            "audio_captioner_gpus",
            "visual_scorer_gpus",
            "av_captioner_gpus",
            "caption_merger_gpus",
        )
        require_positive(self, "captioner_replicas", "scorer_replicas")
        given = [name for name in RAY_OPTIONS if getattr(self, name) is not None]
        if given and self.distributor != "ray":
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise UsageError(
                f"{flags} only apply to --distributor ray (got --distributor {self.distributor})"
            )
        for name in ("fps", "clip_seconds"):
            if not math.isfinite(getattr(self, name)):
                raise UsageError(
                    f"--{name.replace('_', '-')} must be a finite number, got {getattr(self, name)}"
                )
        if not 0.0 <= self.max_missing_fraction <= 1.0:
            raise UsageError(f"--max-missing-fraction must be in [0, 1], got {self.max_missing_fraction}")
        if not 1 <= self.jpeg_quality <= 100:
            raise UsageError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")

    def card_license(self):
        """The dataset card's licence from ``--license/--license-name/--license-link`` (None: keep the card's)."""
        from avt_triplets.cards import CardLicense

        return CardLicense.from_options(self.license, self.license_name, self.license_link)


__all__ = [
    "DEFAULT_CAPTIONER",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_SCORER",
    "NO_CAPTIONER",
    "GenerationOptions",
    "ModelOptions",
]
