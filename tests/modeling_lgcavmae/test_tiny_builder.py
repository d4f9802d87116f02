"""make_tiny_lgcavmae: a complete tiny checkpoint (model + matching processor) for tests, training and the demo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForPreTraining, AutoProcessor

import modeling_lgcavmae  # noqa: F401  (registers the Auto classes)
from avt_triplets.tiny import make_tiny_lgcavmae

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")


def test_tiny_checkpoint_runs_on_processor_outputs(tmp_path):
    folder = make_tiny_lgcavmae(tmp_path / "tiny", text_embed_dim=24)
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForPreTraining.from_pretrained(folder).eval()
    assert model.config.text_embed_dim == 24 and model.config.hidden_size == 32
    waveform = np.sin(2 * np.pi * 440 * np.arange(16000 * 2) / 16000).astype(np.float32)
    frame = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    inputs = processor(
        audio=[waveform, waveform], images=[frame, frame], sampling_rate=16000, return_tensors="pt"
    )
    assert inputs["audio_values"].shape == (2, model.config.audio_length, model.config.num_mel_bins)
    assert inputs["pixel_values"].shape == (2, 3, model.config.image_size, model.config.image_size)
    with torch.no_grad():
        out = model(**inputs, text_embeds=torch.randn(2, 24))
    assert torch.isfinite(out.loss)


def test_same_seed_same_weights(tmp_path):
    first = AutoModelForPreTraining.from_pretrained(make_tiny_lgcavmae(tmp_path / "a", with_processor=False))
    second = AutoModelForPreTraining.from_pretrained(make_tiny_lgcavmae(tmp_path / "b", with_processor=False))
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
