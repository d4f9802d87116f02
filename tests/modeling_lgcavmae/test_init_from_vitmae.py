"""IN-initial: an ImageNet MAE (transformers ViTMAEForPreTraining) adapted the way the official script does."""

from __future__ import annotations

import pytest
import torch
from transformers import ViTMAEConfig, ViTMAEForPreTraining

from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining, init_from_vitmae

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def tiny_vitmae() -> ViTMAEForPreTraining:
    torch.manual_seed(0)
    config = ViTMAEConfig(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
        image_size=48,
        layer_norm_eps=1e-5,
        attn_implementation="eager",
    )
    model = ViTMAEForPreTraining(config).eval()
    with torch.no_grad():  # make every tensor distinct from its default init
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def _target_model() -> LGCavMaeForPreTraining:
    config = LGCavMaeConfig(
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        num_modality_specific_layers=2,
        num_shared_layers=1,
        decoder_hidden_size=16,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
        image_size=48,
        audio_length=128,
        text_embed_dim=8,
        attn_implementation="eager",
    )
    return LGCavMaeForPreTraining(config).eval()


def _legacy_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename to the checkpoint layout stored on the Hub (transformers 4 names)."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("vit.layers.", "vit.encoder.layer.")
        key = key.replace("attention.q_proj", "attention.attention.query")
        key = key.replace("attention.k_proj", "attention.attention.key")
        key = key.replace("attention.v_proj", "attention.attention.value")
        key = key.replace("attention.o_proj", "attention.output.dense")
        key = key.replace("mlp.fc1", "intermediate.dense").replace("mlp.fc2", "output.dense")
        renamed[key] = value
    return renamed


def test_in_initial_mapping_follows_the_official_adaptation(tiny_vitmae):
    mae = tiny_vitmae.state_dict()
    model = _target_model()
    missing = init_from_vitmae(model, mae)
    assert sorted(missing) == sorted(
        [
            "cav_mae.audio_embeddings.position_embeddings",
            "cav_mae.audio_embeddings.modality_embedding",
            "cav_mae.visual_embeddings.modality_embedding",
            "decoder.audio_position_embeddings",
            "decoder.audio_modality_embedding",
            "decoder.visual_modality_embedding",
        ]
        + [key for key in model.state_dict() if "text_projection" in key]
    )
    ours = model.state_dict()
    q, k, v = (mae[f"vit.layers.1.attention.{p}_proj.weight"] for p in "qkv")
    assert torch.equal(ours["cav_mae.audio_layers.1.attention.qkv.weight"], torch.cat([q, k, v]))
    assert torch.equal(ours["cav_mae.visual_layers.1.attention.qkv.weight"], torch.cat([q, k, v]))
    assert torch.equal(ours["cav_mae.shared_layers.0.mlp.fc2.weight"], mae["vit.layers.2.mlp.fc2.weight"])
    for modality in ("audio_", "visual_", ""):
        assert torch.equal(
            ours[f"cav_mae.shared_layers.0.{modality}layernorm_after.weight"],
            mae["vit.layers.2.layernorm_after.weight"],
        )
        assert torch.equal(ours[f"cav_mae.{modality}layernorm.bias"], mae["vit.layernorm.bias"])
    patch = mae["vit.embeddings.patch_embeddings.projection.weight"]
    assert torch.equal(ours["cav_mae.audio_embeddings.projection.weight"], patch.sum(dim=1, keepdim=True))
    assert torch.equal(
        ours["cav_mae.visual_embeddings.position_embeddings"],
        mae["vit.embeddings.position_embeddings"][:, 1:],
    )
    assert torch.equal(ours["decoder.visual_position_embeddings"], mae["decoder.decoder_pos_embed"][:, 1:])
    assert torch.equal(ours["decoder.audio_pred.weight"], mae["decoder.decoder_pred.weight"][:256])
    assert torch.equal(ours["decoder.visual_pred.bias"], mae["decoder.decoder_pred.bias"])
    assert torch.equal(ours["decoder.mask_token"], mae["decoder.mask_token"])
    assert not model.cav_mae.audio_embeddings.position_embeddings.requires_grad


def test_adapted_layers_compute_what_the_mae_layers_compute(tiny_vitmae):
    """Fused qkv order and head split are right: our layer == the MAE layer on the same tokens."""
    model = _target_model()
    init_from_vitmae(model, tiny_vitmae.state_dict())
    tokens = torch.randn(2, 9, 32)
    with torch.no_grad():
        expected = tiny_vitmae.vit.layers[1](tokens)
        expected = expected[0] if isinstance(expected, tuple) else expected
        torch.testing.assert_close(model.cav_mae.visual_layers[1](tokens), expected, atol=1e-5, rtol=1e-5)
        decoder_tokens = torch.randn(2, 9, 16)
        expected = tiny_vitmae.decoder.decoder_layers[0](decoder_tokens)
        expected = expected[0] if isinstance(expected, tuple) else expected
        torch.testing.assert_close(model.decoder.layers[0](decoder_tokens), expected, atol=1e-5, rtol=1e-5)


def test_legacy_names_and_folders_give_the_same_initialisation(tiny_vitmae, tmp_path):
    from_dict = _target_model()
    init_from_vitmae(from_dict, tiny_vitmae.state_dict())
    from_legacy = _target_model()
    init_from_vitmae(from_legacy, _legacy_names(tiny_vitmae.state_dict()))
    tiny_vitmae.save_pretrained(tmp_path / "mae")
    from_folder = _target_model()
    init_from_vitmae(from_folder, tmp_path / "mae")
    reference = from_dict.state_dict()
    for other in (from_legacy, from_folder):
        for key in reference:
            if "modality_embedding" in key or "text_projection" in key:
                continue  # left as (randomly) initialised by design
            assert torch.equal(other.state_dict()[key], reference[key]), key


def test_depth_mismatch_is_a_clear_error(tiny_vitmae):
    config = _target_model().config
    config.num_modality_specific_layers = 3
    with pytest.raises(ValueError, match="must add up"):
        init_from_vitmae(LGCavMaeForPreTraining(config), tiny_vitmae.state_dict())
