"""`avt filter DIR --top 10 30 50 --random 30 --seed 0`: top-k% / random-k% subsets as dataset configs.

Reads only the ``clip_id`` / ``clap_score`` / ``sample_key`` columns of the finished shards, writes
``subsets.json`` and regenerates the dataset card so that ``load_dataset(DIR, "top30")`` reads the
subset. Nothing is copied: each subset is a row filter over the same Parquet shards.
"""

from __future__ import annotations

import argparse


def _percent(text: str) -> float:
    value = float(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage in (0, 100] is needed, got {text}")
    return int(value) if value.is_integer() else value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "output_dir", metavar="DIR", help="Folder written by `avt generate` (data/, stats/, ...)."
    )
    parser.add_argument(
        "--top",
        type=_percent,
        nargs="*",
        default=None,
        metavar="K",
        help="Percentages k for the top-k%% configs `top{k}` (highest clap_score, ties by clip_id; "
        "exactly round(k%% * N) clips). Default: the ones already in subsets.json, else 10 30 50.",
    )
    parser.add_argument(
        "--random",
        type=_percent,
        nargs="*",
        default=None,
        metavar="K",
        help="Percentages k for the `random{k}` configs: seeded random samples the size of top{k} (the "
        "paper's baseline). Default: the ones already in subsets.json, else 10 30 50.",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Seed of the random-k%% samples. Default: the one already in subsets.json, else the "
        "generation run's seed (manifest.json), else 0.",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from avt_triplets import publish, schema

    root = Path(args.output_dir)
    if not (root / schema.DATA_DIR).is_dir():
        print(f"error: {root} has no {schema.DATA_DIR}/ folder; run `avt generate` first")
        return 2
    subsets = publish.refresh_subsets(root, top=args.top, random=args.random, seed=args.seed)
    card = publish.write_dataset_card(root)
    print(f"{subsets.total} clips in {len(subsets.data_files)} finished shard(s)", end="")
    print(f", {len(subsets.excluded_files)} unfinished shard(s) left out" if subsets.excluded_files else "")
    print(f"{'config':<12} {'rows':>9}  selection")
    for subset in subsets.subsets:
        print(f"{subset.name:<12} {subset.size:>9}  {subset.describe()}")
    print(f"wrote {root / schema.SUBSETS_FILE} and {card}")
    print(f'load with: datasets.load_dataset("{root}", "<config>", split="train")')
    return 0
