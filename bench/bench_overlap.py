"""Does the model process ever wait? The real generation pipeline with stand-in models that use no CPU.

The stand-ins (:mod:`stand_in_models`) hold every caption batch for ``--model-ms-per-frame`` per frame and
every audio batch for ``--scorer-ms-per-window`` per window, sleeping as a process waiting on a GPU kernel
would, and return fixed captions and embeddings. Everything else is what ``avt generate`` runs: decode workers,
the captioner's real BLIP-2 image processor (224 px), the worker stage, Parquet shards.

Measured on ``--clips`` synthetic clips (``--seconds`` long, ``--fps`` frames per second captioned):

* ``decode_clips_per_s``: the decode workers alone (``--num-workers`` of them, with whatever preprocessing
  they do for the models), no model: the most the pipeline could feed;
* ``stand_in_clips_per_s``: clips / the time the stand-ins held batches during the end-to-end run, i.e.
  what the models alone would do;
* ``end_to_end_clips_per_s``: ``generate_triplets`` from video files to committed shards, wall time;
* ``end_to_end_over_model_alone``: their ratio (goal >= 0.9 whenever decode capacity exceeds the stand-in's
  rate, ``decode_over_stand_in`` > 1), and ``model_idle_fraction`` = 1 - held time / wall time;
* ``seconds``: the pipeline's own stage clock (decode in the workers, wait, caption, score, write);
  ``until_first_hold_s`` / ``after_last_hold_s``: the pipeline's fill (start-up, preflight, the first batch's
  clips decoded) and drain, and ``steady_idle_fraction`` the idle share between them; ``cpu_s`` the CPU time
  of the model process (all its threads) and of the decode workers.

Prints JSON, with the load average of the machine before and after (the sandbox is shared).

    python bench/bench_overlap.py --clips 200 --model-ms-per-frame 15 --num-workers 2
    python bench/bench_overlap.py --family qwen2_5_vl --caption-image-size native   # Qwen2.5-VL-style inputs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def decode_capacity(list_csv: Path, options, scorer, captioner, num_workers: int) -> dict:
    """Clips/s of the decode workers alone, fed and configured as the local distributor does."""
    from avt_triplets.decoding import DecodeJob, iter_decoded
    from avt_triplets.distributors.local import default_prefetch
    from avt_triplets.inputs import load_inputs
    from avt_triplets.model_host import decode_settings
    from avt_triplets.model_inputs import preparer_for

    clips = load_inputs(list_csv).clips
    jobs = [DecodeJob(i, 0, clip) for i, clip in enumerate(clips)]
    settings = decode_settings(options, scorer.sampling_rate, preparer_for(captioner, scorer))
    prefetch = default_prefetch(options, num_workers)
    started = time.perf_counter()
    stream = iter_decoded(jobs, settings, num_workers=num_workers, prefetch=prefetch)
    decoded = sum(1 for item in stream if item.failure is None)
    wall = time.perf_counter() - started
    assert decoded == len(jobs), f"{len(jobs) - decoded} clips failed to decode"
    return {"clips": len(jobs), "wall_s": round(wall, 3), "clips_per_s": round(len(jobs) / wall, 3)}


def end_to_end(list_csv: Path, out: Path, captioner, scorer, options) -> dict:
    from avt_triplets.pipeline import generate_triplets

    model = captioner.model
    model.holds.clear()
    scorer.holds.clear()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    summary = generate_triplets(list_csv, out, captioner, scorer, options)
    ended = time.perf_counter()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = [
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        for before, after in zip(cpu_before, cpu_after)
    ]
    assert summary.triplets == summary.clips, summary.format()
    holds = sorted(model.holds[1:] + scorer.holds[2:])  # without the preflight's caption, audio and text
    held = sum(end - start for start, end in holds)
    return {
        "clips": summary.clips,
        "wall_s": round(ended - started, 3),
        "held_s": round(held, 3),
        "until_first_hold_s": round(holds[0][0] - started, 3),  # start-up, preflight, first batch decoded
        "after_last_hold_s": round(ended - holds[-1][1], 3),  # last rows, commit, summary
        "steady_idle_fraction": round(1 - held / (holds[-1][1] - holds[0][0]), 3),
        "cpu_s": {"model_process": round(cpu[0], 2), "decode_workers": round(cpu[1], 2)},
        "seconds": {stage: round(value, 3) for stage, value in summary.seconds.items()},
    }


def make_captioner(args, workdir: Path):
    """The stand-in captioner over BLIP-2's processor, or over ``--family``'s at its published settings."""
    from stand_in_models import stand_in_captioner, stand_in_family_captioner

    size = args.caption_image_size if args.caption_image_size == "native" else int(args.caption_image_size)
    if args.family is None:
        return stand_in_captioner(args.model_ms_per_frame)
    return stand_in_family_captioner(args.family, args.model_ms_per_frame, workdir, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=200, help="Clips in the timed runs.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of each synthetic clip.")
    parser.add_argument("--fps", type=float, default=1.0, help="Frames captioned per second of clip.")
    parser.add_argument("--num-workers", type=int, default=2, help="Decode worker processes.")
    parser.add_argument("--model-ms-per-frame", type=float, default=15.0, help="Captioner hold per frame.")
    parser.add_argument("--scorer-ms-per-window", type=float, default=2.5, help="Scorer hold per 7 s window.")
    parser.add_argument("--scorer-ms-per-text", type=float, default=0.5, help="Scorer hold per caption.")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--caption-batch-size", type=int, default=32)
    parser.add_argument("--score-batch-size", type=int, default=64)
    parser.add_argument(
        "--family",
        default=None,
        help="Captioner family (model_type, see bench/published_processors.py) whose real processor at its "
        "published settings the stand-in uses, e.g. qwen2_5_vl, idefics3 (default: BLIP-2's at 224 px).",
    )
    parser.add_argument(
        "--caption-image-size", default="224", help="Short side frames are captioned at, or 'native'."
    )
    args = parser.parse_args()

    import torch
    from bench_generate import bench_options, make_clip_list
    from stand_in_models import StandInScorer

    torch.set_num_threads(1)
    load_before = os.getloadavg()
    options = bench_options(args, fps=args.fps, clip_seconds=args.seconds, chunk_size=args.chunk_size)
    scorer = StandInScorer(args.scorer_ms_per_window, args.scorer_ms_per_text)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        captioner = make_captioner(args, tmp)
        list_csv = make_clip_list(tmp / "videos", args.clips, args.seconds)
        warm = make_clip_list(tmp / "warm", 4, args.seconds)
        end_to_end(warm, tmp / "warm_out", captioner, scorer, options)  # imports, first-call costs
        decode = decode_capacity(list_csv, options, scorer, captioner, args.num_workers)
        e2e = end_to_end(list_csv, tmp / "out", captioner, scorer, options)
    stand_in_rate = e2e["clips"] / e2e["held_s"]
    e2e_rate = e2e["clips"] / e2e["wall_s"]
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU (stand-in models)",
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "clips": args.clips,
                "frames_per_clip": round(args.seconds * args.fps),
                "num_workers": args.num_workers,
                "model_ms_per_frame": args.model_ms_per_frame,
                "family": args.family or "blip-2",
                "caption_layout": captioner.input_plan().layout,
                "caption_image_size": captioner.image_short_side(),
                "decode_clips_per_s": decode["clips_per_s"],
                "stand_in_clips_per_s": round(stand_in_rate, 3),
                "decode_over_stand_in": round(
                    decode["clips_per_s"] / stand_in_rate, 3
                ),  # > 1: decode can feed it
                "end_to_end_clips_per_s": round(e2e_rate, 3),
                "end_to_end_over_model_alone": round(e2e_rate / stand_in_rate, 3),
                "model_idle_fraction": round(1 - e2e["held_s"] / e2e["wall_s"], 3),
                "end_to_end": e2e,
                "decode_alone": decode,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
