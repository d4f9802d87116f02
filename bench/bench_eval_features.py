"""`avt evaluate` feature extraction throughput: samples/s with 0 / 1 / 2 DataLoader workers.

Clips are paper-sized (10 s of 16 kHz audio, 10 JPEG frames of 224x224, in the generation-output Parquet layout read
in place) and so are the model inputs (1024 x 128 fbank, 224 x 224 image); the model is a random-weight LG-CAV-MAE
with the tiny encoder (hidden size 32), so the figures measure what workers take over (row decode, fbank, image
transform) and not a CPU forward pass of the base model, which on a GPU costs ~1 ms per clip. Also reported: the
single-process split between decode + preprocess and the model, which bounds the speed-up workers can give, the
main process's CPU time per clip (what is left there once workers decode; its inverse is the throughput with a free
core per worker) and the machine's load average (the 2-core dev machine is shared: wall-clock samples/s only scale
with workers when cores are free).

    .venv/bin/python bench/bench_eval_features.py [--clips 64] [--workers 0 1 2] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path


def _stages(model, processor, rows, batch_size: int) -> dict[str, float]:
    """ms per clip of decode + preprocess (the collate the workers run) and of the model, in one process."""
    import torch

    from eval.features import ClipFrameDataset, ModelInputs

    dataset, collate = ClipFrameDataset(rows), ModelInputs(processor, 1)
    prepare_s = model_s = 0.0
    for start in range(0, len(dataset), batch_size):
        began = time.perf_counter()
        batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
        prepared = time.perf_counter()
        with torch.inference_mode():
            model.get_audio_features(batch["audio_values"])
            model.get_visual_features(batch["pixel_values"][0])
        model_s += time.perf_counter() - prepared
        prepare_s += prepared - began
    return {
        "decode_and_preprocess": round(1000 * prepare_s / len(dataset), 2),
        "model": round(1000 * model_s / len(dataset), 2),
    }


def _throughput(model, processor, rows, batch_size: int, workers: int) -> dict[str, float]:
    """Samples/s of ``extract_retrieval_features`` (the `avt evaluate retrieval` path), worker start-up included."""
    from eval.features import extract_retrieval_features

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started, cpu_started = time.perf_counter(), time.process_time()
    features = extract_retrieval_features(
        model, processor, rows, batch_size=batch_size, num_workers=workers, with_text=True, progress=False
    )
    elapsed, main_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers have exited: their CPU is counted
    workers_cpu = (ended.ru_utime + ended.ru_stime) - (children.ru_utime + children.ru_stime)
    clips = len(features.clip_ids)
    return {
        "samples_per_second": round(clips / elapsed, 1),
        "seconds": round(elapsed, 2),
        # CPU the main process spends per clip (the model plus, without workers, decode and preprocess): with
        # a free core per worker the main process is the bottleneck, so 1000 / this is the throughput ceiling
        "main_process_cpu_ms_per_clip": round(1000 * main_cpu / clips, 2),
        "ceiling_samples_per_second": round(clips / main_cpu, 1),
        "workers_cpu_ms_per_clip": round(1000 * workers_cpu / clips, 2),
    }


def measure(clips: int = 64, batch_size: int = 16, workers: list[int] | None = None) -> dict:
    """The benchmark's JSON as a dict."""
    import torch

    from avt_data.parquet_rows import load_triplets
    from avt_training.synthetic import make_synthetic_triplets
    from avt_triplets.tiny.lgcavmae import TINY_LGCAVMAE_CONFIG
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining, LGCavMaeProcessor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core for the model; the workers take the others
    config = LGCavMaeConfig(**{**TINY_LGCAVMAE_CONFIG, "audio_length": 1024, "image_size": 224})
    torch.manual_seed(0)
    model, processor = LGCavMaeForPreTraining(config).eval(), LGCavMaeProcessor.from_config(config)
    load_before = os.getloadavg()
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
        rows = load_triplets([str(root)], columns=None)
        stages = _stages(model, processor, rows, batch_size)
        loaders = {str(n): _throughput(model, processor, rows, batch_size, n) for n in workers or [0, 1, 2]}
    base = loaders[min(loaders, key=int)]["samples_per_second"]
    torch.set_num_threads(threads)
    return {
        "benchmark": "evaluate feature extraction",
        "clip": "10 s audio @16 kHz, 10 JPEG frames 224x224 (middle frame used)",
        "model": "random LG-CAV-MAE, tiny encoder (hidden 32), paper-sized inputs (1024 x 128 fbank, 224 image)",
        "clips": len(rows),
        "batch_size": batch_size,
        "single_process_ms_per_clip": stages,
        "workers": loaders,
        "speedup_vs_fewest_workers": {
            n: round(r["samples_per_second"] / base, 2) for n, r in loaders.items()
        },
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=64, help="rows in the synthetic dataset")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per batch")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts")
    args = parser.parse_args()
    print(json.dumps(measure(args.clips, args.batch_size, args.workers), indent=2))


if __name__ == "__main__":
    main()
