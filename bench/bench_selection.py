"""Benchmark: top-k% / random-k% selection over a large generation output (scores only).

Writes N clips as score-only shards (clip_id, clap_score, sample_key; the columns selection reads)
with stats files, then times reading the scores, computing top/random 10/30/50, and applying one
subset's filter through pyarrow the way ``load_dataset(DIR, cfg)`` does. Prints JSON.

    python bench/bench_selection.py --clips 1000000 --shard-size 10000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from avt_triplets import layout, selection


def write_scores(root: Path, clips: int, shard_size: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for index, start in enumerate(range(0, clips, shard_size)):
        ids = [f"yt/{i:08d}_000010" for i in range(start, min(start + shard_size, clips))]
        table = pa.table(
            {
                "clip_id": ids,
                "clap_score": pa.array(np.round(rng.normal(0.25, 0.1, len(ids)), 4), pa.float32()),
                "sample_key": pa.array([selection.sample_key(c) for c in ids], pa.float64()),
            }
        )
        layout.data_path(root, index).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, layout.data_path(root, index))
        layout.stats_path(root, index).parent.mkdir(parents=True, exist_ok=True)
        layout.stats_path(root, index).write_text("{}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1_000_000, help="Number of clips.")
    parser.add_argument("--shard-size", type=int, default=10_000, help="Clips per shard.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_scores(root, args.clips, args.shard_size)
        start = time.perf_counter()
        scores = selection.read_scores(root)
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        subsets = selection.compute_subsets(scores, top=(10, 30, 50), random=(10, 30, 50), seed=0)
        select_s = time.perf_counter() - start
        exact = all(s.size == selection.subset_size(s.k, args.clips) for s in subsets)
        timings = {}
        for name in ("top30", "random30"):
            subset = next(s for s in subsets if s.name == name)
            start = time.perf_counter()
            dataset = ds.dataset(sorted(root.glob(layout.DATA_GLOB)), format="parquet")
            rows = dataset.to_table(
                columns=["clip_id"], filter=pq.filters_to_expression(subset.filters)
            ).num_rows
            timings[name] = {"filter_scan_s": round(time.perf_counter() - start, 3), "rows": rows}
            exact = exact and rows == subset.size
        result = {
            "benchmark": "selection",
            "clips": args.clips,
            "shards": -(-args.clips // args.shard_size),
            "read_scores_s": round(read_s, 3),
            "six_subsets_s": round(select_s, 3),
            "filter_scans": timings,
            "sizes_exact": exact,
            "subsets_json_bytes": len(
                selection.SubsetsFile(0, [10, 30, 50], [10, 30, 50], args.clips, [], [], subsets).to_json()
            ),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
