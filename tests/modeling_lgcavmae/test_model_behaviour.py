"""Masking, hand-computed losses, gradient flow, attention backends, checkpointing, config checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG
from modeling_lgcavmae import (
    LGCavMaeConfig,
    LGCavMaeForAudioVisualClassification,
    LGCavMaeForPreTraining,
    LGCavMaeModel,
    cavmae_contrastive_loss,
    random_masking,
    text_info_nce_loss,
)

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {
    **MICRO_LGCAVMAE_CONFIG,
    "num_modality_specific_layers": 2,  # so layer order matters
    "num_shared_layers": 1,
    "text_embed_dim": 12,
    "text_projection_hidden_size": 20,
}


def _model(cls=LGCavMaeForPreTraining, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return cls(LGCavMaeConfig(**{**TINY, **overrides}))


def _batch(config: LGCavMaeConfig, batch: int = 4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "audio_values": torch.randn(batch, config.audio_length, config.num_mel_bins, generator=generator),
        "pixel_values": torch.randn(batch, 3, config.image_size, config.image_size, generator=generator),
        "text_embeds": torch.randn(batch, config.text_embed_dim, generator=generator),
        "audio_noise": torch.rand(batch, config.num_audio_patches, generator=generator),
        "visual_noise": torch.rand(batch, config.num_visual_patches, generator=generator),
    }


# -- masking ---------------------------------------------------------------------------------------------------------


def test_masks_follow_the_mae_argsort_rule():
    model = _model()
    batch = _batch(model.config)
    with torch.no_grad():
        out = model(**batch)
    for noise, mask, ratio in (
        (batch["audio_noise"], out.mask_audio, 0.75),
        (batch["visual_noise"], out.mask_visual, 0.75),
    ):
        length = noise.shape[1]
        keep = int(length * (1 - ratio))
        for row in range(noise.shape[0]):
            kept = set(np.argsort(noise[row].numpy(), kind="stable")[:keep].tolist())
            expected = [0.0 if index in kept else 1.0 for index in range(length)]
            assert mask[row].tolist() == expected
    assert (
        out.mask_audio.sum(1).tolist() == [model.config.num_audio_patches - 8] * 4
    )  # 32 tokens, keep int(8.0)


def test_kept_tokens_come_out_in_shuffled_order():
    tokens = torch.arange(10.0).reshape(1, 10, 1)
    noise = torch.tensor([[0.9, 0.1, 0.8, 0.05, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]])
    kept, mask, ids_restore = random_masking(tokens, 0.6, noise)
    assert kept.flatten().tolist() == [3.0, 1.0, 9.0, 8.0]  # sorted by noise, not by position
    assert mask.flatten().tolist() == [1, 0, 1, 0, 1, 1, 1, 1, 0, 0]
    assert torch.equal(torch.argsort(torch.argsort(noise)), ids_restore)


def test_modality_embedding_is_added_before_masking():
    """Masked-out tokens never reach the encoder: changing them does not change the pooled visible embedding."""
    model = _model()
    batch = _batch(model.config)
    with torch.no_grad():
        first = model(**batch).audio_embeds
        out = model(**batch)
        masked_frames = out.mask_audio[0].reshape(model.config.audio_grid_size)  # (freq rows, time cols)
        audio = batch["audio_values"].clone()
        p = model.config.patch_size
        for f, t in masked_frames.nonzero().tolist():
            audio[0, t * p : (t + 1) * p, f * p : (f + 1) * p] = 100.0
        second = model(**{**batch, "audio_values": audio}).audio_embeds
    torch.testing.assert_close(first, second)


# -- losses by hand ---------------------------------------------------------------------------------------------------


def _patches_by_hand(image: np.ndarray, p: int) -> np.ndarray:
    """[C, H, W] -> [(H/p)*(W/p), p*p*C] with (row, col, channel) order inside a patch."""
    c, h, w = image.shape
    out = []
    for r in range(h // p):
        for q in range(w // p):
            block = image[:, r * p : (r + 1) * p, q * p : (q + 1) * p]  # C, p, p
            out.append(block.transpose(1, 2, 0).reshape(-1))
    return np.stack(out)


def _mae_by_hand(pred: np.ndarray, patches: np.ndarray, mask: np.ndarray) -> float:
    total, count = 0.0, 0
    for i in range(pred.shape[0]):
        for j in range(pred.shape[1]):
            if mask[i, j]:
                patch = patches[i, j]
                target = (patch - patch.mean()) / math.sqrt(patch.var(ddof=1) + 1e-6)
                total += float(((pred[i, j] - target) ** 2).mean())
                count += 1
    return total / count


def test_losses_equal_hand_computed_values():
    model = _model().eval()
    config = model.config
    batch = _batch(config)
    with torch.no_grad():
        out = model(**batch)
    p = config.patch_size
    audio = batch["audio_values"].numpy()
    images = batch["pixel_values"].numpy()
    audio_patches = np.stack([_patches_by_hand(a.T[None], p) for a in audio])  # spectrogram as [1, F, T]
    image_patches = np.stack([_patches_by_hand(v, p) for v in images])
    rec_a = _mae_by_hand(out.reconstruction_audio.numpy(), audio_patches, out.mask_audio.numpy())
    rec_v = _mae_by_hand(out.reconstruction_visual.numpy(), image_patches, out.mask_visual.numpy())
    assert out.loss_reconstruction_audio.item() == pytest.approx(rec_a, rel=1e-5)
    assert out.loss_reconstruction_visual.item() == pytest.approx(rec_v, rel=1e-5)

    def unit(x: torch.Tensor) -> np.ndarray:
        x = x.double().numpy()
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    a, v = unit(out.audio_embeds), unit(out.visual_embeds)
    s = a @ v.T / 0.05
    n = s.shape[0]
    # single direction: for each visual column j, softmax over the audio rows i
    nce = -np.mean([s[j, j] - np.log(np.exp(s[:, j]).sum()) for j in range(n)])
    acc = np.mean([np.argmax(s[:, j]) == j for j in range(n)])
    assert out.loss_contrastive.item() == pytest.approx(nce, rel=1e-5)
    assert out.contrastive_accuracy.item() == pytest.approx(acc)

    t = unit(batch["text_embeds"])

    def clip_loss(m: np.ndarray) -> float:
        logits = m @ t.T / config.text_temperature
        rows = -np.mean([logits[i, i] - np.log(np.exp(logits[i]).sum()) for i in range(n)])
        cols = -np.mean([logits[i, i] - np.log(np.exp(logits[:, i]).sum()) for i in range(n)])
        return (rows + cols) / 2

    a2t, v2t = clip_loss(unit(out.audio_text_embeds)), clip_loss(unit(out.visual_text_embeds))
    assert out.loss_audio_text.item() == pytest.approx(a2t, rel=1e-5)
    assert out.loss_visual_text.item() == pytest.approx(v2t, rel=1e-5)
    total = rec_a + rec_v + 0.01 * nce + 0.01 * (a2t + v2t)
    assert out.loss.item() == pytest.approx(total, rel=1e-5)


def test_forward_uses_the_public_loss_functions():
    """What a distributed loop computes on gathered embeddings equals the model's own terms."""
    model = _model(contrastive_bidirectional=True, text_loss_bidirectional=False)
    batch = _batch(model.config)
    with torch.no_grad():
        out = model(**batch)
    loss_c, acc = cavmae_contrastive_loss(out.audio_embeds, out.visual_embeds, 0.05, bidirectional=True)
    assert torch.equal(loss_c, out.loss_contrastive) and torch.equal(acc, out.contrastive_accuracy)
    loss_at, _ = text_info_nce_loss(out.audio_text_embeds, batch["text_embeds"], 0.05, bidirectional=False)
    assert torch.equal(loss_at, out.loss_audio_text)


