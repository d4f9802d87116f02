"""Generation pipeline benchmark with the tiny models: per-stage time, end-to-end rate, overhead, memory.

Measures, on ``--clips`` synthetic clips (``--seconds`` long, listed from a few distinct files):

* ``models_alone``: the captioner and scorer called directly on already-decoded clips with the
  pipeline's batch sizes (captions of all frames, audio and unique-caption embeddings): the floor.
* ``end_to_end``: ``generate_triplets`` from video files to committed Parquet shards (model loading
  excluded), with ``--num-workers`` decode processes, and its per-stage seconds from the stats files.
* ``overhead_ratio`` = end-to-end wall time / models-alone time (target <= 1.1: decoding, encoding
  and writing hide behind the models). With the tiny models on a small CPU box decoding can be the
  slower side; ``bound`` says which one is, and ``ratio_to_bound`` compares the run with it
  (``max(models alone, decode alone / workers)``).
* ``peak_rss``: the same run in a fresh subprocess for ``--rss-clips`` (default 50 and 500) clips,
  after a warm-up: the main process's RSS before the run, its peak during the run, and the largest
  decode worker's peak USS (its own pages, not those shared with the parent). Should be flat in N.

The models get ``--torch-threads`` (default 1) threads so the decode workers have the other cores,
as they would next to a GPU. Prints JSON.

``--distributor local ray`` adds ``distributors``: the same clips through each distributor in turn (``avt
generate``'s code in a fresh process each, models loaded from folders, ``--chunk-size`` clips per chunk): wall time, clips/s, the stats'
seconds per stage, and the peak summed RSS of this process and all its descendants (decode workers; Ray's GCS,
raylet, workers and actors), the time to the first chunk part and to the first committed shard (its stats file
seen in the output), and the steady rate: the clips after the first shard over the time from the first to the last
committed shard. Times count from the call of ``generate_triplets``, for ``ray`` after Ray started
(``wall_split_s.ray_init_s`` on its own; ``probes_reported_s`` / ``settled_s``: when the actors' probe reports
reached the driver and when it had settled the run). ``ray_over_local`` divides the two (goal: <= 1.2).

    python bench/bench_generate.py --clips 40 --seconds 10 --rss-clips 50 500
    python bench/bench_generate.py --clips 96 --seconds 10 --shard-size 32 --chunk-size 8 --distributor local ray
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_clip_list(folder: Path, clips: int, seconds: float, distinct: int = 6) -> Path:
    """``clips`` rows over ``distinct`` synthetic files (explicit clip ids), as ``list.csv``."""
    from avt_triplets.tiny.videos import SYNTHETIC_CLASSES, write_synthetic_video

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(min(distinct, clips)):
        cls = SYNTHETIC_CLASSES[i % len(SYNTHETIC_CLASSES)]
        files.append(
            write_synthetic_video(folder / f"v{i:02d}.mp4", [cls], duration_s=seconds, fps=25, seed=i).name
        )
    path = folder / "list.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_id", "video_path", "labels"])
        for i in range(clips):
            writer.writerow([f"clip_{i:06d}", files[i % len(files)], "synthetic"])
    return path


def load_models(workdir: Path, captioner_path: str | None, scorer_path: str | None, max_new_tokens: int):
    from avt_triplets.captioners import load_captioner
    from avt_triplets.scorers import load_scorer
    from avt_triplets.tiny import make_tiny_blip2, make_tiny_clap

    captioner_path = captioner_path or str(make_tiny_blip2(workdir / "tiny_blip2"))
    scorer_path = scorer_path or str(make_tiny_clap(workdir / "tiny_clap"))
    captioner = load_captioner(captioner_path, device="cpu", max_new_tokens=max_new_tokens)
    scorer = load_scorer(scorer_path, device="cpu")
    return captioner, scorer


def models_alone(list_csv: Path, captioner, scorer, caption_batch: int, score_batch: int) -> dict:
    """Caption + score already-decoded clips with the pipeline's batching, no pipeline around it. The clips are
    preprocessed for the models first, as the decode workers do, so only the model calls are timed."""
    from avt_triplets.decoding import DecodeJob, DecodeSettings, decode_job
    from avt_triplets.inputs import load_inputs
    from avt_triplets.model_inputs import caption_rows, embed_audio_inputs, preparer_for

    clips = load_inputs(list_csv).clips
    settings = DecodeSettings(
        scorer_sampling_rate=scorer.sampling_rate, prepare=preparer_for(captioner, scorer)
    )
    decoded = {}
    started = time.perf_counter()
    for clip in clips:  # decode each distinct file once; rows reuse them
        if clip.source not in decoded:
            decoded[clip.source] = decode_job(DecodeJob(0, 0, clip), settings)
    decode_s_per_clip = (time.perf_counter() - started) / len(decoded)
    inputs = [decoded[clip.source].inputs for clip in clips]
    frames = [(x.frames.row(row), x.frames.preprocessed) for x in inputs for row in x.frames.rows]
    started = time.perf_counter()
    captions = []
    for i in range(0, len(frames), caption_batch):
        batch = frames[i : i + caption_batch]
        captions += caption_rows(captioner, [row for row, _ in batch], batch[0][1])
    caption_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, len(inputs), score_batch):
        embed_audio_inputs(scorer, [x.audio for x in inputs[i : i + score_batch]])
    # the pipeline embeds each distinct caption of a score group once
    texts = []
    per_clip = [len(x.frames.rows) for x in inputs]
    position = 0
    for i in range(0, len(inputs), score_batch):
        count = sum(per_clip[i : i + score_batch])
        texts += list(dict.fromkeys(captions[position : position + count]))
        position += count
    for i in range(0, len(texts), score_batch):
        scorer.embed_text(texts[i : i + score_batch])
    score_s = time.perf_counter() - started
    return {
        "caption_s": caption_s,
        "score_s": score_s,
        "decode_s_per_clip": decode_s_per_clip,
        "frames": len(frames),
        "texts": len(texts),
    }


def bench_options(args, **fields):
    """The :class:`GenerationOptions` of a timed run: the command line's sizes, one process writing a fresh output
    folder, no progress bar and no card; ``fields`` set the rest (``fps``, ``chunk_size``, ...)."""
    from avt_triplets.options import GenerationOptions

    return GenerationOptions(
        shard_size=args.shard_size,
        num_workers=args.num_workers,
        caption_batch_size=args.caption_batch_size,
        score_batch_size=args.score_batch_size,
        progress=False,
        overwrite=True,
        rank=0,
        world_size=1,
        write_card=False,
        **fields,
    )


def end_to_end(list_csv: Path, out: Path, captioner, scorer, args, clips: int | None = None) -> dict:
    from avt_triplets.pipeline import generate_triplets

    started = time.perf_counter()
    summary = generate_triplets(list_csv, out, captioner, scorer, bench_options(args))
    wall = time.perf_counter() - started
    assert summary.triplets == (clips or args.clips), summary.format()
    return {"wall_s": wall, "seconds": summary.seconds, "clips": summary.clips}


class _Sampler:
    """Calls ``sample()`` every ``interval`` seconds in a thread while the ``with`` block runs."""

    interval = 0.02

    def __init__(self) -> None:
        import threading

        import psutil

        self.process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class _RssSampler(_Sampler):
    """This process's peak RSS and its children's (the decode workers) peak USS."""

    main_peak = worker_peak = 0

    def sample(self) -> None:
        import psutil

        self.main_peak = max(self.main_peak, self.process.memory_info().rss)
        for child in self.process.children(recursive=True):
            try:
                self.worker_peak = max(self.worker_peak, child.memory_full_info().uss)
            except psutil.Error:
                pass


def rss_child(args) -> None:
    """Subprocess mode: one end-to-end run; print the memory it took beyond the loaded models."""
    import torch

    torch.set_num_threads(args.torch_threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        list_csv = make_clip_list(tmp / "videos", args.clips, args.seconds)
        captioner, scorer = load_models(tmp, args.captioner, args.scorer, args.max_new_tokens)
        end_to_end(make_clip_list(tmp / "warm", 2, 2.0), tmp / "warm_out", captioner, scorer, args, clips=2)
        import psutil

        before = psutil.Process().memory_info().rss
        with _RssSampler() as sampler:
            result = end_to_end(list_csv, tmp / "out", captioner, scorer, args)
    print(
        json.dumps(
            {
                "clips": args.clips,
                "main_rss_before_run_mb": round(before / 2**20, 1),
                "main_peak_rss_during_run_mb": round(sampler.main_peak / 2**20, 1),
                "main_growth_mb": round((sampler.main_peak - before) / 2**20, 1),
                "worker_peak_uss_mb": round(sampler.worker_peak / 2**20, 1),
                "wall_s": round(result["wall_s"], 2),
            }
        )
    )


class _TreeRss(_Sampler):
    """Peak of the summed RSS of this process and all its descendants."""

    interval, peak = 0.05, 0

    def sample(self) -> None:
        import psutil

        total = 0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)


class _Commits(_Sampler):
    """When each shard's stats file (written last: the shard is committed) and the first chunk part of the output
    ``root`` appeared, in seconds since ``origin``."""

    interval = 0.05

    def __init__(self, root: Path, origin: float):
        super().__init__()
        self.root, self.origin = root, origin
        self.first_part_s: float | None = None
        self.committed_s: dict[str, float] = {}

    def sample(self) -> None:
        from avt_triplets import layout

        now = time.perf_counter() - self.origin
        if self.first_part_s is None and any(
            (self.root / layout.PARTS_DIR).glob(f"*/*{layout.PART_RECORD_SUFFIX}")
        ):
            self.first_part_s = now
        for path in (self.root / layout.STATS_DIR).glob(f"*{layout.STATS_SUFFIX}"):
            self.committed_s.setdefault(path.name, now)
        if self.committed_s and self.first_part_s is None:
            self.first_part_s = min(self.committed_s.values())

    def report(self, clips: int, shard_size: int) -> dict:
        """Time to the first committed shard, and the rate of the clips committed after it (steady state)."""
        times = sorted(self.committed_s.values())
        first, last = times[0], times[-1]
        steady = (clips - shard_size) / (last - first) if len(times) > 1 and last > first else None
        return {
            "first_part_s": round(self.first_part_s, 2),
            "first_committed_shard_s": round(first, 2),
            "last_committed_shard_s": round(last, 2),
            "steady_clips_per_s": None if steady is None else round(steady, 3),
        }


def _ray_marks(marks: dict[str, float], origin: list[float]):
    """Wrap the run's settle step to mark when the probe reports reached the driver and when it posted its
    verdict (seconds since ``origin[0]``, Ray already started); returns the function to restore."""
    import avt_triplets.pipeline as pipeline

    settle = pipeline._settle

    def timed_settle(*args, **kwargs):
        marks.setdefault("probes_reported_s", time.perf_counter() - origin[0])
        try:
            return settle(*args, **kwargs)
        finally:
            marks.setdefault("settled_s", time.perf_counter() - origin[0])

    pipeline._settle = timed_settle
    return lambda: setattr(pipeline, "_settle", settle)


def run_distributor(kind: str, list_csv: Path, out: Path, models, args) -> dict:
    """One `avt generate` run of ``kind`` over ``list_csv`` (models loaded from folders, as the CLI does). Times
    count from after Ray started (``ray_init_s`` is reported on its own)."""
    from avt_triplets.pipeline import generate_triplets

    marks: dict[str, float] = {}
    origin = [time.perf_counter()]
    restore = None
    if kind == "ray":
        import ray

        ray.init(include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        marks["ray_init_s"] = time.perf_counter() - origin[0]
        origin[0] = time.perf_counter()
        restore = _ray_marks(marks, origin)
    options = dict(
        shard_size=args.shard_size, chunk_size=args.chunk_size, caption_batch_size=args.caption_batch_size
    )
    options |= dict(score_batch_size=args.score_batch_size, num_workers=args.num_workers, progress=False)
    try:
        with _TreeRss() as rss, _Commits(out, origin[0]) as commits:
            summary = generate_triplets(
                list_csv, out, models=models, distributor=kind, write_card=False, **options
            )
    finally:
        if restore is not None:
            restore()
            ray.shutdown()
    wall = time.perf_counter() - origin[0]
    commits.sample()
    assert summary.triplets == args.clips, summary.format()
    result = {
        "wall_s": round(wall, 2),
        "clips_per_s": round(args.clips / wall, 3),
        **commits.report(args.clips, args.shard_size),
        "stage_seconds": {k: round(v, 2) for k, v in summary.seconds.items()},
        "peak_rss_all_processes_mb": round(rss.peak / 2**20, 1),
    }
    if kind == "ray":
        result["wall_split_s"] = {k: round(v, 2) for k, v in marks.items()}
    return result


def distributor_child(args) -> None:
    """Subprocess mode (``--distributor-child KIND``): one run in a fresh process, as ``avt generate`` is (the
    models' libraries imported inside the run, by this process or by Ray's); prints its JSON."""
    from avt_triplets.options import ModelOptions

    models = ModelOptions(
        captioner=args.captioner, scorer=args.scorer, device="cpu", max_new_tokens=args.max_new_tokens
    )
    kind = args.distributor_child
    print(json.dumps(run_distributor(kind, Path(args.list_csv), Path(args.out), models, args)))


def compare_distributors(args) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        list_csv = make_clip_list(tmp / "videos", args.clips, args.seconds)
        from avt_triplets.tiny import make_tiny_blip2, make_tiny_clap

        captioner = args.captioner or str(make_tiny_blip2(tmp / "tiny_blip2"))
        scorer = args.scorer or str(make_tiny_clap(tmp / "tiny_clap"))
        for kind in args.distributor:
            command = [sys.executable, __file__, "--distributor-child", kind, "--list-csv", str(list_csv)]
            command += ["--out", str(tmp / f"out_{kind}"), "--captioner", captioner, "--scorer", scorer]
            for flag in ("clips", "shard_size", "chunk_size", "caption_batch_size", "score_batch_size"):
                command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            command += ["--num-workers", str(args.num_workers), "--max-new-tokens", str(args.max_new_tokens)]
            env = {
                **os.environ,
                "OMP_NUM_THREADS": str(args.torch_threads),
            }  # the models' threads, here and in Ray
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise SystemExit(f"the {kind} run failed:\n{done.stderr[-5000:]}")
            results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    if "local" in results and "ray" in results:
        ray, local = results["ray"], results["local"]
        results["ray_over_local"] = {  # goal: both <= 1.2 (times after Ray started; a rate inverted)
            "wall": round(ray["wall_s"] / local["wall_s"], 2),
            "first_committed_shard": round(
                ray["first_committed_shard_s"] / local["first_committed_shard_s"], 2
            ),
            "steady_time_per_clip": round(local["steady_clips_per_s"] / ray["steady_clips_per_s"], 2)
            if ray["steady_clips_per_s"] and local["steady_clips_per_s"]
            else None,
        }
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=40, help="Clips in the timed runs.")
    parser.add_argument("--seconds", type=float, default=10.0, help="Length of each synthetic clip.")
    parser.add_argument("--shard-size", type=int, default=20)
    parser.add_argument("--num-workers", type=int, default=1)
    parser.add_argument("--caption-batch-size", type=int, default=32)
    parser.add_argument("--score-batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=30, help="Caption length (the CLI default).")
    parser.add_argument(
        "--torch-threads", type=int, default=1, help="Threads for the models (the rest decode)."
    )
    parser.add_argument(
        "--captioner", default=None, help="Captioner folder (default: a tiny BLIP-2 built here)."
    )
    parser.add_argument("--scorer", default=None, help="CLAP folder (default: a tiny CLAP built here).")
    parser.add_argument(
        "--rss-clips", type=int, nargs="*", default=[50, 500], help="Clip counts of the memory runs."
    )
    parser.add_argument("--rss-seconds", type=float, default=2.0, help="Clip length of the memory runs.")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--distributor",
        nargs="+",
        choices=("local", "ray"),
        default=None,
        help="Only compare these distributors side by side on the same clips (see above).",
    )
    parser.add_argument("--chunk-size", type=int, default=8, help="Clips per chunk (distributor comparison).")
    parser.add_argument("--distributor-child", choices=("local", "ray"), help=argparse.SUPPRESS)
    parser.add_argument("--list-csv", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser


def distributors_report(args) -> dict:
    """``--distributor``: the same clips through each distributor, side by side."""
    result = {"benchmark": "generate_distributors", "clips": args.clips, "clip_seconds": args.seconds}
    result |= {"chunk_size": args.chunk_size, "num_workers": args.num_workers, "cpu_count": os.cpu_count()}
    result["distributors"] = compare_distributors(args)
    result["load_average"] = list(os.getloadavg())
    return result


def memory_runs(args) -> list[dict]:
    """One fresh subprocess (``--rss-child``) per ``--rss-clips`` count, so each run's peak is its own."""
    rss = []
    for clips in args.rss_clips:
        command = [
            sys.executable,
            __file__,
            "--rss-child",
            "--clips",
            str(clips),
            "--seconds",
            str(args.rss_seconds),
        ]
        command += ["--num-workers", str(args.num_workers), "--shard-size", str(args.shard_size)]
        command += ["--caption-batch-size", str(args.caption_batch_size)]
        command += ["--score-batch-size", str(args.score_batch_size)]
        command += ["--max-new-tokens", str(args.max_new_tokens), "--torch-threads", str(args.torch_threads)]
        for flag, value in (("--captioner", args.captioner), ("--scorer", args.scorer)):
            if value:
                command += [flag, value]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rss.append(json.loads(output.strip().splitlines()[-1]))
    return rss


