"""The suite's random-weight BLIP-2 is the published model's shape and loads like a checkpoint would."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

_SPEC = importlib.util.spec_from_file_location(
    "random_models", Path(__file__).resolve().parents[2] / "bench" / "random_models.py"
)
random_models = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(random_models)


def test_full_size_spec_has_the_published_parameter_count():
    from transformers import Blip2Config, Blip2ForConditionalGeneration

    spec = random_models.BLIP2_OPT_2_7B
    config = Blip2Config(
        vision_config=spec["vision"],
        qformer_config=spec["qformer"],
        text_config=spec["text"],
        num_query_tokens=spec["num_query_tokens"],
        image_token_index=spec["image_token_index"],
    )
    with torch.device("meta"):  # shapes only, no memory
        model = Blip2ForConditionalGeneration(config)
    # Salesforce/blip2-opt-2.7b: 3.74 B parameters (ViT-g 0.99 B, Q-Former 0.11 B, OPT-2.7B 2.65 B)
    assert 3.74e9 < sum(p.numel() for p in model.parameters()) < 3.75e9
    assert sum(p.numel() for p in model.vision_model.parameters()) == 985_952_256


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_built_model_has_the_dtypes_from_pretrained_gives(dtype, tmp_path):
    from transformers import AutoModelForImageTextToText

    captioner = random_models.build_blip2_captioner(
        random_models.BLIP2_SMOKE, device="cpu", dtype=dtype, max_new_tokens=3
    )
    captioner.model.save_pretrained(tmp_path)
    loaded = AutoModelForImageTextToText.from_pretrained(tmp_path, dtype=dtype)
    built = {name: p.dtype for name, p in captioner.model.named_parameters()}
    assert built == {name: p.dtype for name, p in loaded.named_parameters()}
    assert (torch.float32 in built.values()) == (dtype != torch.bfloat16)  # fp16 keeps the Q-Former in fp32


def test_captions_have_the_forced_length():
    import numpy as np
    from PIL import Image

    captioner = random_models.build_blip2_captioner(
        random_models.BLIP2_SMOKE, device="cpu", dtype=torch.float32, max_new_tokens=5
    )
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8))
    (caption,) = captioner.caption([image])
    assert len(caption.split()) == 5  # every caption costs max_new_tokens decoding steps