def test_skipped_terms_are_none_and_weights_apply():
    model = _model(contrastive_weight=0.0, reconstruction_weight=2.0)
    batch = _batch(model.config)
    batch.pop("text_embeds")
    with torch.no_grad():
        out = model(**batch)
    assert out.loss_contrastive is None and out.loss_audio_text is None
    torch.testing.assert_close(
        out.loss, 2.0 * (out.loss_reconstruction_audio + out.loss_reconstruction_visual)
    )
    no_decoder = _model(reconstruction_weight=0.0)
    with torch.no_grad():
        out = no_decoder(**batch)
    assert out.reconstruction_audio is None and out.loss_reconstruction_audio is None
    torch.testing.assert_close(out.loss, 0.01 * out.loss_contrastive)
    with torch.no_grad():
        out = model(**batch, return_loss=False)
    assert out.loss is None and out.reconstruction_visual is not None


def test_learnable_text_temperature_gets_gradients():
    model = _model(text_temperature_learnable=True, text_temperature=0.07)
    assert model.text_temperature.item() == pytest.approx(0.07)
    model(**_batch(model.config)).loss.backward()
    assert model.text_logit_scale.grad is not None and model.text_logit_scale.grad.abs() > 0


# -- gradients, backends, checkpointing -------------------------------------------------------------------------------


