"""The tiny transformers CLAP reloads with from_pretrained and embeds audio and text."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def clap(tiny_clap):
    from transformers import AutoProcessor, ClapModel

    return AutoProcessor.from_pretrained(tiny_clap), ClapModel.from_pretrained(tiny_clap).eval()


def _pooled(output):
    return getattr(output, "pooler_output", output)


def test_clap_is_unfused_with_the_real_feature_extractor(clap):
    processor, model = clap
    extractor = processor.feature_extractor
    assert type(processor).__name__ == "ClapProcessor"
    assert extractor.truncation == "rand_trunc" and extractor.padding == "repeatpad"
    assert (
        extractor.sampling_rate == 48_000 and extractor.feature_size == model.config.audio_config.num_mel_bins
    )
    assert model.config.audio_config.enable_fusion is False


def test_clap_audio_and_text_embeddings_and_similarity(clap):
    import torch

    processor, model = clap
    rate = processor.feature_extractor.sampling_rate
    t = np.arange(3 * rate) / rate
    audios = [
        np.sin(2 * np.pi * 440 * t).astype(np.float32),  # shorter than 10 s: repeat-padded
        np.random.default_rng(0).normal(0, 0.1, 12 * rate).astype(np.float32),  # longer: truncated
    ]
    texts = ["a dog barking in the yard", "a high pitched tone", "rain falling on a window"]
    audio_inputs = processor(audio=audios, sampling_rate=rate, return_tensors="pt")
    assert audio_inputs["input_features"].shape == (2, 1, 1001, 64)
    text_inputs = processor(text=texts, padding=True, return_tensors="pt")
    assert (text_inputs["input_ids"] != processor.tokenizer.unk_token_id).all()  # words are in the vocabulary

    with torch.no_grad():
        audio_embeds = _pooled(model.get_audio_features(**audio_inputs))
        text_embeds = _pooled(model.get_text_features(**text_inputs))
        logits = model(**text_inputs, input_features=audio_inputs["input_features"]).logits_per_audio
    dim = model.config.projection_dim
    assert audio_embeds.shape == (2, dim) and text_embeds.shape == (3, dim)
    cosine = (
        torch.nn.functional.normalize(audio_embeds, dim=-1)
        @ torch.nn.functional.normalize(text_embeds, dim=-1).T
    )
    assert torch.isfinite(cosine).all() and cosine.abs().max() <= 1 + 1e-6
    # The model's own similarity is the same cosine, scaled by its temperature.
    torch.testing.assert_close(logits, cosine * model.logit_scale_a.exp(), rtol=1e-4, atol=1e-4)
