"""A tiny LG-CAV-MAE overfits a batch of 8 synthetic clips: the full training signal is wired end to end."""

from __future__ import annotations

import math

import pytest
import torch

from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")


def _synthetic_clips(n: int, config: LGCavMaeConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per clip: a spectrogram of distinct sinusoidal ripples, an image of distinct colour gratings, a caption
    embedding."""
    time = torch.linspace(0, 1, config.audio_length)[:, None]
    freq = torch.linspace(0, 1, config.num_mel_bins)[None, :]
    audio = torch.stack(
        [torch.sin(2 * math.pi * (2 * (i + 1) * time + 3 * (i % 3) * freq)) for i in range(n)]
    )
    y = torch.linspace(0, 1, config.image_size)[:, None]
    x = torch.linspace(0, 1, config.image_size)[None, :]
    images = torch.stack(
        [torch.stack([torch.cos(2 * math.pi * ((i + 1) * x + c * y)) for c in range(3)]) for i in range(n)]
    )
    text = torch.randn(n, config.text_embed_dim, generator=torch.Generator().manual_seed(1))
    return audio, images, text


def test_tiny_model_overfits_eight_clips():
    torch.manual_seed(0)
    config = LGCavMaeConfig(
        audio_length=64,
        num_mel_bins=32,
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        num_modality_specific_layers=1,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
        text_embed_dim=16,
        text_projection_hidden_size=32,
    )
    model = LGCavMaeForPreTraining(config).train()
    audio, images, text = _synthetic_clips(8, config)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    losses = []
    for _ in range(200):  # fresh random masks every step, as in real pretraining
        output = model(audio, images, text_embeds=text)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.loss.item())
    assert sum(losses[-10:]) / 10 < 0.5 * losses[0]
    chance = math.log(8)  # InfoNCE of an untrained model on 8 clips
    assert output.loss_contrastive.item() < chance / 2 and output.loss_audio_text.item() < chance / 4
