"""The SLAVA model card: names the variant and the towers it belongs to, reads back as a Hub card, carries only the
training facts it names, and replaces transformers' generic card on push_to_hub (a card written by hand is kept)."""

from __future__ import annotations

import uuid

import pytest
from huggingface_hub import HfApi, ModelCard

from modeling_slava import SlavaModel
from modeling_slava.model_card_slava import render_model_card, write_model_card

REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def model(tiny_clip, tiny_clap) -> SlavaModel:
    model = SlavaModel.from_towers(str(tiny_clip), str(tiny_clap), projection_dim=16, variant="av+avloss")
    model.config.vision_model_revision = REVISION
    return model


def _summary() -> dict:
    return {
        "variant": "av+avloss",
        "steps": 48,
        "stage_steps": [48],
        "stage_epochs": [6],
        "samples_seen": 768,
        "global_batch_size": 16,
        "num_processes": 1,
        "clips": 128,
        "eval_clips": 32,
        "feature_cache": [
            {"dataset": "/data/vggsound-top30", "split": "train", "clips": 128, "captions": {"caption": "caption"},
             "directory": "/scratch/private-cache-dir"},
        ],
        "best_eval_loss": 1.23456,
        "best_step": 40,
        "hub_commit": "http://hub/commit/should-not-appear",
    }  # fmt: skip


def test_card_names_variant_towers_and_usage_and_loads_as_a_hub_card(model, tiny_clip, tiny_clap, tmp_path):
    path = write_model_card(tmp_path, model, repo_id="me/slava-av")
    card = ModelCard.load(path)
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "feature-extraction"
    assert {"audio-visual", "text", "slava", "clip", "clap"} <= set(card.data.tags)
    text = card.content
    assert "# SLAVA (av+avloss)" in text
    assert f"- vision: `{tiny_clip}`, revision `{REVISION}`" in text
    assert f"- audio: `{tiny_clap}`, no recorded revision" in text and "transformers CLAP" in text
    assert "- projections: 16-d" in text
    total = sum(p.numel() for p in model.parameters())
    assert f"{total:,} parameters in this checkpoint, {total:,} of them trained" in text
    assert 'AutoModel.from_pretrained("me/slava-av", trust_remote_code=True)' in text
    for method in ("get_audio_features", "get_visual_features", "get_text_features"):
        assert method in text
    assert "Representation Learning for Semantic Alignment of Language, Audio, and Visual Modalities" in text
    assert "## Training" not in text  # no run, no training facts


def test_card_carries_the_named_training_facts_only(model):
    text = render_model_card(model, _summary()).content
    assert "## Training" in text
    assert "`/data/vggsound-top30` (split `train`): 128 clips" in text
    assert "48 steps" in text and "epochs per stage: [6]" in text
    assert "best validation loss 1.2346 at step 40" in text
    assert "private-cache-dir" not in text and "should-not-appear" not in text


def test_a_fixed_temperature_is_not_counted_as_trained(tiny_clip, tiny_clap):
    model = SlavaModel.from_towers(
        str(tiny_clip), str(tiny_clap), projection_dim=16, temperature_learnable=False
    )
    total = sum(p.numel() for p in model.parameters())
    assert f"{total - 1:,} of them trained" in render_model_card(model).content


def test_push_to_hub_replaces_the_generic_card_and_keeps_a_written_one(model, local_hub):
    repo_id = local_hub.repo_id(f"slava-card-{uuid.uuid4().hex[:8]}")
    model.push_to_hub(repo_id, training_summary=_summary())
    card = ModelCard.load(repo_id)
    assert "has been automatically generated" not in card.content
    assert "# SLAVA (av+avloss)" in card.content and "best validation loss 1.2346" in card.content
    assert "slava" in card.data.tags

    HfApi().upload_file(path_or_fileobj=b"# my own card\n", path_in_repo="README.md", repo_id=repo_id)
    model.push_to_hub(repo_id)
    kept = ModelCard.load(repo_id).content  # transformers may add metadata to it, never our text
    assert "# my own card" in kept and "SLAVA" not in kept
