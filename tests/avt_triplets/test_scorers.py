"""The transformers CLAP backend on the tiny ClapModel: whole-clip windows, no random crop, cosine scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import ClapConfig, ClapModel, ClapProcessor

from avt_core.errors import UsageError
from avt_triplets.scorers import AudioTextScorer, ClapScorer, load_scorer, window_starts


@pytest.fixture(scope="module")
def scorer(tiny_clap: Path):
    return load_scorer(str(tiny_clap), device="cpu")


def _tone(seconds: float, rate: int, freq: float, seed: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.4 * np.sin(2 * np.pi * freq * t) * np.linspace(0, 1, t.size) + 0.05 * noise).astype(np.float32)


def _reference(scorer: ClapScorer, windows: list[np.ndarray]) -> np.ndarray:
    """Each window through the extractor + get_audio_features, normalised, averaged, normalised."""
    rows = []
    for window in windows:
        features = scorer.feature_extractor(window, sampling_rate=scorer.sampling_rate, return_tensors="pt")
        with torch.no_grad():
            out = scorer.model.get_audio_features(input_features=features["input_features"].float())
        emb = out.pooler_output[0].numpy()
        rows.append(emb / np.linalg.norm(emb))
    mean = np.mean(rows, axis=0)
    return mean / np.linalg.norm(mean)


def test_loads_with_extractor_rate_and_projection_dim(scorer, tiny_clap: Path):
    config = ClapConfig.from_pretrained(tiny_clap)
    processor = ClapProcessor.from_pretrained(tiny_clap)
    assert isinstance(scorer, AudioTextScorer)
    assert scorer.embed_dim == config.projection_dim
    assert scorer.sampling_rate == processor.feature_extractor.sampling_rate
    assert scorer.window_samples == processor.feature_extractor.max_length_s * scorer.sampling_rate
    assert scorer.name == str(tiny_clap) and scorer.revision is None


def test_twelve_second_clip_is_deterministic_although_rand_trunc_is_random(scorer):
    rate = scorer.sampling_rate
    clip = _tone(12, rate, 440, 0)
    # The extractor alone crops a 12 s clip at a random offset: two seeds, two different inputs.
    fe = scorer.feature_extractor
    np.random.seed(0)
    a = fe(clip, sampling_rate=rate, truncation="rand_trunc")["input_features"][0]
    np.random.seed(1)
    b = fe(clip, sampling_rate=rate, truncation="rand_trunc")["input_features"][0]
    assert not np.allclose(a, b)

    np.random.seed(0)
    first = scorer.embed_audio([clip])
    np.random.seed(1)
    np.testing.assert_array_equal(first, scorer.embed_audio([clip]))
    assert first.shape == (1, scorer.embed_dim) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)

    window = scorer.window_samples
    assert window_starts(clip.size, window, window // 2) == [0, clip.size - window]
    expected = _reference(scorer, [clip[:window], clip[-window:]])
    np.testing.assert_allclose(first[0], expected, atol=1e-5)


def test_batch_equals_one_by_one_and_short_clips_are_one_window(scorer):
    rate = scorer.sampling_rate
    clips = [_tone(4, rate, 300, 1), _tone(11, rate, 800, 2)]
    batch = scorer.embed_audio(clips)
    single = np.concatenate([scorer.embed_audio([c]) for c in clips])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    np.testing.assert_allclose(
        batch[0], _reference(scorer, [clips[0]]), atol=1e-5
    )  # repeat-padded by the extractor


def test_fusion_checkpoint_is_deterministic(tiny_clap: Path):
    """A fusion extractor flags a random short clip as 'longer'; the scorer must not inherit that."""
    config = ClapConfig.from_pretrained(tiny_clap)
    config.audio_config.enable_fusion = True
    torch.manual_seed(0)
    model = ClapModel(config)
    processor = ClapProcessor.from_pretrained(tiny_clap)
    processor.feature_extractor.truncation = "fusion"
    scorer = ClapScorer(model, processor, device=torch.device("cpu"), name="fused", revision=None)
    rate = scorer.sampling_rate
    clips = [_tone(2, rate, 500, 3), _tone(3, rate, 900, 4)]
    np.random.seed(0)
    first = scorer.embed_audio(clips)
    np.random.seed(1)
    np.testing.assert_array_equal(first, scorer.embed_audio(clips))
    np.testing.assert_allclose(first, np.concatenate([scorer.embed_audio([c]) for c in clips]), atol=1e-5)


def test_text_embeddings_and_cosine(scorer):
    texts = ["a dog barking in the yard", "rain falling on a window", "a dog barking in the yard"]
    text = scorer.embed_text(texts)
    assert text.shape == (3, scorer.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(text[0], text[2])
    assert not np.allclose(text[0], text[1])
    tokens = scorer.tokenizer(texts[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        direct = scorer.model.get_text_features(**tokens).pooler_output.numpy()
    np.testing.assert_allclose(text[:2], direct / np.linalg.norm(direct, axis=1, keepdims=True), atol=1e-5)
    audio = scorer.embed_audio([_tone(3, scorer.sampling_rate, 250, 5)])
    np.testing.assert_allclose(scorer.score(audio, text), audio @ text.T, atol=1e-6)


def test_msclap_only_options_are_refused_for_transformers_clap(tiny_clap: Path):
    with pytest.raises(UsageError, match="only apply to msclap"):
        load_scorer(str(tiny_clap), weights="x.pth")


def test_window_starts_cover_the_signal():
    assert window_starts(5, 10, 5) == [0]
    assert window_starts(10, 10, 5) == [0]
    assert window_starts(12, 7, 3) == [0, 3, 5]
    assert window_starts(14, 7, 7) == [0, 7]
    for n in (8, 13, 40, 41):
        starts = window_starts(n, 7, 3)
        assert starts[0] == 0 and starts[-1] + 7 == n and all(b - a <= 3 for a, b in zip(starts, starts[1:]))
    with pytest.raises(ValueError):
        window_starts(0, 7, 3)
