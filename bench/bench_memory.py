"""Memory of avt's processes (issue 23 item 2): USS and RSS per process and summed over the process tree.

USS (memory only that process holds) is what a process really costs; RSS also counts shared pages (the
libraries every worker maps, Arrow memory maps, pages a forked worker still shares with its parent), so RSS
summed over a tree over-counts and USS summed under-counts what the tree holds together. Each figure is the
peak of samples taken every ``--interval`` seconds (psutil: ``memory_full_info().uss`` reads smaps); the tree's
figure is the peak of the sum at one sample, ``sum_of_peaks`` adds every process's own peak (an upper bound).

    (a) generate: ``avt generate --captioner none`` on synthetic clips (avt_triplets/tiny/videos.py)
    (b) pretrain: a tiny LG-CAV-MAE pretraining on synthetic triplets with 2 DataLoader workers
    (c) ray: the modules a Ray decode task has imported (``sys.modules`` inside the task), if Ray is installed

    .venv/bin/python bench/bench_memory.py [--parts generate pretrain ray] [--clips 8] [--steps 30]
    .venv/bin/python bench/bench_memory.py --parts pretrain --rows paper --train-clips 2048 --windows 512 256 \
        --data-dir /tmp/avt-bench-rows  # the issue 23 item 2 figures (paper-size rows are made once, in minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "torchcodec", "accelerate", "datasets", "pandas")
MB = 1 << 20


def _sample(root: psutil.Process) -> dict[int, dict]:
    found = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_full_info()
            found[process.pid] = {
                "name": " ".join(process.cmdline()[:4])[-80:],
                "rss": info.rss,
                "uss": info.uss,
            }
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def measure(argv: list[str], interval: float, env: dict[str, str]) -> dict:
    """Run ``argv`` and report the peak USS / RSS of each process of its tree and of their sums, in MB."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    root = psutil.Process(child.pid)
    peaks: dict[int, dict] = {}
    tree = {"rss": 0, "uss": 0}
    while child.poll() is None:
        sample = _sample(root)
        for pid, now in sample.items():
            peak = peaks.setdefault(pid, {"name": now["name"], "rss": 0, "uss": 0})
            peak["rss"], peak["uss"] = max(peak["rss"], now["rss"]), max(peak["uss"], now["uss"])
        for key in tree:
            tree[key] = max(tree[key], sum(now[key] for now in sample.values()))
        time.sleep(interval)
    stderr = child.stderr.read()
    if child.returncode != 0:
        raise SystemExit(f"error: {argv[3:6]} failed ({child.returncode}): {stderr[-2000:]}")
    main = peaks.pop(child.pid, {"name": "", "rss": 0, "uss": 0})
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "main_process_mb": {"rss": round(main["rss"] / MB), "uss": round(main["uss"] / MB)},
        "children_mb": [
            {"pid": pid, "cmd": p["name"], "rss": round(p["rss"] / MB), "uss": round(p["uss"] / MB)}
            for pid, p in sorted(peaks.items())
        ],
        "tree_summed_peak_mb": {"rss": round(tree["rss"] / MB), "uss": round(tree["uss"] / MB)},
        # an upper bound: every process at its own peak at once (workers of successive epochs counted each)
        "sum_of_peaks_mb": {
            key: round((main[key] + sum(p[key] for p in peaks.values())) / MB) for key in ("rss", "uss")
        },
    }


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def bench_generate(work: Path, clips: int, interval: float) -> dict:
    from avt_triplets.tiny.videos import make_synthetic_videos

    labels = make_synthetic_videos(work / "videos", num_classes=2, clips_per_class=max(1, clips // 2))
    argv = [sys.executable, "-m", "avt", "generate", str(labels), "-o", str(work / "labelled")]
    argv += ["--captioner", "none", "--num-workers", "2", "--no-progress"]
    return {"command": "avt generate --captioner none --num-workers 2", **measure(argv, interval, _env())}


# Stored rows: "tiny" as the training tests make them; "paper" as a real generation stores them (10 s of 16 kHz
# WAV, 10 JPEG frames of 224 x 224: ~0.5 MB per clip), which is what the shuffle windows of a worker hold.
ROW_SIZES = {
    "tiny": {"seconds": 1.3, "frame_size": 48},
    "paper": {"seconds": 10.0, "frame_size": 224, "frames_per_clip": 10},
}


def bench_pretrain(
    work: Path, steps: int, interval: float, rows: str, window: int, clips: int, data_dir: Path | None = None
) -> dict:
    from avt_training.synthetic import make_synthetic_triplets
    from avt_triplets.tiny import make_tiny_lgcavmae

    data = (data_dir or work) / f"triplets-{rows}-{clips}"
    if not data.exists():
        make_synthetic_triplets(data, clips_per_class=max(1, clips // 8), **ROW_SIZES[rows])
    model = make_tiny_lgcavmae(work / "model", audio_length=128, num_mel_bins=64, image_size=48)
    argv = [
        sys.executable,
        "-m",
        "avt",
        "pretrain",
        "--dataset",
        str(data),
        "--config-name-or-path",
        str(model),
    ]
    argv += ["--output-dir", str(work / f"run-{rows}-{window}"), "--per-device-batch-size", "8"]
    argv += [
        "--max-steps",
        str(steps),
        "--num-workers",
        "2",
        "--report-to",
        "none",
        "--logging-steps",
        str(steps),
    ]
    argv += ["--shuffle-window", str(window)]
    command = f"avt pretrain --num-workers 2 --shuffle-window {window} (tiny model, batch 8, {clips} {rows}-size rows)"
    return {"command": command, **measure(argv, interval, _env())}


def _ray_decode_modules(paths: list[str]) -> dict:
    from avt_triplets.decoding import DecodeSettings
    from avt_triplets.distributors.ray_data import decode_chunk
    from avt_triplets.inputs import ClipSpec
    from avt_triplets.stages.reader import Chunk

    clips = tuple(ClipSpec(f"c{i}", path, path) for i, path in enumerate(paths))
    items = decode_chunk({"chunk": Chunk(0, 0, clips)}, DecodeSettings(model_inputs=False))["payload"]
    me = psutil.Process()
    return {
        "decoded": sum(item.failure is None for item in items),
        "heavy_modules_imported": [name for name in HEAVY if name in sys.modules],
        "task_process_mb": {
            "rss": round(me.memory_info().rss / MB),
            "uss": round(me.memory_full_info().uss / MB),
        },
    }


def bench_ray(work: Path) -> dict:
    try:
        import ray
    except ImportError:
        return {"skipped": "ray is not installed"}
    videos = sorted(str(p) for p in (work / "videos" / "videos").glob("*.mp4"))[:2]
    if not videos:
        from avt_triplets.tiny.videos import make_synthetic_videos

        make_synthetic_videos(work / "videos", num_classes=1, clips_per_class=2)
        videos = sorted(str(p) for p in (work / "videos" / "videos").glob("*.mp4"))[:2]
    ray.init(num_cpus=1, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    try:
        return ray.get(ray.remote(_ray_decode_modules).remote(videos))
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts", nargs="+", choices=["generate", "pretrain", "ray"], default=["generate", "pretrain", "ray"]
    )
    parser.add_argument("--clips", type=int, default=8, help="synthetic clips for the generate part")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps of the pretrain part")
    parser.add_argument(
        "--rows", choices=sorted(ROW_SIZES), default="tiny", help="stored row size (pretrain)"
    )
    parser.add_argument(
        "--windows", type=int, nargs="+", default=[512], help="--shuffle-window values (pretrain)"
    )
    parser.add_argument("--train-clips", type=int, default=64, help="stored clips of the pretrain part")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the pretrain part's synthetic rows here (made once; paper-size rows take minutes to make)",
    )
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    args = parser.parse_args()
    report: dict = {"machine": platform.node(), "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="avt-bench-memory-") as tmp:
        work = Path(tmp)
        if "generate" in args.parts:
            report["generate"] = bench_generate(work, args.clips, args.interval)
        if "pretrain" in args.parts:
            report["pretrain"] = [
                bench_pretrain(
                    work, args.steps, args.interval, args.rows, window, args.train_clips, args.data_dir
                )
                for window in args.windows
            ]
        if "ray" in args.parts:
            report["ray_decode_task"] = bench_ray(work)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
