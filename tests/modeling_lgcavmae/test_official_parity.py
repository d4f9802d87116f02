"""Our model reproduces the official CAV-MAE numerics (checked against tests/support/official_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining
from modeling_lgcavmae.convert_cavmae_checkpoint import (
    convert_cavmae_state_dict,
    convert_cavmae_state_dict_with_report,
    load_cavmae_checkpoint,
)
from modeling_lgcavmae.modeling_lgcavmae import build_2d_sincos_position_embedding

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")

REFERENCE_KEYS = "/work/shared/reference/cavmae_state_dict_keys.txt"
ATOL = 2e-5


def _inputs(dims, batch: int = 4, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(batch, dims.audio_length, dims.mel_bins, generator=generator)
    images = torch.randn(batch, 3, dims.img_size, dims.img_size, generator=generator)
    noise_a = torch.rand(batch, dims.num_audio, generator=generator)
    noise_v = torch.rand(batch, dims.num_visual, generator=generator)
    return audio, images, noise_a, noise_v


def _read_reference_layout() -> dict[str, tuple[int, ...]]:
    layout = {}
    with open(REFERENCE_KEYS) as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            key, shape = line.rstrip("\n").split("\t")
            layout[key] = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
    return layout


def test_test_layout_generator_matches_the_official_key_list(official):
    """The layout the parity tests build equals the 647 official keys, in order, with their shapes."""
    reference = _read_reference_layout()
    generated = official.official_shapes(official.OfficialDims())
    assert list(generated.items()) == list(reference.items())
    assert len(reference) == 647
    assert sum(int(np.prod(shape)) for shape in reference.values()) == 191_036_160


def test_full_size_official_layout_converts_onto_our_parameters_exactly(official):
    """At the paper config, every official tensor lands on one of our parameters with the same shape; the only
    leftovers are the documented unused norms (dropped) and the LG text projections (new)."""
    reference = _read_reference_layout()
    meta_state = {f"module.{key}": torch.empty(shape, device="meta") for key, shape in reference.items()}
    converted, report = convert_cavmae_state_dict_with_report(meta_state)
    assert report.unrecognised == []
    assert report.kind == "pretraining"
    # 22 modality-specific + 8 decoder blocks x 4 unused LayerNorms x (weight, bias)
    assert len(report.dropped_unused_norms) == (22 + 8) * 8
    with torch.device("meta"):
        model = LGCavMaeForPreTraining(LGCavMaeConfig())
    ours = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    lg_only = {key for key in ours if "text_projection" in key}
    assert {key: tuple(value.shape) for key, value in converted.items()} == {
        key: shape for key, shape in ours.items() if key not in lg_only
    }


def test_parameter_count_equals_official_191_036_M():
    """CAV-MAE part = 191.036 M with the unused norms, 0.906 M of it in the four frozen tables; encoder 164.500 M."""
    with torch.device("meta"):
        model = LGCavMaeForPreTraining(LGCavMaeConfig())
    config = model.config
    params = dict(model.named_parameters())
    cavmae = sum(p.numel() for name, p in params.items() if "text_projection" not in name)
    unused_norms = (2 * config.num_modality_specific_layers) * 4 * 2 * config.hidden_size + (
        config.decoder_num_hidden_layers * 4 * 2 * config.decoder_hidden_size
    )
    assert cavmae + unused_norms == 191_036_160
    frozen = sum(p.numel() for p in params.values() if not p.requires_grad)
    assert round(frozen / 1e6, 3) == 0.906
    encoder = sum(p.numel() for name, p in params.items() if name.startswith("cav_mae."))
    assert (
        round((encoder + 2 * config.num_modality_specific_layers * 4 * 2 * config.hidden_size) / 1e6, 3)
        == 164.5
    )


def test_sincos_tables_match_the_official_numpy_function(official):
    for dim, rows, cols in ((768, 8, 64), (512, 14, 14), (32, 8, 8)):
        ours = build_2d_sincos_position_embedding(dim, rows, cols)
        theirs = torch.from_numpy(official.sincos_table(dim, rows, cols)).float()
        assert torch.equal(ours, theirs)
    # audio: first half encodes time (column), second half frequency (row), tokens numbered f * 64 + t
    table = build_2d_sincos_position_embedding(768, 8, 64)
    token = 3 * 64 + 10
    assert torch.isclose(table[token, 0], torch.sin(torch.tensor(10.0)))
    assert torch.isclose(table[token, 384], torch.sin(torch.tensor(3.0)))


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_pretraining_forward_matches_official(official, tiny_dims, tiny_overrides, attn_implementation):
    """Losses, masks, accuracy, predictions and pooled features equal the official forward on converted weights."""
    state = official.random_official_state_dict(tiny_dims, pretraining=True, seed=3)
    model, report = load_cavmae_checkpoint(state, **tiny_overrides)
    assert isinstance(model, LGCavMaeForPreTraining)
    assert report.newly_initialised and all("text_projection" in key for key in report.newly_initialised)
    model.config._attn_implementation = attn_implementation
    model.eval()
    audio, images, noise_a, noise_v = _inputs(tiny_dims)
    reference = official.OfficialCavMae(state, tiny_dims)
    with torch.no_grad():
        (loss, loss_mae, loss_mae_a, loss_mae_v, loss_c, mask_a, mask_v, c_acc), extra = reference.forward(
            audio, images, noise_a, noise_v
        )
        ours = model(audio, images, audio_noise=noise_a, visual_noise=noise_v)
    torch.testing.assert_close(ours.loss, loss, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(ours.loss_reconstruction_audio, loss_mae_a, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(ours.loss_reconstruction_visual, loss_mae_v, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(0.01 * ours.loss_contrastive, loss_c, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(ours.contrastive_accuracy, c_acc.float())
    assert torch.equal(ours.mask_audio, mask_a) and torch.equal(ours.mask_visual, mask_v)
    torch.testing.assert_close(ours.reconstruction_audio, extra["pred_a"], atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(ours.reconstruction_visual, extra["pred_v"], atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(ours.audio_embeds, extra["audio_rep"], atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(ours.visual_embeds, extra["video_rep"], atol=ATOL, rtol=1e-5)
    assert ours.loss_audio_text is None  # no text given: LG terms skipped, CAV-MAE loss only


def test_bidirectional_contrastive_matches_official(official, tiny_dims, tiny_overrides):
    state = official.random_official_state_dict(tiny_dims, seed=4)
    model, _ = load_cavmae_checkpoint(state, contrastive_bidirectional=True, **tiny_overrides)
    audio, images, noise_a, noise_v = _inputs(tiny_dims, seed=5)
    with torch.no_grad():
        (_, _, _, _, loss_c, _, _, c_acc), _ = official.OfficialCavMae(state, tiny_dims).forward(
            audio, images, noise_a, noise_v, bidirect_contrast=True
        )
        ours = model.eval()(audio, images, audio_noise=noise_a, visual_noise=noise_v)
    torch.testing.assert_close(0.01 * ours.loss_contrastive, loss_c, atol=ATOL, rtol=1e-5)
    torch.testing.assert_close(ours.contrastive_accuracy, c_acc.float())


def test_masks_from_the_global_rng_match_official_draw_order(official, tiny_dims, tiny_overrides):
    """Without noise, audio noise is drawn first and visual second from the global RNG, like the official code."""
    state = official.random_official_state_dict(tiny_dims, seed=6)
    model, _ = load_cavmae_checkpoint(state, **tiny_overrides)
    audio, images, _, _ = _inputs(tiny_dims, seed=7)
    with torch.no_grad():
        torch.manual_seed(123)
        (loss, *_rest), _ = official.OfficialCavMae(state, tiny_dims).forward(audio, images)
        mask_a, mask_v = _rest[4], _rest[5]
        torch.manual_seed(123)
        ours = model.eval()(audio, images)
    assert torch.equal(ours.mask_audio, mask_a) and torch.equal(ours.mask_visual, mask_v)
    torch.testing.assert_close(ours.loss, loss, atol=ATOL, rtol=1e-5)


def test_retrieval_features_match_official_forward_feat(official, tiny_dims, tiny_overrides):
    state = official.random_official_state_dict(tiny_dims, seed=8)
    model, _ = load_cavmae_checkpoint(state, **tiny_overrides)
    audio, images, _, _ = _inputs(tiny_dims, seed=9)
    with torch.no_grad():
        feat_a, feat_v = official.OfficialCavMae(state, tiny_dims).forward_feat(audio, images)
        torch.testing.assert_close(model.get_audio_features(audio), feat_a.mean(dim=1), atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(
            model.get_visual_features(images), feat_v.mean(dim=1), atol=ATOL, rtol=1e-5
        )


def test_deeper_shared_stack_chains_layers_like_official_forward_feat(official, tiny_dims, tiny_overrides):
    """With 2 shared layers we chain them (the official pretraining loop would not; its retrieval path does)."""
    from dataclasses import replace

    dims = replace(tiny_dims, shared_depth=2)
    state = official.random_official_state_dict(dims, seed=10)
    model, _ = load_cavmae_checkpoint(state, **tiny_overrides)
    assert model.config.num_shared_layers == 2
    audio, images, _, _ = _inputs(dims, seed=11)
    with torch.no_grad():
        feat_a, _ = official.OfficialCavMae(state, dims).forward_feat(audio, images)
        torch.testing.assert_close(model.get_audio_features(audio), feat_a.mean(dim=1), atol=ATOL, rtol=1e-5)


@pytest.mark.parametrize(
    ("official_mode", "our_mode"),
    [
        ("multimodal", "audio_visual"),
        ("audioonly", "audio"),
        ("videoonly", "visual"),
        ("missingaudioonly", "missing_visual"),
        ("missingvideoonly", "missing_audio"),
    ],
)
def test_finetuning_checkpoint_matches_official_cavmaeft(
    official, tiny_dims, tiny_overrides, official_mode, our_mode
):
    from dataclasses import replace

    dims = replace(tiny_dims, label_dim=5)
    state = official.random_official_state_dict(dims, pretraining=False, seed=12)
    model, report = load_cavmae_checkpoint(state, **tiny_overrides)
    assert isinstance(model, LGCavMaeForAudioVisualClassification)
    assert report.kind == "finetuning" and report.newly_initialised == []
    assert model.config.num_labels == 5
    audio, images, _, _ = _inputs(dims, seed=13)
    with torch.no_grad():
        expected = official.OfficialCavMae(state, dims).forward_finetune(audio, images, official_mode)
        logits = model.eval()(audio, images, classifier_mode=our_mode).logits
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=1e-5)


def test_convert_is_strict_about_unknown_keys(official, tiny_dims):
    state = official.random_official_state_dict(tiny_dims, seed=14)
    state["module.something_new.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match="something_new"):
        convert_cavmae_state_dict(state)


def test_load_is_strict_about_missing_tensors(official, tiny_dims, tiny_overrides):
    state = official.random_official_state_dict(tiny_dims, seed=15)
    del state["module.blocks_u.0.norm1_a.weight"]
    with pytest.raises(ValueError, match="audio_layernorm_before.weight"):
        load_cavmae_checkpoint(state, **tiny_overrides)
