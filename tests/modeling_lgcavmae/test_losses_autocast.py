"""The loss functions promise float32 logits even inside a bf16 autocast region."""

import pytest
import torch

from modeling_lgcavmae import cavmae_contrastive_loss, text_info_nce_loss

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")


def test_contrastive_losses_ignore_bf16_autocast():
    generator = torch.Generator().manual_seed(0)
    audio, visual = torch.randn(2, 16, 64, generator=generator)
    reference = (cavmae_contrastive_loss(audio, visual)[0], text_info_nce_loss(audio, visual)[0])
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        under_autocast = (cavmae_contrastive_loss(audio, visual)[0], text_info_nce_loss(audio, visual)[0])
    for expected, got in zip(reference, under_autocast):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