def test_gradients_reach_every_trainable_parameter_and_no_frozen_table():
    model = _model().train()
    model(**_batch(model.config)).loss.backward()
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {
        "cav_mae.audio_embeddings.position_embeddings",
        "cav_mae.visual_embeddings.position_embeddings",
        "decoder.audio_position_embeddings",
        "decoder.visual_position_embeddings",
    }
    for name, parameter in model.named_parameters():
        if name in frozen:
            assert parameter.grad is None, name
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_trainable_position_embeddings_flag():
    model = _model(trainable_position_embeddings=True)
    model(**_batch(model.config)).loss.backward()
    assert model.cav_mae.audio_embeddings.position_embeddings.grad is not None
    assert model.decoder.visual_position_embeddings.grad is not None


@pytest.mark.parametrize("cls", [LGCavMaeForPreTraining, LGCavMaeForAudioVisualClassification])
def test_eager_and_sdpa_agree(cls):
    eager = _model(cls, attn_implementation="eager").eval()
    sdpa = _model(cls, attn_implementation="sdpa").eval()
    assert eager.config._attn_implementation == "eager" and sdpa.config._attn_implementation == "sdpa"
    batch = _batch(eager.config)
    if cls is LGCavMaeForAudioVisualClassification:
        batch = {k: batch[k] for k in ("audio_values", "pixel_values")}
    with torch.no_grad():
        first, second = eager(**batch), sdpa(**batch)
    for key, value in first.items():
        torch.testing.assert_close(value, second[key], atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    reference, checkpointed = _model(), _model()
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.cav_mae.shared_layers[0].gradient_checkpointing
    batch = _batch(reference.config)
    reference.train()(**batch).loss.backward()
    checkpointed.train()(**batch).loss.backward()
    for (name, a), (_, b) in zip(reference.named_parameters(), checkpointed.named_parameters()):
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5, msg=name)


# -- features ---------------------------------------------------------------------------------------------------------


def test_features_and_text_aligned_features():
    model = _model().eval()
    batch = _batch(model.config)
    with torch.no_grad():
        audio = model.get_audio_features(batch["audio_values"])
        visual = model.get_visual_features(batch["pixel_values"])
        encoded = model.cav_mae(batch["audio_values"], batch["pixel_values"])
        assert encoded.mask_audio is None  # unmasked feature path
        torch.testing.assert_close(audio, encoded.audio_embeds)
        torch.testing.assert_close(visual, encoded.visual_embeds)
        text_audio = model.get_text_aligned_audio_features(batch["audio_values"])
        torch.testing.assert_close(text_audio, model.audio_text_projection(audio))
    assert text_audio.shape == (4, model.config.text_embed_dim)
    assert model.get_text_aligned_visual_features(batch["pixel_values"]).shape == (
        4,
        model.config.text_embed_dim,
    )
    base = LGCavMaeModel(model.config)
    base.load_state_dict(
        {k.removeprefix("cav_mae."): v for k, v in model.state_dict().items() if k.startswith("cav_mae.")}
    )
    with torch.no_grad():
        torch.testing.assert_close(base.eval().get_audio_features(batch["audio_values"]), audio)


def test_wrong_input_shapes_are_clear_errors():
    model = _model()
    batch = _batch(model.config)
    with pytest.raises(ValueError, match="audio_values must have shape"):
        model(batch["audio_values"].transpose(1, 2), batch["pixel_values"])
    with pytest.raises(ValueError, match="text_embeds must have shape"):
        model(**{**batch, "text_embeds": torch.randn(4, 5)})
    with pytest.raises(ValueError, match="noise must have shape"):
        model(**{**batch, "audio_noise": torch.rand(4, 3)})


def test_config_rejects_impossible_shapes():
    with pytest.raises(Exception, match="multiple of `patch_size`"):
        LGCavMaeConfig(**{**TINY, "audio_length": 60})
    with pytest.raises(Exception, match="divisible by `num_attention_heads`"):
        LGCavMaeConfig(**{**TINY, "num_attention_heads": 3})
    with pytest.raises(Exception, match="classifier_mode"):
        LGCavMaeConfig(**{**TINY, "classifier_mode": "video"})


def test_default_config_is_the_official_one():
    config = LGCavMaeConfig()
    assert (config.audio_grid_size, config.num_audio_patches, config.num_visual_patches) == (
        (8, 64),
        512,
        196,
    )
    assert config.layer_norm_eps == 1e-5 and config.norm_pix_loss and not config.trainable_position_embeddings
    assert (config.contrastive_temperature, config.contrastive_weight, config.contrastive_bidirectional) == (
        0.05,
        0.01,
        False,
    )
    assert config.text_embed_dim == 1024 and config.text_contrastive_weight == 0.01
