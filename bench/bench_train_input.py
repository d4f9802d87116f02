"""Training input at real size: the ``datasets``-cache path (``load_dataset`` copies the output into the cache,
full permutation) vs reading the Parquet in place (``avt_data.parquet_rows`` + the block-shuffled order).

For synthetic generation outputs of 1k and 5k clips at paper clip size (10 JPEG frames at 224 + 10 s of
16 kHz WAV, written by the generation writer: its row groups, stats and card), each path runs in a fresh
process with its own ``datasets`` cache and measures: time from "open the dataset" to the first collated
batch out of the DataLoader, extra disk under the ``datasets`` cache, peak RSS (main process and largest
DataLoader worker), samples/s per worker over the next batches (full pretraining collator: fbank, image,
noise, MAE masks) and the worker's CPU ms per sample (robust to other load on the machine); both paths read
from the page cache (the cache path reads the copy it just wrote; the Parquet files are read once before).
Then, without decoding, how far the block-shuffled order is from a full permutation: batches mixing shards, row
groups and classes (clips are written class by class, as a generation over a class-per-folder input writes them).

    .venv/bin/python bench/bench_train_input.py [--clips 1000 5000] [--workers 1] [--batch-size 30]
        [--batches 10] [--data-dir DIR (reuse generated outputs)] [--windows 128 512 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATHS = (
    "in_place",
    "datasets_cache",
)  # in place first: the other one's 2x-size copy is still being written back
COLUMNS = ("audio", "frames", "text_embedding")


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


class CpuStampedCollator:
    """The collator, plus the worker process's CPU time when the batch was done: CPU per sample between two
    batches of one worker is what reading + decoding + collating cost, whatever else loads the machine."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, examples):
        import torch

        batch = self.collator(examples)
        batch["worker_cpu_s"] = torch.tensor(time.process_time(), dtype=torch.float64)
        return batch