def generate_report(args, alone: dict, e2e: dict, rss: list[dict]) -> dict:
    """The benchmark's JSON: per-stage times, models-alone floor, overhead and what bounds the run."""
    models_s = alone["caption_s"] + alone["score_s"]
    decode_floor = alone["decode_s_per_clip"] * args.clips / max(1, args.num_workers)
    stage = e2e["seconds"]
    return {
        "benchmark": "generate",
        "models": "tiny BLIP-2 + tiny transformers CLAP (random weights, CPU)",
        "clips": args.clips,
        "clip_seconds": args.seconds,
        "frames": alone["frames"],
        "num_workers": args.num_workers,
        "torch_threads": args.torch_threads,
        "per_clip_ms": {
            k: round(1000 * stage.get(k, 0.0) / args.clips, 2)
            for k in ("decode", "wait", "caption", "score", "write")
        },
        "models_alone_per_clip_ms": {
            "caption": round(1000 * alone["caption_s"] / args.clips, 2),
            "score": round(1000 * alone["score_s"] / args.clips, 2),
        },
        "end_to_end_clips_per_s": round(args.clips / e2e["wall_s"], 3),
        "models_alone_clips_per_s": round(args.clips / models_s, 3),
        "overhead_ratio": round(e2e["wall_s"] / models_s, 3),
        # What the run can't beat on this machine: the models, or decoding spread over the workers.
        "decode_alone_per_clip_ms": round(1000 * alone["decode_s_per_clip"], 2),
        "bound": "decode" if decode_floor > models_s else "models",
        "ratio_to_bound": round(e2e["wall_s"] / max(models_s, decode_floor), 3),
        # End-to-end time not spent in a model call or waiting for a decoded clip: the pipeline itself.
        "bookkeeping_ms_per_clip": round(
            1000
            * (e2e["wall_s"] - sum(stage.get(k, 0.0) for k in ("wait", "caption", "score", "write")))
            / args.clips,
            2,
        ),
        "peak_rss": rss,
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    args = _parser().parse_args()
    if args.rss_child:
        rss_child(args)
        return
    if args.distributor_child:
        distributor_child(args)
        return
    import torch

    torch.set_num_threads(args.torch_threads)
    if args.distributor:
        print(json.dumps(distributors_report(args), indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        list_csv = make_clip_list(tmp / "videos", args.clips, args.seconds)
        captioner, scorer = load_models(tmp, args.captioner, args.scorer, args.max_new_tokens)
        end_to_end(
            make_clip_list(tmp / "warm", 2, 2.0), tmp / "warm_out", captioner, scorer, args, clips=2
        )  # warm-up
        alone = models_alone(list_csv, captioner, scorer, args.caption_batch_size, args.score_batch_size)
        e2e = end_to_end(list_csv, tmp / "out", captioner, scorer, args)
    print(json.dumps(generate_report(args, alone, e2e, memory_runs(args)), indent=2))


if __name__ == "__main__":
    main()
