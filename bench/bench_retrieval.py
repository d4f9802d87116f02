"""Retrieval evaluation time: ours (chunked matrix products) vs the official CAV-MAE double loop.

The official ``src/retrieval.py`` builds the N x N cosine matrix with a Python double loop of numpy
``dot / (norm * norm)`` calls in float64 (``get_sim_mat``), once per direction, then sorts every row
(``compute_metrics``). We time both on the same random 768-d features at N = 1,545 (VGGSound's 309 classes x 5),
check they give the same recalls, and print JSON.

    python bench/bench_retrieval.py [--num-clips 1545] [--dim 768] [--device cpu] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from eval.official_baseline import official_metrics, official_similarity
from eval.retrieval import paired_retrieval


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-clips", type=int, default=1545, help="N (VGGSound 5-per-class subset: 1,545).")
    parser.add_argument("--dim", type=int, default=768, help="Feature size (CAV-MAE: 768).")
    parser.add_argument("--device", default="cpu", help="Device for our implementation.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed repeats of ours (best is reported).")
    parser.add_argument("--seed", type=int, default=0, help="Feature seed.")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    audio = rng.standard_normal((args.num_clips, args.dim)).astype(np.float32)
    # weakly paired, so the recalls are far from 0 and 1 and the agreement check means something
    visual = (0.1 * audio + rng.standard_normal((args.num_clips, args.dim))).astype(np.float32)

    paired_retrieval(audio[:64], visual[:64], device=args.device)  # warm-up (allocators, threads)
    ours_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = paired_retrieval(audio, visual, device=args.device)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        ours_times.append(time.perf_counter() - start)

    start = time.perf_counter()
    a64, v64 = audio.astype(np.float64), visual.astype(np.float64)
    official = {
        "audio_to_visual": official_metrics(official_similarity(a64, v64)),
        "visual_to_audio": official_metrics(official_similarity(v64, a64)),
    }
    official_time = time.perf_counter() - start

    agree = all(
        abs(ours[d][k] - official[d][k]) < 1e-12 for d in official for k in ("R@1", "R@5", "R@10", "MR")
    )
    best = min(ours_times)
    print(
        json.dumps(
            {
                "benchmark": "retrieval_evaluation_both_directions",
                "num_clips": args.num_clips,
                "dim": args.dim,
                "device": args.device,
                "ours_seconds_best": round(best, 5),
                "ours_seconds_all": [round(t, 5) for t in ours_times],
                "official_double_loop_seconds": round(official_time, 3),
                "speedup": round(official_time / best, 1),
                "metrics_agree": agree,
                "metrics": ours,
                "torch_threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "numpy": np.__version__,
                "machine": platform.processor() or platform.machine(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