def run_case(path: str, root: str, workers: int, batch_size: int, batches: int, window: int) -> dict:
    """One path in this (fresh) process; the parent set HF_DATASETS_CACHE to an empty folder."""
    import torch
    from torch.utils.data import DataLoader

    from avt_data.block_sampler import sampler_for_rows
    from avt_data.cached import load_through_datasets_cache
    from avt_data.parquet_rows import load_triplets
    from avt_training.collators import PretrainingCollator
    from avt_training.data import ClipDataset, EpochShuffleSampler
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeProcessor

    torch.set_num_threads(1)
    config = LGCavMaeConfig()
    collator = CpuStampedCollator(
        PretrainingCollator(
            LGCavMaeProcessor.from_config(config), True, config.num_audio_patches, config.num_visual_patches
        )
    )
    start = time.perf_counter()
    if path == "datasets_cache":
        rows = load_through_datasets_cache([root], columns=COLUMNS)
        clips = ClipDataset(rows, frame_selection="random", seed=0)
        sampler = EpochShuffleSampler(len(clips), seed=0)
    else:
        rows = load_triplets([root], columns=COLUMNS)
        clips = ClipDataset(rows, frame_selection="random", seed=0)
        sampler = sampler_for_rows(rows, batch_size, seed=0, lanes=max(workers, 1), window=window)
    opened_s = time.perf_counter() - start
    loader = DataLoader(
        clips,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=workers,
        prefetch_factor=4 if workers else None,
        drop_last=True,
    )
    batches = min(batches, len(loader) - 1)  # one epoch at most
    iterator = iter(loader)
    first = next(iterator)
    first_batch_s = time.perf_counter() - start
    samples, timed = 0, time.perf_counter()
    cpu_start = {0: float(first["worker_cpu_s"])}  # batch b comes from worker b % workers
    cpu_end, cpu_samples = dict(cpu_start), {0: 0}
    for number in range(1, batches + 1):
        batch = next(iterator)
        samples += batch["audio_values"].shape[0]
        worker = number % max(workers, 1)
        if worker in cpu_start:
            cpu_end[worker] = float(batch["worker_cpu_s"])
            cpu_samples[worker] += batch["audio_values"].shape[0]
        else:
            cpu_start[worker] = cpu_end[worker] = float(batch["worker_cpu_s"])
            cpu_samples[worker] = 0
    elapsed = time.perf_counter() - timed
    cpu_s = sum(cpu_end[w] - cpu_start[w] for w in cpu_start)
    cpu_counted = sum(cpu_samples.values())
    del iterator, loader  # workers exit, so their peak RSS is in RUSAGE_CHILDREN
    return {
        "open_dataset_s": round(opened_s, 2),
        "time_to_first_batch_s": round(first_batch_s, 2),
        "timed_batches": batches,
        "samples_per_second": round(samples / elapsed, 2),
        "samples_per_second_per_worker": round(samples / elapsed / max(workers, 1), 2),
        "worker_cpu_ms_per_sample": round(1000 * cpu_s / max(cpu_counted, 1), 2),
        "peak_rss_main_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_largest_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def warm_page_cache(folder: Path) -> None:
    """Read every file once: the cache path reads an Arrow copy it has just written (in the page cache), so the
    in-place path gets its Parquet files in the page cache too; otherwise the comparison measures the disk."""
    for file in sorted(folder.rglob("*.parquet")):
        with open(file, "rb") as handle:
            while handle.read(1 << 24):
                pass


def run_in_subprocess(path: str, root: Path, cache: Path, args: argparse.Namespace) -> dict:
    if path == "in_place":
        warm_page_cache(root / "data")
    os.sync()  # no case pays for the writeback of an earlier one's files
    command = [
        sys.executable, __file__, "--case", path, "--root", str(root), "--workers", str(args.workers),
        "--batch-size", str(args.batch_size), "--batches", str(args.batches), "--windows", str(args.windows[0]),
    ]  # fmt: skip
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{path} case failed:\n{result.stderr[-3000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured["extra_disk_in_datasets_cache_mb"] = round(folder_bytes(cache) / 2**20, 2)
    return measured


def shuffle_quality(root: Path, batch_size: int, windows: list[int]) -> dict:
    """Batches mixing shards / row groups / classes: block-shuffled orders vs a full permutation."""
    import numpy as np

    from avt_data.block_sampler import BlockShuffleSampler, mixing_report
    from avt_data.parquet_rows import open_parquet_triplets

    rows = open_parquet_triplets([str(root)], columns=["labels"])
    groups = {
        "shard": rows.file_ids(),
        "row_group": rows.block_ids(),
        "class": np.asarray([labels[0] for labels in rows["labels"]]),
    }
    reports = {}
    for lanes in (1, 8):
        for window in windows:
            sampler = BlockShuffleSampler(rows.block_ids(), batch_size, lanes=lanes, window=window)
            reports[f"lanes={lanes} window={window}"] = mixing_report(sampler, groups)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, nargs="+", default=[1000, 5000], help="dataset sizes to compare")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers")
    parser.add_argument("--batch-size", type=int, default=30, help="clips per batch (LG-CAV-MAE default)")
    parser.add_argument("--batches", type=int, default=10, help="batches timed after the first one")
    parser.add_argument("--windows", type=int, nargs="+", default=[512, 128, 2048], help="shuffle windows; "
                        "the first one is used for the timing runs")  # fmt: skip
    parser.add_argument("--data-dir", help="keep the generated outputs here and reuse them on later runs")
    parser.add_argument("--case", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(
            json.dumps(
                run_case(args.case, args.root, args.workers, args.batch_size, args.batches, args.windows[0])
            )
        )
        return

    from avt_training.synthetic import write_generation_output

    with tempfile.TemporaryDirectory(prefix="bench_train_input_") as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp)
        results = {}
        for clips in args.clips:
            root = data_dir / f"synthetic_{clips}"
            if not (root / "README.md").exists():
                started = time.perf_counter()
                write_generation_output(root, clips)
                print(f"wrote {clips} clips in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            entry = {"dataset_parquet_mb": round(folder_bytes(root / "data") / 2**20, 1)}
            for path in PATHS:
                entry[path] = run_in_subprocess(path, root, Path(tmp) / f"cache_{clips}_{path}", args)
            results[str(clips)] = entry
        largest = data_dir / f"synthetic_{max(args.clips)}"
        quality = shuffle_quality(largest, args.batch_size, args.windows)
    print(
        json.dumps(
            {
                "benchmark": "training input: datasets cache vs Parquet read in place",
                "clip": "10 s audio @16 kHz (WAV), 10 JPEG frames 224x224, written by the generation writer",
                "workers": args.workers,
                "batch_size": args.batch_size,
                "timed_batches": args.batches,
                "by_dataset_size": results,
                f"shuffle_quality_{max(args.clips)}_clips": quality,
                "cpu": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
