"""The dataset card is updated in place: `avt filter` / `avt publish` keep the user's edits, and `--license` sets
the licence the Hub reads (issue 19, section 1)."""

from __future__ import annotations

import pytest
from huggingface_hub import DatasetCard, HfApi

from avt import cli
from avt_triplets import dataset_card, layout
from avt_triplets.cards import BEGIN, END

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")

# The head of a card as `avt generate` wrote it before the markers existed (no avt:begin/end; the avt tag).
OLD_CARD = """---
license: other
size_categories:
- n<1K
pretty_name: out
tags:
- audio-visual
- audio-text
- clap
- captions
- lg-cav-mae
- avt
configs:
- config_name: all
  data_files:
  - split: train
    path: data/*.parquet
  default: true
---

# out

Audio-visual-text triplets made with `avt generate`, following LG-CAV-MAE §2.3.

## Totals

| | count |
|---|---|
| clips processed | 3 |
"""


def _hand_edit(path) -> None:
    """What a user does to a card: another licence key, a key of their own, a section of their own above ours."""
    card = DatasetCard.load(path)
    card.data["language"] = ["en"]
    card.data["pretty_name"] = "My triplets"
    card.text = "\n# My triplets\n\nCollected by our lab; see the paper.\n" + card.text
    card.save(path)


def test_filter_keeps_hand_edits_and_the_licence(small_output, capsys):
    root = small_output.root
    path = dataset_card.write_dataset_card(root)
    new = DatasetCard.load(path)
    assert new.data["license"] == "other" and new.text.lstrip().startswith(BEGIN)  # a new card, no --license
    argv = ["publish", str(root), "--push-to-hub", "x/y", "--license", "other", "--license-name", "lab-terms"]
    assert cli.main(argv) == 2  # refused before anything else: `other` needs a link
    assert capsys.readouterr().err.count("\n") == 1
    _hand_edit(path)

    assert cli.main(["filter", str(root), "--top", "20"]) == 0
    card = DatasetCard.load(path)
    assert card.data["language"] == ["en"] and card.data["pretty_name"] == "My triplets"
    assert card.data["license"] == "other"
    assert "top20" in [c["config_name"] for c in card.data["configs"]]
    assert card.text.count("Collected by our lab; see the paper.") == 1
    assert card.text.count(BEGIN) == 1 and card.text.count(END) == 1
    assert card.text.index("Collected by our lab") < card.text.index(BEGIN)
    assert card.text.count("## Subsets") == 1


def test_an_older_unmarked_avt_card_is_replaced_not_duplicated(small_output):
    path = small_output.root / layout.CARD_FILE
    path.write_text(OLD_CARD, encoding="utf-8")
    card = DatasetCard.load(dataset_card.write_dataset_card(small_output.root))
    assert card.text.count("## Totals") == 1 and card.text.count("## How to load") == 1
    assert card.text.lstrip().startswith(BEGIN)


def test_licence_of_generate_and_publish(local_hub, small_output, capsys):
    from avt_triplets.options import GenerationOptions

    for wrong in (
        {"license": "CC BY 4.0"},
        {"license": "other"},
        {"license": "mit", "license_name": "mine"},
        {"license_link": "https://example.org"},
    ):
        with pytest.raises(Exception, match="--license") as raised:
            GenerationOptions(**wrong)
        assert type(raised.value).__name__ == "UsageError"
    assert GenerationOptions(license="CC-BY-4.0").card_license().license == "cc-by-4.0"

    repo_id = local_hub.repo_id("licensed")
    argv = ["publish", str(small_output.root), "--push-to-hub", repo_id, "--hub-token", local_hub.token]
    argv += [
        "--license",
        "other",
        "--license-name",
        "lab-terms-1.0",
        "--license-link",
        "https://example.org/t",
    ]
    assert cli.main(argv) == 0
    pushed = HfApi(token=local_hub.token).dataset_info(repo_id).card_data
    assert (pushed.license, pushed["license_name"], pushed["license_link"]) == (
        "other",
        "lab-terms-1.0",
        "https://example.org/t",
    )
    local = DatasetCard.load(small_output.root / layout.CARD_FILE).data
    assert local["license_name"] == "lab-terms-1.0"

    # The repo's card is updated in place: an edit made on the Hub survives the next publish.
    api = HfApi(token=local_hub.token)
    card = DatasetCard.load(repo_id, token=local_hub.token)
    card.text = "\n## Edited on the Hub\n\nkeep me\n" + card.text
    card.push_to_hub(repo_id, token=local_hub.token)
    argv = [
        "publish",
        str(small_output.root),
        "--push-to-hub",
        repo_id,
        "--hub-token",
        local_hub.token,
        "--license",
        "mit",
    ]
    assert cli.main(argv) == 0
    text = open(api.hf_hub_download(repo_id, layout.CARD_FILE, repo_type="dataset"), encoding="utf-8").read()
    card = DatasetCard(text)
    assert "keep me" in card.text and card.text.count(BEGIN) == 1
    assert card.data["license"] == "mit" and "license_name" not in card.data.to_dict()
    card.validate()


def test_the_licence_generate_sets_stays_through_later_cards(small_output):
    """`avt generate --license`: the run's first card carries it, the final card and `avt filter` keep it."""
    from avt_triplets.cards import CardLicense
    from avt_triplets.options import GenerationOptions
    from avt_triplets.stages.writer import ProvisionalCard, write_final_card

    licence = GenerationOptions(license="cc-by-4.0").card_license()
    ProvisionalCard(small_output.root, licence).refresh(force=True)
    path, failed = write_final_card(small_output.root)
    assert failed is None and DatasetCard.load(path).data["license"] == "cc-by-4.0"
    assert cli.main(["filter", str(small_output.root), "--random", "20"]) == 0
    assert DatasetCard.load(path).data["license"] == "cc-by-4.0"
    assert licence == CardLicense("cc-by-4.0")
