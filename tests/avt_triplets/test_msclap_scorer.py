"""The msclap 2023 backend on the tiny random model: real msclap loading path, whole-clip determinism, key check."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from avt_triplets.scorers import AudioTextScorer, load_scorer, score
from modeling_slava.msclap_slava import CONFIG_FILENAME, WEIGHTS_FILENAME, MsclapWeightsError

SR = 44_100


@pytest.fixture(scope="module")
def scorer(tiny_msclap: Path):
    return load_scorer("msclap:2023", weights=tiny_msclap, device="cpu")


def _noise(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def _direct_window_embeddings(scorer, windows: list[np.ndarray]) -> np.ndarray:
    """msclap's audio encoder on [W, 7 s] tensors, normalised: the reference the test compares against."""
    with torch.no_grad():
        emb = scorer.wrapper.clap.audio_encoder(torch.from_numpy(np.stack(windows)))[0].numpy()
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_loads_through_msclap_model_fp_path(scorer, tiny_msclap: Path):
    config = yaml.safe_load((tiny_msclap / CONFIG_FILENAME).read_text())
    assert isinstance(scorer, AudioTextScorer)
    assert scorer.name == "msclap:2023" and scorer.revision is None  # local weights: no Hub commit
    assert scorer.embed_dim == config["d_proj"]
    assert scorer.sampling_rate == SR  # config_2023.yml, untouched by the tiny overrides
    assert Path(scorer.wrapper.model_fp) == tiny_msclap / WEIGHTS_FILENAME
    assert "gpt" in scorer.wrapper.args.text_model and scorer.tokenizer.pad_token_id == 0
    # Every parameter equals the file's: nothing was left at its random init by strict=False.
    saved = torch.load(tiny_msclap / WEIGHTS_FILENAME, weights_only=True)["model"]
    for key, value in scorer.model.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0, msg=key)


def test_file_and_text_model_can_be_passed_separately(tiny_msclap: Path, tmp_path: Path):
    text_model = tmp_path / "my-gpt2-text"
    shutil.copytree(tiny_msclap / "gpt2", text_model)
    weights = tmp_path / "weights" / WEIGHTS_FILENAME
    weights.parent.mkdir()
    shutil.copy(tiny_msclap / WEIGHTS_FILENAME, weights)
    shutil.copy(tiny_msclap / CONFIG_FILENAME, weights.parent / CONFIG_FILENAME)
    scorer = load_scorer("msclap:2023", weights=weights, text_model=text_model, device="cpu")
    assert scorer.wrapper.args.text_model == str(text_model)


def test_text_model_path_must_name_the_model_family(tiny_msclap: Path, tmp_path: Path):
    text_model = tmp_path / "text-encoder"
    shutil.copytree(tiny_msclap / "gpt2", text_model)
    with pytest.raises(ValueError, match="contains 'gpt'"):
        load_scorer("msclap:2023", weights=tiny_msclap / WEIGHTS_FILENAME, text_model=text_model)


def _copy_with_state(tiny_msclap: Path, tmp_path: Path, edit) -> Path:
    folder = tmp_path / "edited"
    shutil.copytree(tiny_msclap, folder)
    checkpoint = torch.load(folder / WEIGHTS_FILENAME, weights_only=True)
    edit(checkpoint["model"])
    torch.save(checkpoint, folder / WEIGHTS_FILENAME)
    return folder


def test_renamed_key_raises_clear_error(tiny_msclap: Path, tmp_path: Path):
    key = "audio_encoder.projection.linear1.weight"

    def rename(state):
        state[key + "_renamed"] = state.pop(key)

    folder = _copy_with_state(tiny_msclap, tmp_path, rename)
    with pytest.raises(MsclapWeightsError) as error:
        load_scorer("msclap:2023", weights=folder)
    message = str(error.value)
    assert "1 missing key(s)" in message and key in message
    assert "1 unexpected key(s)" in message and key + "_renamed" in message


def test_missing_text_key_raises(tiny_msclap: Path, tmp_path: Path):
    folder = _copy_with_state(
        tiny_msclap, tmp_path, lambda s: s.pop("caption_encoder.projection.linear2.weight")
    )
    with pytest.raises(MsclapWeightsError, match="caption_encoder.projection.linear2.weight"):
        load_scorer("msclap:2023", weights=folder)


