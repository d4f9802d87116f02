"""Pretraining input pipeline throughput: samples/s per DataLoader worker (decode + fbank + image + noise).

Clips are paper-sized: 10 s of 16 kHz audio and 10 JPEG frames of 224x224 per row, in the generation-output
Parquet layout, read in place as training reads them (``avt_data.parquet_rows``, block-shuffled order); the
collator produces the full-size model inputs (1024 x 128 fbank, 224 x 224 image, MAE mask noise). Per-stage
times come from one process; the DataLoader figures from real worker processes.
A GPU step of the base model takes about 0.1-0.2 s for 30 clips, so ~150-300 samples/s per GPU must be fed.

    .venv/bin/python bench/bench_dataloader.py [--clips 64] [--workers 1 2] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path


def _per_stage(clips, collator, batch_size: int) -> tuple[dict[str, float], float, int]:
    """One process: decoding every row (audio + one JPEG) vs. turning batches into model inputs.

    Returns ms per sample of each stage, the seconds of both together and the number of rows."""
    keys = [(i, 0) for i in range(len(clips))]
    start = time.perf_counter()
    examples = [clips[k] for k in keys]
    decode_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, len(examples), batch_size):
        collator(examples[i : i + batch_size])
    collate_s = time.perf_counter() - start
    per_sample_ms = {
        "decode_row": 1000 * decode_s / len(examples),
        "collate (fbank + image + noise + masks)": 1000 * collate_s / len(examples),
    }
    return per_sample_ms, decode_s + collate_s, len(examples)


def _loader_throughput(clips, rows, collator, batch_size: int, workers: int, epochs: int) -> dict[str, float]:
    """Samples/s of a real DataLoader with ``workers`` processes over the block-shuffled order."""
    from torch.utils.data import DataLoader

    from avt_data.block_sampler import sampler_for_rows

    sampler = sampler_for_rows(rows, batch_size, seed=0, lanes=workers, window=512)
    loader = DataLoader(
        clips,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=workers,
        prefetch_factor=4,
        persistent_workers=True,
        drop_last=True,
    )
    next(iter(loader))  # start the workers before timing
    samples, start = 0, time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            samples += batch["audio_values"].shape[0]
    elapsed = time.perf_counter() - start
    return {
        "samples_per_second": round(samples / elapsed, 1),
        "samples_per_second_per_worker": round(samples / elapsed / workers, 1),
    }


def measure(clips: int = 64, batch_size: int = 16, workers: list[int] | None = None, epochs: int = 2) -> dict:
    """The benchmark's JSON as a dict (also called by ``bench/gpu_suite.py``)."""
    import torch

    from avt_data.parquet_rows import load_triplets
    from avt_training.collators import PretrainingCollator
    from avt_training.data import ClipDataset
    from avt_training.synthetic import make_synthetic_triplets
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeProcessor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what each DataLoader worker process gets in practice
    config = LGCavMaeConfig()  # paper sizes: 1024 x 128 fbank, 224 x 224 image, 512 + 196 patches
    processor = LGCavMaeProcessor.from_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic_triplets(
            Path(tmp) / "triplets",
            num_classes=8,
            clips_per_class=max(clips // 8, 1),
            seconds=10.0,
            frames_per_clip=10,
            frame_size=224,
            text_dim=config.text_embed_dim,
        )
        rows = load_triplets([str(root)], columns=("audio", "frames", "text_embedding"))  # read in place
        dataset = ClipDataset(rows, frame_selection="random", seed=0)
        collator = PretrainingCollator(processor, True, config.num_audio_patches, config.num_visual_patches)
        per_sample_ms, single_process_s, rows_timed = _per_stage(dataset, collator, batch_size)
        loaders = {
            str(n): _loader_throughput(dataset, rows, collator, batch_size, n, epochs)
            for n in workers or [1, 2]
        }

    result = {
        "benchmark": "pretraining dataloader",
        "clip": "10 s audio @16 kHz, 10 JPEG frames 224x224",
        "model_inputs": {
            "audio_values": [config.audio_length, config.num_mel_bins],
            "pixel_values": [3, config.image_size, config.image_size],
        },
        "clips": len(dataset),
        "batch_size": batch_size,
        "single_process_ms_per_sample": {k: round(v, 2) for k, v in per_sample_ms.items()},
        "single_process_samples_per_second": round(rows_timed / single_process_s, 1),
        "dataloader": loaders,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
        "torch_threads_per_process": torch.get_num_threads(),
    }
    torch.set_num_threads(threads)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=64, help="rows in the synthetic dataset")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per batch")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="DataLoader worker counts to time"
    )
    parser.add_argument("--epochs", type=int, default=2, help="passes over the data per timing")
    args = parser.parse_args()
    print(json.dumps(measure(args.clips, args.batch_size, args.workers, args.epochs), indent=2))


if __name__ == "__main__":
    main()
