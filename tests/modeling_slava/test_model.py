"""SlavaModel: frozen towers outside the module tree, trained projections, save / reload / remote code."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModel

import modeling_slava  # noqa: F401 - registers the Auto classes
from modeling_slava import SlavaConfig, SlavaModel, SlavaProcessor


@pytest.fixture(scope="module")
def model(tiny_clip, tiny_clap) -> SlavaModel:
    return SlavaModel.from_towers(str(tiny_clip), str(tiny_clap), projection_dim=16)


def _clips(processor: SlavaProcessor) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    frames = [
        [Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for _ in range(count)]
        for count in (3, 1, 2)
    ]
    waves = [rng.standard_normal(int(16_000 * s)).astype(np.float32) * 0.1 for s in (2.0, 25.0, 0.5)]
    captions = ["a circle of colour 3", "a square of colour 12", "a dog barking in the yard"]
    return processor(audio=waves, images=frames, text=captions)


def test_processor_covers_whole_clips_in_windows_and_keeps_every_frame(model):
    inputs = _clips(model.get_processor())
    # 25 s at the tower's 10 s windows: starts 0, 5, 10, 15 s; shorter clips are one window
    assert inputs["windows_mask"].tolist() == [[1, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert inputs["audio_values"].shape[:2] == (3, 4)
    assert inputs["frames_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert inputs["pixel_values"].shape == (3, 3, 3, 32, 32)
    assert (inputs["input_ids"] != model.get_processor().tokenizer.unk_token_id).all()


def test_clip_features_average_its_frames_and_padding_is_ignored(model):
    inputs = _clips(model.get_processor())
    with torch.no_grad():
        batched = model.get_visual_tower_features(inputs["pixel_values"], inputs["frames_mask"])
        alone = model.get_visual_tower_features(inputs["pixel_values"][0, :3].unsqueeze(0))
        per_frame = model.towers.vision_features(inputs["pixel_values"][0, :3])
    torch.testing.assert_close(batched[0], alone[0])
    torch.testing.assert_close(alone[0], per_frame.mean(0))


def test_towers_are_frozen_get_no_gradient_and_do_not_change(tiny_clip, tiny_clap):
    model = SlavaModel.from_towers(str(tiny_clip), str(tiny_clap), projection_dim=16)
    inputs = _clips(model.get_processor())
    towers_before = {k: v.clone() for k, v in model.towers.state_dict().items()}
    projections_before = {k: v.clone() for k, v in model.state_dict().items()}
    assert set(projections_before) == {
        "audio_projection.weight",
        "visual_projection.weight",
        "text_projection.weight",
        "logit_scale",
    }
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(3):
        output = model(**inputs, terms=("av", "at", "vt"))
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
    assert not model.towers.training and all(not m.training for m in model.towers.modules())
    assert all(not p.requires_grad and p.grad is None for p in model.towers.parameters())
    for key, value in model.towers.state_dict().items():
        assert torch.equal(value, towers_before[key]), key
    assert all(not torch.equal(v, projections_before[k]) for k, v in model.state_dict().items())


def test_visual_and_text_projections_start_from_clips_own(tiny_clip, tiny_clap):
    from transformers import CLIPModel

    clip = CLIPModel.from_pretrained(tiny_clip)
    model = SlavaModel.from_towers(str(tiny_clip), str(tiny_clap), projection_dim=clip.config.projection_dim)
    assert torch.equal(model.visual_projection.weight, clip.visual_projection.weight)
    assert torch.equal(model.text_projection.weight, clip.text_projection.weight)
    other = SlavaModel.from_towers(
        str(tiny_clip), str(tiny_clap), projection_dim=8
    )  # other size: CLIP-style init
    assert other.visual_projection.weight.shape == (8, clip.config.vision_config.hidden_size)


def test_saved_model_reloads_with_automodel_and_identical_embeddings(model, tmp_path):
    model.save_pretrained(tmp_path / "slava")
    saved = load_file(tmp_path / "slava" / "model.safetensors")
    assert set(saved) == {
        "audio_projection.weight",
        "visual_projection.weight",
        "text_projection.weight",
        "logit_scale",
    }
    assert {"modeling_slava.py", "configuration_slava.py", "towers_slava.py", "model_card_slava.py"} <= set(
        os.listdir(tmp_path / "slava")
    )
    reloaded = AutoModel.from_pretrained(tmp_path / "slava")
    assert isinstance(reloaded, SlavaModel) and reloaded.has_towers
    assert (
        reloaded.config.model_type == "slava"
        and reloaded.config.audio_tower_config["model_type"] == "clap_audio_model"
    )
    inputs = _clips(model.get_processor())
    with torch.no_grad():
        for method, keys in (
            ("get_audio_features", ("audio_values", "windows_mask")),
            ("get_visual_features", ("pixel_values", "frames_mask")),
            ("get_text_features", ("input_ids", "attention_mask")),
        ):
            expected = getattr(model, method)(*(inputs[k] for k in keys))
            assert torch.equal(getattr(reloaded, method)(*(inputs[k] for k in keys)), expected), method
    without = SlavaModel.from_pretrained(tmp_path / "slava", load_towers=False)
    assert not without.has_towers
    with pytest.raises(RuntimeError, match="towers are not loaded"):
        without.get_audio_features(inputs["audio_values"])


def test_checkpoint_loads_as_remote_code_without_our_package(model, tmp_path, remote_code_embeddings):
    model.save_pretrained(tmp_path / "slava")
    inputs = _clips(model.get_processor())
    remote = remote_code_embeddings(str(tmp_path / "slava"), inputs)
    with torch.no_grad():
        expected = model.get_visual_features(inputs["pixel_values"], inputs["frames_mask"])
        expected_text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
    assert torch.equal(remote["visual"], expected) and torch.equal(remote["text"], expected_text)


def test_config_rejects_unknown_variant_and_backend():
    from huggingface_hub.errors import StrictDataclassFieldValidationError

    invalid = (ValueError, StrictDataclassFieldValidationError)
    with pytest.raises(invalid, match="variant"):
        SlavaConfig(variant="a+v")
    with pytest.raises(invalid, match="audio_backend"):
        SlavaConfig(audio_backend="wav2vec")
    assert SlavaConfig(vision_model_name_or_path="x/clip").text_model_name_or_path == "x/clip"


def test_msclap_audio_tower_option(tiny_clip, tiny_msclap, tmp_path):
    """Microsoft CLAP 2023's HTSAT as the audio tower: 7 s windows at 44.1 kHz, reloads with identical embeddings."""
    model = SlavaModel.from_towers(
        str(tiny_clip), str(tiny_msclap), audio_backend="msclap", projection_dim=16
    )
    assert (model.config.audio_sampling_rate, model.config.audio_window_seconds) == (44_100, 7.0)
    inputs = model.get_processor().audio(
        [np.zeros(16_000 * 2, np.float32) + 0.1, np.ones(16_000 * 12, np.float32)]
    )
    assert inputs["audio_values"].shape == (2, 3, 7 * 44_100)  # 12 s: windows at 0, 3.5 and 5 s
    model.save_pretrained(tmp_path / "slava")
    reloaded = AutoModel.from_pretrained(tmp_path / "slava")
    with torch.no_grad():
        expected = model.get_audio_features(**inputs)
        assert torch.equal(reloaded.get_audio_features(**inputs), expected)
    assert not any(p.requires_grad for p in reloaded.towers.audio.parameters())


def test_msclap_tower_loads_as_remote_code_without_our_package(
    tiny_clip, tiny_msclap, tmp_path, remote_code_embeddings
):
    """The msclap tower has one loader, saved with the checkpoint (`msclap_slava.py`): where avt cannot be imported,
    remote code still builds the tiny msclap config's architecture and checks its keys, so the audio embeddings
    are identical (msclap's own loader would build the 2023 defaults and leave them random)."""
    model = SlavaModel.from_towers(
        str(tiny_clip), str(tiny_msclap), audio_backend="msclap", projection_dim=16
    )
    model.save_pretrained(tmp_path / "slava")
    assert (tmp_path / "slava" / "msclap_slava.py").is_file()
    inputs = _clips(model.get_processor())
    remote = remote_code_embeddings(str(tmp_path / "slava"), inputs)
    with torch.no_grad():
        expected = model.get_audio_features(inputs["audio_values"], inputs["windows_mask"])
    assert torch.equal(remote["audio"], expected)
