"""`avt pretrain` and `avt finetune` write a model card beside the model and push it with the model; a card already
in the repo is updated, not replaced (issue 19, section 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard

from avt.cli import main
from avt_triplets.cards import BEGIN

# A card a user wrote on the Hub before the first push (their licence, their own section).
USER_CARD = """---
license: mit
language: en
---

# Our audio-visual encoder

## Intended use

Research on sound-source localisation only.
"""


def _common(steps: str = "2") -> list[str]:
    return [
        "--per-device-batch-size",
        "16",
        "--max-steps",
        steps,
        "--num-workers",
        "0",
        "--report-to",
        "none",
    ]


def _checked(card_path: Path, machine: Path) -> ModelCard:
    """The card validates as the Hub validates it, and names no local path."""
    text = card_path.read_text(encoding="utf-8")
    assert str(machine) not in text
    card = ModelCard(text)
    card.validate()
    assert card.data.library_name == "transformers" and card.data.license
    assert "lg-cav-mae" in card.data.tags and "## Citation" in card.text and "from_pretrained(" in card.text
    assert card.text.count(BEGIN) == 1
    assert card.text.split(BEGIN, 1)[1].lstrip().startswith("# LG-CAV-MAE")  # no stray YAML fences
    return card


@pytest.mark.slow
def test_training_cards_locally_and_in_the_repo(
    local_hub, fast_tiny_model, synthetic_train, synthetic_heldout, tmp_path, tmp_path_factory
):
    machine = tmp_path_factory.getbasetemp()
    api = HfApi(token=local_hub.token)
    repo_id = api.create_repo(local_hub.repo_id("card-pretrain"), exist_ok=True).repo_id
    api.upload_file(path_or_fileobj=USER_CARD.encode(), path_in_repo="README.md", repo_id=repo_id)

    pretrained = tmp_path / "pretrained"
    argv = ["pretrain", "--model-name-or-path", str(fast_tiny_model), "--dataset", str(synthetic_train)]
    argv += [
        "--eval-dataset",
        str(synthetic_heldout),
        "--output-dir",
        str(pretrained),
        "--save-steps",
        "0",
    ]
    argv += ["--push-to-hub", repo_id, "--hub-token", local_hub.token, *_common()]
    assert main(argv) == 0
    card = _checked(pretrained / "README.md", machine)
    assert card.data.pipeline_tag == "feature-extraction"
    metrics = {r.metric_name: r for r in card.data.eval_results}
    assert set(metrics) == {"training loss", "eval loss"} and metrics["eval loss"].dataset_split == "train"
    assert "## Training data" in card.text and "| steps | `2` |" in card.text

    pushed = ModelCard.load(repo_id, token=local_hub.token)
    assert pushed.data.license == "mit" and pushed.data.language == "en"  # the user's keys are kept
    assert pushed.text.count("Research on sound-source localisation only.") == 1
    assert pushed.text.count(BEGIN) == 1 and pushed.data.pipeline_tag == "feature-extraction"
    assert {r.metric_name for r in pushed.data.eval_results} == {"training loss", "eval loss"}

    finetuned = tmp_path / "finetuned"
    argv = ["finetune", "--model", str(pretrained), "--dataset", str(synthetic_train)]
    argv += [
        "--eval-dataset",
        str(synthetic_heldout),
        "--eval-split",
        "train",
        "--output-dir",
        str(finetuned),
    ]
    argv += ["--freq-mask", "0", *_common()]
    assert main(argv) == 0
    card = _checked(finetuned / "README.md", machine)
    assert card.data.pipeline_tag == "audio-classification" and card.data.base_model is None  # a local folder
    names = {r.metric_name for r in card.data.eval_results}
    assert {"single-frame accuracy", "multi-frame accuracy"} <= names
    assert "## Classes (8)" in card.text


def test_card_metadata_names_hub_models_and_datasets():
    from avt_training.model_card import Result, TrainingRun, card_metadata

    run = TrainingRun(
        "finetune",
        {"output_dir": "/somewhere/out"},
        ["someone/vggsound-triplets:top30", "/data/local-triplets"],
        base_model="someone/lgcavmae-pretrained",
        results=[Result("accuracy", 0.5, "someone/vggsound-triplets:top30", "test", "single-frame accuracy")],
    )
    data = card_metadata(run, "ft")
    assert data["base_model"] == "someone/lgcavmae-pretrained"
    assert data["datasets"] == ["someone/vggsound-triplets"]  # the local folder is no Hub id
    (result,) = data["eval_results"]
    assert (result.dataset_type, result.dataset_config, result.metric_value) == (
        "someone/vggsound-triplets",
        "top30",
        0.5,
    )


def test_the_card_says_which_caption_unit_each_training_dataset_used(tmp_path):
    """The training data section names each dataset's caption unit, read from its generation manifest (a manifest
    older than --caption-unit holds frame captions; a labelled-only set has none to name)."""
    import json

    from avt_data.rows import recorded_caption_units
    from avt_training.model_card import TrainingRun, training_sections

    def output(name: str, captioner: dict | None) -> str:
        folder = tmp_path / name
        folder.mkdir()
        manifest = {"format": "avt-triplets/1", "captioned": captioner is not None, "captioner": captioner}
        manifest.update({"fps": 1.0, "clip_seconds": 10.0})
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return str(folder)

    clip = output(
        "clip", {"name": "Qwen/Qwen2.5-VL-3B-Instruct", "caption_unit": "clip", "clip_prompts": ["a"]}
    )
    older = output("older", {"name": "Salesforce/blip2-opt-2.7b", "prompt": None})
    labels = output("labels", None)
    units = recorded_caption_units([clip, f"{older}:top30", labels, "org/hub-dataset"])
    assert units == {
        clip: "per clip window of up to 10 frames, as one video",
        f"{older}:top30": "per frame",
    }
    run = TrainingRun("pretrain", {}, [clip, f"{older}:top30", labels], caption_units=units)
    text = training_sections(run)
    assert "- `clip`: captions per clip window of up to 10 frames, as one video" in text
    assert "- `older (top30)`: captions per frame" in text
    assert "- `labels`\n" in text
