"""`avt publish DIR --push-to-hub REPO_ID`: write the dataset card and push a generation output to the Hub.

The token (``--hub-token``, ``HF_TOKEN`` or ``hf auth login``) goes to ``huggingface_hub`` only: it is never
written to a file or a log. An unreachable Hub is one ``error:`` line saying that nothing was pushed; so is a file
that still holds a local path (the machine's home or the input root): nothing is pushed then. The card is updated in
place (the repo's card when it has one, else the local one), keeping what the user wrote outside avt's part. It holds
the output's lock (not while ``avt generate`` runs there) and pushes nothing when a finished shard's files do not
match their stats.
"""

from __future__ import annotations

import argparse
import dataclasses

from avt_core.dataclass_cli import add_options, option, options_from_any
from avt_core.help_format import DefaultsHelpFormatter

PUBLISH, HUB = "what to publish", "Hugging Face Hub"


@dataclasses.dataclass
class PublishOptions:
    """Every option of `avt publish`; the Hub ones have the names the training commands and transformers use."""

    output_dir: str = option(
        group=PUBLISH, positional=True, metavar="DIR", help="Folder written by `avt generate`."
    )
    push_to_hub: str = option(
        group=HUB,
        metavar="REPO_ID",
        aliases=("--hub-model-id",),  # transformers' name of the repo id
        deprecated=("--repo-id",),
        help="Hub dataset repository to push to, e.g. `user/vggsound-triplets` (as --push-to-hub of the "
        "training commands).",
    )
    metadata_only: bool = option(
        False,
        group=PUBLISH,
        help="Drop the `audio` and `frames` columns before pushing (copyright-safe sharing of "
        "YouTube-derived sets: ids, windows, captions, scores and embeddings only).",
    )
    license: str | None = option(
        None,
        group=PUBLISH,
        help="Licence of the card (set locally and on the Hub): an SPDX id as the Hub writes it (cc-by-4.0, "
        "apache-2.0, mit, ...) or `other` with --license-name and --license-link. Default: the card's licence.",
    )
    license_name: str | None = option(None, group=PUBLISH, help="With `--license other`: its short name.")
    license_link: str | None = option(None, group=PUBLISH, help="With `--license other`: a link to its text.")
    hub_private: bool = option(
        False, group=HUB, deprecated=("--private",), help="Create the repository as private."
    )
    hub_token: str | None = option(
        None,
        group=HUB,
        deprecated=("--token",),
        repr=False,
        help="Hub token (default: the one from `hf auth login` or HF_TOKEN); handed to huggingface_hub only, "
        "never written.",
    )
    hub_revision: str | None = option(
        None,
        group=HUB,
        deprecated=("--revision",),
        help="Branch to push to (created if missing); default: main.",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = DefaultsHelpFormatter
    add_options(parser, PublishOptions, (PUBLISH, HUB))


def run(args: argparse.Namespace) -> int:
    from avt_core.run_config import write_run_config
    from avt_triplets import publish, shards
    from avt_triplets.cards import CardLicense
    from avt_triplets.model_sources import require_hub_id
    from avt_triplets.output_folder import require_avt_output
    from avt_triplets.output_lock import hold_output

    options = options_from_any(PublishOptions, args)
    require_hub_id(options.push_to_hub, "--push-to-hub")
    license = CardLicense.from_options(options.license, options.license_name, options.license_link)
    root = require_avt_output(
        options.output_dir
    )  # publish refreshes the local card: it must be ours to write
    with hold_output(root, "avt publish"):  # not while `avt generate` writes here
        damaged = shards.check_finished_shards(root).first_error()
        if damaged is not None:
            raise damaged
        url = publish.publish(
            root,
            options.push_to_hub,
            metadata_only=options.metadata_only,
            private=options.hub_private,
            token=options.hub_token,
            revision=options.hub_revision,
            license=license,
        )
        write_run_config(root, "publish", args)  # after the push: a failed one leaves the folder as it was
    kind = "metadata-only " if options.metadata_only else ""
    print(f"pushed {kind}dataset to {url}")
    print(f'load with: datasets.load_dataset("{options.push_to_hub}", "top30", split="train")')
    return 0
