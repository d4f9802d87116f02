"""`avt publish DIR --repo-id ID`: write the dataset card and push a generation output to the Hub.

The token (``--token``, ``HF_TOKEN`` or ``hf auth login``) goes to ``huggingface_hub`` only: it is never
written to a file or a log. An unreachable Hub is one ``error:`` line saying that nothing was pushed; so is a file
that still holds a local path (the machine's home or the input root): nothing is pushed then. The card is updated in
place (the repo's card when it has one, else the local one), keeping what the user wrote outside avt's part. It holds
the output's lock (not while ``avt generate`` runs there) and pushes nothing when a finished shard's files do not
match their stats.
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
    parser.add_argument(
        "--license",
        default=None,
        help="Licence of the card (set locally and on the Hub): an SPDX id as the Hub writes it (cc-by-4.0, "
        "apache-2.0, mit, ...) or `other` with --license-name and --license-link. Default: the card's licence.",
    )
    parser.add_argument("--license-name", default=None, help="With `--license other`: its short name.")
    parser.add_argument("--license-link", default=None, help="With `--license other`: a link to its text.")


def run(args: argparse.Namespace) -> int:
    from avt_core.run_config import write_run_config
    from avt_triplets import publish, shards
    from avt_triplets.cards import CardLicense
    from avt_triplets.model_sources import require_hub_id
    from avt_triplets.output_folder import require_avt_output
    from avt_triplets.output_lock import hold_output

    require_hub_id(args.repo_id, "--repo-id")
    license = CardLicense.from_options(args.license, args.license_name, args.license_link)
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
            license=license,
        )
        write_run_config(root, "publish", args)  # after the push: a failed one leaves the folder as it was
    kind = "metadata-only " if args.metadata_only else ""
    print(f"pushed {kind}dataset to {url}")
    print(f'load with: datasets.load_dataset("{args.repo_id}", "top30", split="train")')
    return 0
