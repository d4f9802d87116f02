"""`avt demo`: the whole loop, offline, on synthetic videos with tiny random-weight models.

It runs the same commands a user runs (`avt generate`, `avt filter`, `avt pretrain`, `avt evaluate`) through
:func:`avt.cli.main`, so the demo exercises the real code paths; only the models are tiny and the videos
synthetic (no hub is needed). Captions from a random-weight captioner are gibberish, but the synthetic classes tie a
tone to a coloured shape, so the audio-visual part can be learnt: pretraining gets a schedule that fits a short run
(linear warmup, cosine decay to zero over ``--max-steps``; the official schedule is per epoch and would decay the lr to
nothing within a few dozen steps of a dozen clips), and the report shows that learning happened: the loss curve
(``report/pretrain_loss.png``) and retrieval against chance (``report/learning.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avt_core.dataclass_cli import add_options, option, positive_int

DEFAULT_STEPS = 40
LEARNING_RATE = "2e-3"  # the tiny model's; its short cosine schedule ends at zero
LOSS_CURVE_FILE = "pretrain_loss.png"
LEARNING_FILE = "learning.json"


DEMO = "demo"


@dataclasses.dataclass
class DemoOptions:
    """Every option of `avt demo`; the pretraining ones have `avt pretrain`'s names."""

    output_dir: str = option("avt-demo", group=DEMO, help="Folder for everything the demo writes.")
    num_classes: int = option(
        4, group=DEMO, type=positive_int, help="Synthetic classes (tone + coloured shape each)."
    )
    clips_per_class: int = option(10, group=DEMO, type=positive_int, help="Synthetic videos per class.")
    subset: str = option(
        "all",
        group=DEMO,
        help="Config of the triplets to pretrain on (`all`, or one `avt filter` wrote: top30, random30, ...). The "
        "random-weight captioner's scores rank nothing, and a dozen clips teach less than all of them.",
    )
    max_steps: int = option(
        DEFAULT_STEPS,
        group=DEMO,
        type=positive_int,
        deprecated=("--steps",),
        help="Pretraining steps of the tiny LG-CAV-MAE (warmup over the first tenth, cosine decay to the last).",
    )
    per_device_batch_size: int = option(
        8, group=DEMO, type=positive_int, deprecated=("--batch-size",), help="Pretraining batch size."
    )
    overwrite: bool = option(False, group=DEMO, help="Delete --output-dir first.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, DemoOptions, (DEMO,))


def _step(title: str) -> float:
    print(f"\n=== {title}", flush=True)
    return time.perf_counter()


@dataclass(frozen=True)
class _DemoFolders:
    """Where each step of the demo writes, under ``--output-dir``."""

    out: Path
    models: Path
    videos: Path
    triplets: Path
    model: Path
    report: Path

    @classmethod
    def under(cls, out: Path) -> _DemoFolders:
        return cls(out, out / "models", out / "videos", out / "triplets", out / "lgcavmae", out / "report")


@dataclass(frozen=True)
class _DemoInputs:
    """What step 1 makes: the tiny captioner and scorer, and the synthetic videos' list."""

    blip2: Path
    msclap: Path
    labels_csv: Path


def _make_inputs(folders: _DemoFolders, args: argparse.Namespace) -> _DemoInputs:
    from avt_triplets import tiny

    return _DemoInputs(
        blip2=tiny.make_tiny_blip2(folders.models / "tiny-blip2"),
        msclap=tiny.make_tiny_msclap(folders.models / "tiny-msclap"),
        labels_csv=tiny.make_synthetic_videos(
            folders.videos, num_classes=args.num_classes, clips_per_class=args.clips_per_class
        ),
    )


def _generate_argv(folders: _DemoFolders, inputs: _DemoInputs) -> list[str]:
    return [
        "generate", str(inputs.labels_csv),
        "--output-dir", str(folders.triplets),
        "--captioner", str(inputs.blip2),
        "--scorer", "msclap:2023",
        "--scorer-weights", str(inputs.msclap),
        "--shard-size", "8",
        "--num-workers", "1",
    ]  # fmt: skip


def _filter_argv(folders: _DemoFolders) -> list[str]:
    return ["filter", str(folders.triplets), "--top", "10", "30", "50", "--random", "30", "--seed", "0"]


def _pretrain_argv(folders: _DemoFolders, args: argparse.Namespace) -> list[str]:
    from avt_triplets import tiny

    tiny_config = tiny.make_tiny_lgcavmae(folders.models / "tiny-lgcavmae-init")
    return [
        "pretrain",
        "--dataset", f"{folders.triplets}:{args.subset}",
        "--config-name-or-path", str(tiny_config),
        "--output-dir", str(folders.model),
        "--max-steps", str(args.max_steps),
        "--per-device-batch-size", str(args.per_device_batch_size),
        "--learning-rate", LEARNING_RATE,
        "--lr-scheduler", "cosine",
        "--warmup-steps", str(max(1, args.max_steps // 10)),
        "--logging-steps", str(max(1, args.max_steps // 20)),
        "--num-workers", "0",
        "--save-steps", str(args.max_steps),
        "--report-to", "none",
    ]  # fmt: skip


def _evaluate_argv(folders: _DemoFolders) -> list[str]:
    return [
        "evaluate", "retrieval",
        "--model", str(folders.model),
        "--dataset", str(folders.triplets),
        "--protocol", "full",
        "--output-dir", str(folders.report),
    ]  # fmt: skip


def _reload(model_dir: Path) -> None:
    """Shows that the pretrained folder is an ordinary transformers checkpoint."""
    from transformers import AutoModel

    import modeling_lgcavmae  # noqa: F401  (registers the Auto classes)

    reloaded = AutoModel.from_pretrained(model_dir)
    print(f"AutoModel.from_pretrained({model_dir}) -> {type(reloaded).__name__}")


def _report_learning(folders: _DemoFolders) -> None:
    """The loss curve of the pretraining run and its retrieval next to chance, in the report folder (and printed)."""
    # what `avt pretrain` writes (avt_training.tracking's METRICS_FILE and LOSS_CURVE_FILE; avt_triplets can't import it)
    rows = [
        json.loads(line)
        for line in (folders.model / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    rows = [r for r in rows if "loss" in r]
    curve = shutil.copyfile(folders.model / "loss_curve.png", folders.report / LOSS_CURVE_FILE)
    (entry,) = json.loads((folders.report / "retrieval.json").read_text())["entries"]
    clips = entry["num_clips"]
    learning: dict[str, Any] = {
        "loss_first": rows[0]["loss"],
        "loss_last": rows[-1]["loss"],
        "steps": rows[-1]["step"],
        "clips": clips,
        "chance": {"R@1": 1 / clips, "R@10": min(1.0, 10 / clips)},
    }
    for direction, metrics in entry["metrics"].items():
        learning[direction] = {k: metrics[k] for k in ("R@1", "R@10") if k in metrics}
    (folders.report / LEARNING_FILE).write_text(json.dumps(learning, indent=2) + "\n")
    print(
        f"loss {learning['loss_first']:.3f} -> {learning['loss_last']:.3f} over {learning['steps']} steps: {curve}"
    )
    for direction in ("audio_to_visual", "visual_to_audio"):
        recalls = ", ".join(
            f"{k} {100 * v:.1f}% (chance {100 * learning['chance'][k]:.1f}%)"
            for k, v in learning.get(direction, {}).items()
        )
        print(f"{direction.replace('_', ' ')}: {recalls}")


def _print_summary(folders: _DemoFolders, subset: str, timings: dict[str, float]) -> None:
    print("\n=== avt demo finished")
    print(json.dumps({k: round(v, 1) for k, v in timings.items()}))
    print(f"videos:   {folders.videos}")
    print(f"dataset:  {folders.triplets}   (load_dataset('{folders.triplets}', '{subset}'))")
    print(f"model:    {folders.model}")
    print(f"report:   {folders.report}")


def run(args: argparse.Namespace) -> int:
    common = ["--log-level", args.log_level] + ([] if args.progress else ["--no-progress"])

    def avt(
        argv: list[str],
    ) -> int:  # the CLI's entry point, handed over by avt.cli, with the demo's own settings
        return args._avt(argv + common)

    from avt_core.run_config import write_run_config

    folders = _DemoFolders.under(Path(args.output_dir).resolve())
    if args.overwrite and folders.out.exists():
        shutil.rmtree(folders.out)
    folders.out.mkdir(parents=True, exist_ok=True)
    write_run_config(folders.out, "demo", args)
    timings: dict[str, float] = {}

    t = _step("1/7 tiny random-weight models and synthetic videos")
    inputs = _make_inputs(folders, args)
    timings["setup_s"] = time.perf_counter() - t

    # (title, timing key, action): an action's non-zero exit code ends the demo with that code.
    steps: tuple[tuple[str, str, Callable[[], int | None]], ...] = (
        ("2/7 avt generate (caption every frame, CLAP-score against the audio, keep the best)", "generate_s",
         lambda: avt(_generate_argv(folders, inputs))),
        ("3/7 avt filter (top-k% and random-k% views)", "filter_s", lambda: avt(_filter_argv(folders))),
        (f"4/7 avt pretrain (tiny LG-CAV-MAE on {args.subset})", "pretrain_s",
         lambda: avt(_pretrain_argv(folders, args))),
        ("5/7 reload with transformers' AutoModel", "reload_s", lambda: _reload(folders.model)),
        ("6/7 avt evaluate retrieval (audio->visual, visual->audio recall@K)", "evaluate_s",
         lambda: avt(_evaluate_argv(folders))),
        ("7/7 did it learn? (loss curve, retrieval against chance)", "report_s", lambda: _report_learning(folders)),
    )  # fmt: skip
    for title, key, action in steps:
        t = _step(title)
        if code := action():
            return code
        timings[key] = time.perf_counter() - t

    _print_summary(folders, args.subset, timings)
    return 0
