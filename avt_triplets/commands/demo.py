"""`avt demo`: the whole loop, offline, on synthetic videos with tiny random-weight models.

It runs the same commands a user runs (`avt generate`, `avt filter`, `avt pretrain`, `avt evaluate`) through
:func:`avt_triplets.cli.main`, so the demo exercises the real code paths; only the models are tiny and the videos
synthetic (no hub is needed). Captions from a random-weight captioner are gibberish: the demo shows the plumbing,
while the learning itself is checked by the test suite on the same synthetic data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="avt-demo", help="Folder for everything the demo writes.")
    parser.add_argument(
        "--num-classes", type=int, default=4, help="Synthetic classes (tone + coloured shape each)."
    )
    parser.add_argument("--clips-per-class", type=int, default=10, help="Synthetic videos per class.")
    parser.add_argument(
        "--subset",
        default="top30",
        help="Subset of the triplets to pretrain on (a config written by `avt filter`).",
    )
    parser.add_argument("--steps", type=int, default=300, help="Pretraining steps of the tiny LG-CAV-MAE.")
    parser.add_argument("--batch-size", type=int, default=8, help="Pretraining batch size.")
    parser.add_argument("--overwrite", action="store_true", help="Delete --output-dir first.")


def _step(title: str) -> float:
    print(f"\n=== {title}", flush=True)
    return time.perf_counter()


def run(args: argparse.Namespace) -> int:
    from avt_triplets import tiny
    from avt_triplets.cli import main as avt

    out = Path(args.output_dir).resolve()
    if args.overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t = _step("1/6 tiny random-weight models and synthetic videos")
    models = out / "models"
    blip2 = tiny.make_tiny_blip2(models / "tiny-blip2")
    msclap = tiny.make_tiny_msclap(models / "tiny-msclap")
    labels_csv = tiny.make_synthetic_videos(
        out / "videos", num_classes=args.num_classes, clips_per_class=args.clips_per_class
    )
    timings["setup_s"] = time.perf_counter() - t

    triplets = out / "triplets"
    t = _step("2/6 avt generate (caption every frame, CLAP-score against the audio, keep the best)")
    code = avt(
        [
            "generate",
            str(labels_csv),
            "--output",
            str(triplets),
            "--captioner",
            str(blip2),
            "--scorer",
            "msclap:2023",
            "--scorer-weights",
            str(msclap),
            "--shard-size",
            "8",
            "--num-workers",
            "1",
        ]
    )
    if code:
        return code
    timings["generate_s"] = time.perf_counter() - t

    t = _step("3/6 avt filter (top-k% and random-k% views)")
    code = avt(["filter", str(triplets), "--top", "10", "30", "50", "--random", "30", "--seed", "0"])
    if code:
        return code
    timings["filter_s"] = time.perf_counter() - t

    model_dir = out / "lgcavmae"
    t = _step(f"4/6 avt pretrain (tiny LG-CAV-MAE on {args.subset})")
    tiny_config = tiny.make_tiny_lgcavmae(models / "tiny-lgcavmae-init")
    code = avt(
        [
            "pretrain",
            "--dataset",
            f"{triplets}:{args.subset}",
            "--config-name-or-path",
            str(tiny_config),
            "--output-dir",
            str(model_dir),
            "--max-steps",
            str(args.steps),
            "--per-device-batch-size",
            str(args.batch_size),
            "--learning-rate",
            "1e-3",
            "--num-workers",
            "0",
            "--checkpoint-steps",
            str(args.steps),
            "--report-to",
            "none",
        ]
    )
    if code:
        return code
    timings["pretrain_s"] = time.perf_counter() - t

    t = _step("5/6 reload with transformers' AutoModel")
    from transformers import AutoModel

    import modeling_lgcavmae  # noqa: F401  (registers the Auto classes)

    reloaded = AutoModel.from_pretrained(model_dir)
    print(f"AutoModel.from_pretrained({model_dir}) -> {type(reloaded).__name__}")
    timings["reload_s"] = time.perf_counter() - t

    report = out / "report"
    t = _step("6/6 avt evaluate retrieval (audio->visual, visual->audio recall@K)")
    code = avt(
        [
            "evaluate",
            "retrieval",
            "--model",
            str(model_dir),
            "--dataset",
            str(triplets),
            "--protocol",
            "full",
            "--output-dir",
            str(report),
        ]
    )
    if code:
        return code
    timings["evaluate_s"] = time.perf_counter() - t

    from avt_triplets import selection

    clips = selection.read_scores(triplets).num_rows
    print(
        f"(chance level with {clips} clips: R@1 = {100 / clips:.1f}%, R@10 = {min(100.0, 1000 / clips):.1f}%)"
    )
    print("\n=== avt demo finished")
    print(json.dumps({k: round(v, 1) for k, v in timings.items()}))
    print(f"videos:   {out / 'videos'}")
    print(f"dataset:  {triplets}   (load_dataset('{triplets}', '{args.subset}'))")
    print(f"model:    {model_dir}")
    print(f"report:   {report}")
    return 0
