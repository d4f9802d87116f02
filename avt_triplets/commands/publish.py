"""`avt publish DIR --repo-id ID`: write the dataset card and push a generation output to the Hub.

The token (``--token``, ``HF_TOKEN`` or ``hf auth login``) goes to ``huggingface_hub`` only: it is never
written to a file or a log. An unreachable Hub is one ``error:`` line saying that nothing was pushed. It holds the
output's lock (not while ``avt generate`` runs there) and pushes nothing when a finished shard's files do not match
their stats.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output_dir", metavar="DIR", help="Folder written by `avt generate`.")
    parser.add_argument(
        "--repo-id", required=True, help="Hub dataset repository, e.g. `user/vggsound-triplets`."
    )
    parser.add_argument(
        "--metadata-only",
        action="store_true",
        help="Drop the `audio` and `frames` columns before pushing (copyright-safe sharing of "
        "YouTube-derived sets: ids, windows, captions, scores and embeddings only).",
    )
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument(
        "--token", default=None, help="Hub token; default: the one from `hf auth login` or HF_TOKEN."
    )
    parser.add_argument(
        "--revision", default=None, help="Branch to push to (created if missing); default: main."
    )


def run(args: argparse.Namespace) -> int:
    from avt_triplets import publish, shards
    from avt_triplets.model_sources import require_hub_id
    from avt_triplets.output_folder import require_avt_output
    from avt_triplets.output_lock import hold_output
    from avt_triplets.run_config import write_run_config

    require_hub_id(args.repo_id, "--repo-id")
    root = require_avt_output(args.output_dir)  # publish refreshes the local card: it must be ours to write
    with hold_output(root, "avt publish"):  # not while `avt generate` writes here
        damaged = shards.check_finished_shards(root).first_error()
        if damaged is not None:
            raise damaged
        url = publish.publish(
            root,
            args.repo_id,
            metadata_only=args.metadata_only,
            private=args.private,
            token=args.token,
            revision=args.revision,
        )
        write_run_config(root, "publish", args)  # after the push: a failed one leaves the folder as it was
    kind = "metadata-only " if args.metadata_only else ""
    print(f"pushed {kind}dataset to {url}")
    print(f'load with: datasets.load_dataset("{args.repo_id}", "top30", split="train")')
    return 0