def test_old_gpt2_mask_buffers_are_tolerated(tiny_msclap: Path, tmp_path: Path):
    """Checkpoints saved with transformers 4 carry GPT-2's attn.bias/masked_bias buffers; v5 has none."""

    def add_buffers(state):
        state["caption_encoder.base.h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 8, 8))
        state["caption_encoder.base.h.0.attn.masked_bias"] = torch.tensor(-1e4)

    folder = _copy_with_state(tiny_msclap, tmp_path, add_buffers)
    assert load_scorer("msclap:2023", weights=folder).embed_dim > 0


def test_audio_embeddings_are_normalised_and_batch_independent(scorer):
    clips = [_noise(10, 0), _noise(3, 1)]
    batch = scorer.embed_audio(clips)
    assert batch.shape == (2, scorer.embed_dim) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    single = np.concatenate([scorer.embed_audio([clip]) for clip in clips])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert not np.allclose(batch[0], batch[1], atol=1e-3)  # different clips, different embeddings


def test_twelve_second_clip_is_deterministic_and_covers_the_whole_clip(scorer):
    clip = _noise(12, 3)
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    first = scorer.embed_audio([clip])
    random.seed(2)
    np.random.seed(2)
    torch.manual_seed(2)
    np.testing.assert_array_equal(first, scorer.embed_audio([clip]))

    # Reference: windows of 7 s at 0, 3.5 and 5 s (the last one ends at 12 s), normalised, averaged.
    starts = [0, int(3.5 * SR), 5 * SR]
    windows = _direct_window_embeddings(scorer, [clip[s : s + 7 * SR] for s in starts])
    expected = windows.mean(0) / np.linalg.norm(windows.mean(0))
    np.testing.assert_allclose(first[0], expected, atol=1e-5)
    # ...which differs from any single 7 s crop, so the averaging is really there.
    assert all(not np.allclose(first[0], w, atol=1e-3) for w in windows)


def test_short_clip_matches_msclaps_own_audio_path(scorer, monkeypatch):
    """≤ 7 s, msclap itself is deterministic: its get_audio_embeddings (repeat-padding) must agree with ours."""
    clip = _noise(3, 4)
    monkeypatch.setattr(
        scorer.wrapper, "read_audio", lambda path, resample=True: (torch.from_numpy(clip)[None], SR)
    )
    with torch.no_grad():
        theirs = scorer.wrapper.get_audio_embeddings(["clip.wav"], resample=False).numpy()
    theirs = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    np.testing.assert_allclose(scorer.embed_audio([clip]), theirs, atol=1e-5)


def test_text_embeddings_match_msclap_tokenisation(scorer):
    """Our tokenisation reproduces what encode_plus gave msclap: text + ' <|endoftext|>', padded to 77 with 0."""
    texts = ["a dog barking in the yard", "rain falling on a window"]
    ours = scorer.embed_text(texts)
    assert ours.shape == (2, scorer.embed_dim)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    rows = [
        scorer.tokenizer(t + " <|endoftext|>", padding="max_length", max_length=77, return_tensors="pt")
        for t in texts
    ]
    batch = {k: torch.cat([r[k] for r in rows]) for k in ("input_ids", "attention_mask")}
    with torch.no_grad():
        theirs = scorer.wrapper._get_text_embeddings(batch).numpy()
    np.testing.assert_allclose(ours, theirs / np.linalg.norm(theirs, axis=1, keepdims=True), atol=1e-5)


def test_long_caption_keeps_end_of_text_token(scorer):
    tokens = scorer.tokenize(["a dog " * 100])
    eos = scorer.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert tokens["input_ids"].shape == (1, 77)
    assert tokens["input_ids"][0, -1].item() == eos


def test_duplicate_texts_in_a_call_get_identical_rows(scorer):
    embeddings = scorer.embed_text(["a bird chirping", "a car engine", "a bird chirping"])
    np.testing.assert_array_equal(embeddings[0], embeddings[2])
    # Alone, the text goes through the model in another batch: equal up to float rounding only, which is
    # why the pipeline fixes its batches per shard instead of caching across them.
    np.testing.assert_allclose(scorer.embed_text(["a bird chirping"])[0], embeddings[0], atol=1e-6)
    assert scorer.embed_text([]).shape == (0, scorer.embed_dim)


def test_score_is_cosine(scorer):
    audio = scorer.embed_audio([_noise(5, 5), _noise(9, 6)])
    text = scorer.embed_text(["a dog barking", "a piano melody", "people talking"])
    np.testing.assert_allclose(scorer.score(audio, text), audio @ text.T, atol=1e-6)
    raw_a, raw_t = audio * 3.0, text * 0.5  # cosine ignores scale
    expected = (raw_a @ raw_t.T) / np.outer(np.linalg.norm(raw_a, axis=1), np.linalg.norm(raw_t, axis=1))
    np.testing.assert_allclose(score(raw_a, raw_t), expected, atol=1e-6)
    assert score(audio[0], text).shape == (3,)


def test_bad_waveforms_raise(scorer):
    with pytest.raises(ValueError, match="empty"):
        scorer.embed_audio([np.zeros(0, dtype=np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        scorer.embed_audio([np.full(100, np.nan, dtype=np.float32)])
    with pytest.raises(ValueError, match="mono"):
        scorer.embed_audio([np.zeros((2, 100), dtype=np.float32)])
