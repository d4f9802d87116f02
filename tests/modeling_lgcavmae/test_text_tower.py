"""Optional frozen text tower: raw captions -> text embeddings for users without cached ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoTokenizer, ClapModel

from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG
from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")

TINY = MICRO_LGCAVMAE_CONFIG


def test_encode_text_uses_the_frozen_tower_and_is_never_saved(tiny_clap, tmp_path):
    text_dim = AutoConfig.from_pretrained(tiny_clap).projection_dim
    model = LGCavMaeForPreTraining(
        LGCavMaeConfig(**TINY, text_embed_dim=text_dim, text_model_name_or_path=str(tiny_clap))
    )
    captions = ["a dog barks in a park", "someone plays the piano", "rain on a roof"]
    embeds = model.encode_text(captions, batch_size=2)
    assert embeds.shape == (3, text_dim)
    torch.testing.assert_close(embeds.norm(dim=-1), torch.ones(3))

    clap = ClapModel.from_pretrained(tiny_clap).eval()
    tokens = AutoTokenizer.from_pretrained(tiny_clap)(captions, padding=True, return_tensors="pt")
    with torch.no_grad():
        features = clap.get_text_features(**tokens)
    features = features if isinstance(features, torch.Tensor) else features.pooler_output
    torch.testing.assert_close(embeds, F.normalize(features, dim=-1), atol=1e-5, rtol=1e-5)

    assert not any("clap" in name or "text_model" in name for name in model.state_dict())
    generator = torch.Generator().manual_seed(0)
    out = model(
        torch.randn(3, 64, 32, generator=generator),
        torch.randn(3, 3, 32, 32, generator=generator),
        text_embeds=embeds,
    )
    assert torch.isfinite(out.loss_audio_text)


def test_encode_text_without_a_tower_is_a_clear_error():
    model = LGCavMaeForPreTraining(LGCavMaeConfig(**TINY, text_embed_dim=8))
    with pytest.raises(ValueError, match="text_model_name_or_path"):
        model.encode_text(["hello"])
