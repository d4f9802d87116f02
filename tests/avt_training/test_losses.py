"""One owner of the contrastive terms: the loop's loss object and the model's own forward compute the same total
from the same choices, and the loop's forward leaves the contrastive terms (and the total) to the loss object."""

from __future__ import annotations

import torch

from avt_training.losses import PretrainingLoss
from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG
from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining


def _model_and_batch(**overrides):
    torch.manual_seed(0)
    config = LGCavMaeConfig(**{**MICRO_LGCAVMAE_CONFIG, "text_embed_dim": 8, **overrides})
    batch = {
        "audio_values": torch.randn(4, config.audio_length, config.num_mel_bins),
        "pixel_values": torch.randn(4, 3, config.image_size, config.image_size),
        "text_embeds": torch.randn(4, 8),
        "audio_noise": torch.rand(4, config.num_audio_patches),
        "visual_noise": torch.rand(4, config.num_visual_patches),
    }
    return LGCavMaeForPreTraining(config).eval(), batch


def test_loss_object_equals_the_models_own_loss_on_one_process():
    model, batch = _model_and_batch(contrastive_weight=0.5, text_contrastive_weight=0.25)
    with torch.no_grad():
        full = model(**batch)
        partial = model(**batch, return_contrastive_loss=False)
    assert partial.loss is None and partial.loss_contrastive is None and partial.loss_audio_text is None
    assert torch.equal(partial.loss_reconstruction_audio, full.loss_reconstruction_audio)
    loss, logs = PretrainingLoss(model.config, "global")(
        partial, batch["text_embeds"], model.text_temperature
    )
    assert torch.equal(loss, full.loss)
    assert torch.equal(logs["loss_contrastive"], full.loss_contrastive)
    assert torch.equal(logs["visual_text_accuracy"], full.visual_text_accuracy)
    assert set(logs) == {
        "loss", "loss_reconstruction_audio", "loss_reconstruction_visual", "loss_contrastive", "contrastive_accuracy",
        "loss_audio_text", "loss_visual_text", "audio_text_accuracy", "visual_text_accuracy",
    }  # fmt: skip


def test_zero_weight_terms_are_skipped_alike():
    model, batch = _model_and_batch(contrastive_weight=0.0)
    batch.pop("text_embeds")
    with torch.no_grad():
        full = model(**batch)
        loss, logs = PretrainingLoss(model.config)(model(**batch, return_contrastive_loss=False))
    assert full.loss_contrastive is None and "loss_contrastive" not in logs and "loss_audio_text" not in logs
    assert torch.equal(loss, full.loss)
