"""`avt generate INPUT --output DIR`: videos -> captioned, CLAP-scored audio-visual-text triplets.

Runs on one process, or on many with ``accelerate launch --multi_gpu --num_processes N -m avt_triplets.cli
generate ...`` (or ``torchrun``; each process takes its own shards, rerun the same command to resume).
On a CPU-only machine the same launch works with ``--device cpu`` (gloo). Note that
``accelerate launch --cpu --num_processes N`` starts one process unless given an MPI hostfile. Heavy
libraries are imported inside :func:`run` so ``avt --help`` stays fast.
"""

from __future__ import annotations

import argparse

from avt_triplets.inputs import DEFAULT_PATH_TEMPLATE  # standard library only: keeps --help fast

DEFAULT_CAPTIONER = "Salesforce/blip2-opt-2.7b"
DEFAULT_SCORER = "msclap:2023"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _hwaccel_device(text: str) -> str:
    from av.codec.hwaccel import hwdevices_available

    if text not in hwdevices_available():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a hardware decoder of this FFmpeg: {hwdevices_available()}"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="A folder of videos (searched recursively) or a CSV/JSONL list with video_path[,start_s][,labels] "
        "(labels ';'-separated), or VGGSound-style ytid,start,label rows (see --path-template).",
    )
    parser.add_argument(
        "--output", "-o", required=True, metavar="DIR", help="Output folder (created; a rerun resumes it)."
    )

    models = parser.add_argument_group("models")
    models.add_argument(
        "--captioner",
        default=DEFAULT_CAPTIONER,
        help="Image captioner: any image-text-to-text Hub id or local folder (BLIP-2, LLaVA-1.5, ...).",
    )
    models.add_argument(
        "--captioner-revision", default=None, help="Hub branch, tag or commit of --captioner."
    )
    models.add_argument(
        "--caption-prompt",
        default=None,
        help="Prompt for chat captioners (e.g. LLaVA), or a text prefix for BLIP-2. None: the backend's default.",
    )
    models.add_argument(
        "--max-new-tokens",
        type=_positive_int,
        default=30,
        help="Longest caption, in tokens (greedy decoding).",
    )
    models.add_argument(
        "--dtype",
        default=None,
        help="Captioner dtype (bfloat16, float16, float32). None: bfloat16 on GPU, float32 on CPU.",
    )
    models.add_argument(
        "--caption-compile",
        action="store_true",
        help="Decode captions with a static KV cache and a torch.compile'd step (CUDA graphs on GPU): faster "
        "after a warm-up of tens of seconds per batch size; same captions.",
    )
    models.add_argument(
        "--scorer",
        default=DEFAULT_SCORER,
        help="Audio-text scorer: 'msclap:2023' (the paper's Microsoft CLAP) or a transformers CLAP id/folder "
        "such as laion/clap-htsat-unfused.",
    )
    models.add_argument(
        "--scorer-revision", default=None, help="Hub branch, tag or commit of a transformers CLAP --scorer."
    )
    models.add_argument(
        "--scorer-weights",
        default=None,
        metavar="PATH",
        help="msclap only: a local CLAP_weights_2023.pth (or a folder holding it) instead of downloading it.",
    )
    models.add_argument(
        "--scorer-text-model",
        default=None,
        metavar="PATH",
        help="msclap only: a local GPT-2 folder for its text encoder instead of downloading 'gpt2'.",
    )
    models.add_argument(
        "--device", default=None, help="Device for the models. None: this process's accelerate device."
    )

    clips = parser.add_argument_group("clips")
    clips.add_argument(
        "--fps", type=_positive_float, default=1.0, help="Frames captioned per second of clip."
    )
    clips.add_argument(
        "--clip-seconds", type=_positive_float, default=10.0, help="Clip length from each start_s."
    )
    clips.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="Only the first N clips of the (sorted) input.",
    )
    clips.add_argument(
        "--input-root",
        default=None,
        help="Folder that list paths are relative to. None: the list file's folder.",
    )
    clips.add_argument(
        "--path-template",
        default=DEFAULT_PATH_TEMPLATE,
        help="Local file of a ytid,start row, relative to the input root; fields {ytid}, {start} (int) and "
        "{start_s} (float).",
    )
    clips.add_argument(
        "--untrimmed",
        action="store_true",
        help="ytid,start rows point at full-length videos: cut the window at start (default: files are "
        "already-trimmed clips, decoded from 0).",
    )

    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--shard-size",
        type=_positive_int,
        default=1000,
        help="Clips per output shard (the unit of resuming).",
    )
    run_group.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="CPU decode worker processes per GPU process (0: decode inline). None: cores per process - 1, at most 8.",
    )
    run_group.add_argument(
        "--video-hwaccel",
        type=_hwaccel_device,
        default=None,
        metavar="DEVICE",
        help="Decode video on a hardware decoder, e.g. 'cuda' (NVDEC); falls back to the CPU with a warning "
        "when the device can't be opened. Default: CPU decoding.",
    )
    run_group.add_argument(
        "--caption-batch-size", type=_positive_int, default=32, help="Frames per captioner call."
    )
    run_group.add_argument(
        "--score-batch-size",
        type=_positive_int,
        default=64,
        help="Clips (audio) or captions (text) per scorer call.",
    )
    run_group.add_argument(
        "--retry-failed",
        action="store_true",
        help="Also rerun clips recorded in finished shards' failure tables.",
    )
    run_group.add_argument(
        "--overwrite", action="store_true", help="Delete an existing output's shards and start over."
    )
    run_group.add_argument(
        "--seed", type=int, default=0, help="Seed (per shard: seed + shard index) for any sampling."
    )
    run_group.add_argument("--no-progress", action="store_true", help="No progress bar.")
    run_group.add_argument(
        "--log-level", default="WARNING", help="Python logging level (DEBUG lists every failed clip)."
    )


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from avt_triplets.captioners import load_captioner
    from avt_triplets.inputs import InputListError
    from avt_triplets.pipeline import GenerationOptions, generate_triplets, process_state
    from avt_triplets.scorers import load_scorer
    from avt_triplets.shards import IncompatibleOutputError

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    state = process_state(args.device)
    device = args.device or state.device
    options = GenerationOptions(
        fps=args.fps,
        clip_seconds=args.clip_seconds,
        shard_size=args.shard_size,
        num_workers=args.num_workers,
        caption_batch_size=args.caption_batch_size,
        score_batch_size=args.score_batch_size,
        retry_failed=args.retry_failed,
        overwrite=args.overwrite,
        seed=args.seed,
        limit=args.limit,
        input_root=args.input_root,
        path_template=args.path_template,
        trimmed=not args.untrimmed,
        video_hwaccel=args.video_hwaccel,
        progress=not args.no_progress,
    )
    captioner = load_captioner(
        args.captioner,
        prompt=args.caption_prompt,
        device=device,
        dtype=args.dtype,
        max_new_tokens=args.max_new_tokens,
        revision=args.captioner_revision,
    )
    if args.caption_compile:
        from avt_triplets.caption_compile import compile_captioner

        compile_captioner(captioner)
    scorer = load_scorer(
        args.scorer,
        weights=args.scorer_weights,
        text_model=args.scorer_text_model,
        device=device,
        revision=args.scorer_revision,
    )
    try:
        summary = generate_triplets(args.input, args.output, captioner, scorer, options)
    except (InputListError, IncompatibleOutputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if summary.card_path is not None or summary.rank == 0:
        prefix = f"[rank {summary.rank}] " if summary.world_size > 1 else ""
        print(prefix + summary.format().replace("\n", "\n" + prefix))
    return 1 if summary.shard_errors or summary.card_error else 0
