"""`avt pretrain --text-source caption|modality` (issue 21): with `modality` the audio-text term contrasts the audio
captions' CLAP embeddings and the visual-text term the visual captions'; `caption` (the paper) feeds both from the
chosen frame caption. The choice is made on the data side (dataset and collator); the loss takes a pair."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from avt.cli import main
from avt_training.collators import PretrainingCollator
from avt_training.data import ClipDataset
from avt_training.losses import PretrainingLoss
from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG
from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining, LGCavMaeProcessor


@pytest.fixture(scope="module")
def modality_rows(synthetic_modality):
    return datasets.load_dataset(str(synthetic_modality), split="train")


def _batch(rows, text_source: str, keys=((0, 0), (5, 0), (9, 0), (20, 0))) -> dict:
    config = LGCavMaeConfig(**MICRO_LGCAVMAE_CONFIG)
    collator = PretrainingCollator(LGCavMaeProcessor.from_config(config), audio_noise_augment=False)
    clips = ClipDataset(rows, frame_selection="middle", seed=0, text_source=text_source)
    return collator([clips[k] for k in keys])


def test_modality_batches_carry_the_audio_and_the_visual_captions_embeddings(modality_rows):
    indices = [0, 5, 9, 20]
    rows = modality_rows.select(indices)
    caption = _batch(modality_rows, "caption")["text_embeds"]
    torch.testing.assert_close(caption, torch.tensor(rows["text_embedding"]))
    audio_side, visual_side = _batch(modality_rows, "modality")["text_embeds"]
    torch.testing.assert_close(audio_side, torch.tensor(rows["audio_text_embedding"]))
    torch.testing.assert_close(visual_side, torch.tensor(rows["visual_text_embedding"]))
    # the fixture's frames show another class than the audio: the two texts differ for every clip
    cosine = (audio_side * visual_side).sum(-1)
    assert (cosine < 0.9).all(), cosine


def test_the_loss_contrasts_each_stream_with_its_own_text():
    torch.manual_seed(0)
    config = LGCavMaeConfig(**{**MICRO_LGCAVMAE_CONFIG, "text_embed_dim": 8, "text_contrastive_weight": 0.5})
    model = LGCavMaeForPreTraining(config).eval()
    inputs = {
        "audio_values": torch.randn(4, config.audio_length, config.num_mel_bins),
        "pixel_values": torch.randn(4, 3, config.image_size, config.image_size),
        "audio_noise": torch.rand(4, config.num_audio_patches),
        "visual_noise": torch.rand(4, config.num_visual_patches),
    }
    audio_texts, visual_texts = torch.randn(4, 8), torch.randn(4, 8)
    loss = PretrainingLoss(config, "global")
    with torch.no_grad():
        output = model(**inputs, return_contrastive_loss=False)
        _, pair = loss(output, (audio_texts, visual_texts), model.text_temperature)
        _, audio_only = loss(output, audio_texts, model.text_temperature)
        _, visual_only = loss(output, visual_texts, model.text_temperature)
        full = model(**inputs, text_embeds=(audio_texts, visual_texts))
    assert torch.equal(pair["loss_audio_text"], audio_only["loss_audio_text"])
    assert torch.equal(pair["loss_visual_text"], visual_only["loss_visual_text"])
    assert not torch.equal(pair["loss_visual_text"], audio_only["loss_visual_text"])
    torch.testing.assert_close(
        full.loss_audio_text, pair["loss_audio_text"]
    )  # the model's own forward agrees


def _pretrain(dataset, model, output, *extra: str) -> list[str]:
    return [
        "pretrain", "--dataset", str(dataset), "--model-name-or-path", str(model), "--output-dir", str(output),
        "--num-workers", "0", "--report-to", "none", "--per-device-batch-size", "16", *extra,
    ]  # fmt: skip


def test_modality_without_the_columns_is_one_error_line(synthetic_train, fast_tiny_model, tmp_path, capsys):
    code = main(_pretrain(synthetic_train, fast_tiny_model, tmp_path / "pt", "--text-source", "modality"))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert (
        "audio_text_embedding" in err
        and "--text-source modality needs the CLAP embeddings of the audio" in err
    )
    with pytest.raises(SystemExit) as stopped:
        main(_pretrain(synthetic_train, fast_tiny_model, tmp_path / "pt2", "--text-source", "audio"))
    assert stopped.value.code == 2
    assert "invalid choice: 'audio' (choose from 'caption', 'modality')" in capsys.readouterr().err
    assert not list((tmp_path / "pt").glob("*.safetensors")) and not (tmp_path / "pt2").exists()


def test_modality_run_trains_and_its_card_says_so(
    synthetic_modality, fast_tiny_model, tmp_path, single_thread
):
    import json

    output = tmp_path / "pt"
    argv = _pretrain(
        synthetic_modality, fast_tiny_model, output, "--text-source", "modality", "--max-steps", "2"
    )
    assert main([*argv, "--checkpoint-steps", "0", "--logging-steps", "1"]) == 0
    card = (output / "README.md").read_text()
    assert "| text source | `modality: audio captions (audio_text_embedding) for audio-text, visual " in card
    log = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert all(
        np.isfinite(r["loss_audio_text"]) and np.isfinite(r["loss_visual_text"]) for r in log if "loss" in r
    )
    assert "text_source: modality" in (output / "avt_config.yaml").read_text()
