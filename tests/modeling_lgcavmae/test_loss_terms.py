"""The pretraining objective is a table: each weight is declared once (the loss settings), every term names a declared
weight, and the model's output carries every term's values by name."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG
from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining
from modeling_lgcavmae import losses_lgcavmae as losses
from modeling_lgcavmae.loss_settings_lgcavmae import LOSS_SETTINGS


def test_every_loss_setting_is_a_config_field_with_that_default():
    fields = {f.name: f for f in dataclasses.fields(LGCavMaeConfig)}
    for setting in LOSS_SETTINGS:
        assert setting.name in fields, setting.name
        assert fields[setting.name].default == setting.default
        assert getattr(LGCavMaeConfig(), setting.name) == setting.default


def test_every_term_is_weighted_by_a_declared_setting_and_reports_distinct_values():
    names = {setting.name for setting in LOSS_SETTINGS}
    assert {term.weight for term in losses.LOSS_TERMS} <= names
    outputs = losses.loss_term_outputs()
    assert len(outputs) == len(set(outputs)) and "loss" not in outputs


@pytest.mark.parametrize("setting", [s for s in LOSS_SETTINGS if s.positive], ids=lambda s: s.name)
def test_a_temperature_that_is_not_positive_is_refused_by_the_config(setting):
    with pytest.raises(StrictDataclassClassValidationError, match=setting.name):
        LGCavMaeConfig(**{setting.name: 0.0})


def test_the_output_carries_every_computed_term_under_its_table_name():
    torch.manual_seed(0)
    config = LGCavMaeConfig(**{**MICRO_LGCAVMAE_CONFIG, "text_embed_dim": 8})
    model = LGCavMaeForPreTraining(config).eval()
    batch = {
        "audio_values": torch.randn(3, config.audio_length, config.num_mel_bins),
        "pixel_values": torch.randn(3, 3, config.image_size, config.image_size),
        "text_embeds": torch.randn(3, 8),
    }
    with torch.no_grad():
        out = model(**batch)
    assert set(losses.loss_term_outputs()) <= set(out.keys())
    weighted = [
        getattr(config, term.weight) * sum(out[name] for name in term.losses) for term in losses.LOSS_TERMS
    ]
    torch.testing.assert_close(out.loss, sum(weighted), rtol=1e-6, atol=0)
