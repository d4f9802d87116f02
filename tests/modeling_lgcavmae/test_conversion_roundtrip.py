"""Converted official checkpoints load strictly, save as safetensors and round-trip with identical outputs."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForAudioClassification, AutoModelForPreTraining

import modeling_lgcavmae  # noqa: F401  (registers the Auto classes)
from modeling_lgcavmae.convert_cavmae_checkpoint import main as convert_main

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")


def _batch(config, batch: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, config.audio_length, config.num_mel_bins, generator=generator)
    images = torch.randn(batch, 3, config.image_size, config.image_size, generator=generator)
    noise_a = torch.rand(batch, config.num_audio_patches, generator=generator)
    noise_v = torch.rand(batch, config.num_visual_patches, generator=generator)
    return audio, images, noise_a, noise_v


def test_cli_converts_a_pretraining_pth_and_the_folder_reloads_identically(
    official, tiny_dims, tmp_path, capsys
):
    state = official.random_official_state_dict(tiny_dims, pretraining=True, seed=21)
    checkpoint = tmp_path / "audio_model.25.pth"
    torch.save(state, checkpoint)
    out = tmp_path / "converted"
    assert (
        convert_main(
            [
                "--checkpoint",
                str(checkpoint),
                "--output-dir",
                str(out),
                "--text-embed-dim",
                "8",
                "--num-attention-heads",
                str(tiny_dims.num_heads),
                "--decoder-num-attention-heads",
                str(tiny_dims.decoder_num_heads),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "dropped" in printed and "norm1_a" in printed  # the report says what did not map and why
    assert "audio_text_projection" in printed
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin"))
    card = (out / "README.md").read_text()
    assert (
        "audio_model.25.pth" in card and "Conversion report" in card and "library_name: transformers" in card
    )
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "lg_cav_mae" and config["num_attention_heads"] == tiny_dims.num_heads

    model = AutoModelForPreTraining.from_pretrained(out).eval()
    reference = official.OfficialCavMae(state, tiny_dims)
    audio, images, noise_a, noise_v = _batch(model.config)
    with torch.no_grad():
        (loss, *_), _ = reference.forward(audio, images, noise_a, noise_v)
        ours = model(audio, images, audio_noise=noise_a, visual_noise=noise_v)
        torch.testing.assert_close(ours.loss, loss, atol=2e-5, rtol=1e-5)

        model.save_pretrained(tmp_path / "again")
        reloaded = AutoModelForPreTraining.from_pretrained(tmp_path / "again").eval()
        text = torch.randn(audio.shape[0], 8)
        first = model(audio, images, text_embeds=text, audio_noise=noise_a, visual_noise=noise_v)
        second = reloaded(audio, images, text_embeds=text, audio_noise=noise_a, visual_noise=noise_v)
    for name in ("loss", "loss_audio_text", "audio_text_embeds", "reconstruction_visual", "visual_embeds"):
        assert torch.equal(first[name], second[name]), name
    frozen = [name for name, p in reloaded.named_parameters() if not p.requires_grad]
    assert len(frozen) == 4 and all("position_embeddings" in name for name in frozen)


def test_cli_converts_a_cavmaeft_checkpoint_with_official_label_csv(official, tiny_dims, tmp_path):
    dims = replace(tiny_dims, label_dim=3)
    state = official.random_official_state_dict(dims, pretraining=False, seed=22)
    torch.save(state, tmp_path / "as-20k.pth")
    labels = tmp_path / "class_labels_indices.csv"
    labels.write_text(
        'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech"\n2,/m/02zsn,Music\n'
    )
    out = tmp_path / "ft"
    convert_main(
        [
            "--checkpoint",
            str(tmp_path / "as-20k.pth"),
            "--output-dir",
            str(out),
            "--num-attention-heads",
            "2",
            "--labels-csv",
            str(labels),
            "--problem-type",
            "multi_label_classification",
        ]
    )
    model = AutoModelForAudioClassification.from_pretrained(out).eval()
    assert model.config.id2label == {0: "Speech", 1: "Male speech", 2: "Music"}
    assert model.config.problem_type == "multi_label_classification"
    audio, images, _, _ = _batch(model.config)
    with torch.no_grad():
        expected = official.OfficialCavMae(state, dims).forward_finetune(audio, images, "multimodal")
        torch.testing.assert_close(model(audio, images).logits, expected, atol=2e-5, rtol=1e-5)
    # fine-tuning keeps the position tables trainable (official tr_pos=True), also after loading
    assert all(p.requires_grad for p in model.position_embedding_parameters())


def test_loading_uses_weights_only(official, tiny_dims, tmp_path):
    """A pickle that is not plain tensors is refused (torch.load(weights_only=True))."""

    import argparse

    torch.save({"module.modality_a": argparse.Namespace(payload="arbitrary object")}, tmp_path / "bad.pth")
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        convert_main(["--checkpoint", str(tmp_path / "bad.pth"), "--output-dir", str(tmp_path / "out")])
