"""`avt filter DIR --top 10 30 50 --random 30 --seed 0`: top-k% / random-k% subsets as dataset configs.

Reads only the ``clip_id`` / ``clap_score`` / ``sample_key`` columns of the finished shards, writes
the dataset card and then ``subsets.json`` (one plan, card first: a killed filter never leaves a recorded config
the card lacks, and any rerun writes both again) so that ``load_dataset(DIR, "top30")`` reads the subset. It holds
the output's lock (not while ``avt generate`` runs there) and checks the finished shards' files against their stats
first (``--verify``: checksums). Nothing is copied: each subset is a row filter over the same Parquet shards. The configs given
are added to the ones already there (``--replace`` keeps only the given ones); a k that selects no row
is refused, since ``load_dataset`` could not read such a config. A labelled-only output (``avt generate
--captioner none``) has no scores: top-k is refused there with the reason, random-k works. ``--by COLUMN`` ranks
the top-k configs by another score column (``audio_caption_score``, ...), named ``top{k}_{COLUMN}`` beside the
``clap_score`` ones; a column the shards lack, or one that is not a number per clip, is refused in one line before
anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses

from avt_core.dataclass_cli import add_options, json_object, option
from avt_core.help_format import DefaultsHelpFormatter


def _percent(text: str) -> float:
    value = float(text)
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"a percentage in (0, 100] is needed, got {text}")
    return int(value) if value.is_integer() else value


SUBSETS = "subsets"


@dataclasses.dataclass
class FilterOptions:
    """Every option of `avt filter`."""

    output_dir: str = option(
        group=SUBSETS,
        positional=True,
        metavar="DIR",
        help="Folder or URL (s3://, gs://, ...) written by `avt generate` (manifest.json, data/, ...).",
    )
    top: list[float] | None = option(
        None,
        group=SUBSETS,
        type=_percent,
        nargs="+",
        metavar="K",
        help="Percentages k for the top-k%% configs `top{k}` (highest clap_score, ties by clip_id; "
        "exactly round(k%% * N) clips), added to the ones already in subsets.json (else to none; the "
        "defaults 10 30 50 apply when neither is given). Refused for a `--captioner none` output, which has "
        "no clap_score.",
    )
    by: str = option(
        "clap_score",
        group=SUBSETS,
        metavar="COLUMN",
        help="Score column the --top configs rank by: clap_score (the paper's), or any other numeric column the "
        "shards have (audio_caption_score, ...). Other columns' configs are named top{k}_{COLUMN} and kept beside "
        "the clap_score ones.",
    )
    random: list[float] | None = option(
        None,
        group=SUBSETS,
        type=_percent,
        nargs="+",
        metavar="K",
        help="Percentages k for the `random{k}` configs: seeded random samples the size of top{k} (the "
        "paper's baseline), added like --top. They also work on a `--captioner none` output (no defaults there).",
    )
    replace: bool = option(
        False,
        group=SUBSETS,
        help="Keep only the configs given now: drop every other top/random config (a kind not given gets none).",
    )
    seed: int | None = option(
        None,
        group=SUBSETS,
        help="Seed of the random-k%% samples. Default: the one already in subsets.json, else the "
        "generation run's seed (manifest.json), else 0.",
    )
    verify: bool = option(
        False,
        group=SUBSETS,
        help="Check every finished shard's files against the checksums in its stats file (reads them all); "
        "without it their sizes are checked.",
    )
    storage_options: dict | None = option(
        None,
        group=SUBSETS,
        type=json_object,
        metavar="JSON",
        repr=False,
        help="fsspec options for a DIR URL (endpoint, credentials); never written to any file.",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = DefaultsHelpFormatter
    add_options(parser, FilterOptions, (SUBSETS,))


def _unfinished_note(root, subsets) -> str | None:
    """How many shards of the run are not finished (never started ones included), or None."""
    from avt_triplets import dataset_card

    total = dataset_card.read_manifest(root).get("num_shards")
    done = len(subsets.data_files)
    missing = int(total) - done if isinstance(total, int) else len(subsets.excluded_files)
    if missing <= 0:
        return None
    of_total = f" of {total}" if isinstance(total, int) else ""
    return (
        f"warning: {missing}{of_total} shard(s) are not finished; the configs cover the {done} finished ones "
        "(rerun the same `avt generate` command to finish the run, then `avt filter` again)"
    )


def _captions_note(root) -> str:
    """What one caption of this output describes (``--caption-unit``), for a captioned output."""
    from avt_triplets import dataset_card

    manifest = dataset_card.read_manifest(root)
    if not manifest.get("captioner"):
        return ""
    return f"; captions {dataset_card.Provenance.from_manifest(manifest).unit_text()}"


def run(args: argparse.Namespace) -> int:
    from avt_core import storage
    from avt_core.errors import UsageError
    from avt_triplets.output_folder import require_avt_output
    from avt_triplets.output_lock import hold_output

    root = require_avt_output(storage.as_path(args.output_dir, args.storage_options))
    if args.replace and args.top is None and args.random is None:
        raise UsageError("--replace keeps only the configs given with --top / --random, and none were given")
    with hold_output(root, "avt filter"):  # not while `avt generate` writes here
        if args.by != "clap_score":
            from avt_triplets.selection import check_rank_column

            check_rank_column(root, args.by)
        return _filter(root, args)


def _filter(root, args: argparse.Namespace) -> int:
    """Check the finished shards, plan the subsets, then write the card and subsets.json (in that order)."""
    import sys
    import warnings

    from avt_core import storage
    from avt_core.errors import UsageError
    from avt_core.run_config import write_run_config
    from avt_triplets import dataset_card, layout, selection, shards

    damaged = shards.check_finished_shards(root, verify=args.verify).first_error()
    if damaged is not None:
        raise damaged
    with warnings.catch_warnings():  # unfinished shards are reported once, below
        warnings.filterwarnings("ignore", message=".*unfinished", category=UserWarning)
        subsets = dataset_card.plan_subsets(
            root, top=args.top, random=args.random, seed=args.seed, replace=args.replace, by=args.by
        )
    asked = [selection.subset_name("top", k, args.by) for k in args.top or ()]
    asked += [selection.subset_name("random", k) for k in args.random or ()]
    empty = [s.name for s in subsets.subsets if s.name in asked and not s.size]
    if empty:
        raise UsageError(
            f"{', '.join(empty)} would select no row of the {subsets.total} finished clips; use a larger k "
            "(nothing was written)"
        )
    note = _unfinished_note(root, subsets)
    if note:
        print(note, file=sys.stderr)
    write_run_config(root, "filter", args)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unfinished", category=UserWarning)
        card = dataset_card.write_dataset_card(root, subsets=subsets)  # the card, then subsets.json
    print(f"{subsets.total} clips in {len(subsets.data_files)} finished shard(s){_captions_note(root)}")
    print(f"{'config':<12} {'rows':>9}  selection")
    for subset in subsets.subsets:
        print(f"{subset.name:<12} {subset.size:>9}  {subset.describe()}")
    print(f"wrote {card} and {root / layout.SUBSETS_FILE}")
    if storage.is_remote(root):
        print(f'load with: avt_data.hf_dataset.load_dataset("{root}", "<config>", storage_options=...)')
    else:
        print(f'load with: datasets.load_dataset("{root}", "<config>", split="train")')
    return 0
