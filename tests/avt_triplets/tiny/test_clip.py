"""The tiny transformers CLIP reloads with from_pretrained, tokenises the synthetic captions and embeds frames."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def test_tiny_clip_loads_like_a_real_checkpoint(tmp_path):
    from transformers import AutoProcessor, CLIPModel

    from avt_triplets.tiny import make_tiny_clip
    from avt_triplets.tiny.clip import HIDDEN_SIZE, IMAGE_SIZE, PROJECTION_DIM

    folder = make_tiny_clip(tmp_path / "clip")
    processor = AutoProcessor.from_pretrained(folder)
    model = CLIPModel.from_pretrained(folder).eval()
    assert type(processor).__name__ == "CLIPProcessor"
    captions = ["a circle of colour 3", "a square of colour 12", "a dog barking in the yard"]
    tokens = processor.tokenizer(captions, padding=True, return_tensors="pt")
    assert (tokens["input_ids"] != processor.tokenizer.unk_token_id).all()  # every word is in the vocabulary
    frames = [Image.fromarray(np.full((48, 64, 3), value, np.uint8)) for value in (0, 128, 255)]
    pixels = processor.image_processor(images=frames, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (3, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        pooled = model.vision_model(pixel_values=pixels).pooler_output
        text = model.text_model(**tokens).pooler_output
        image_embeds = model.get_image_features(pixel_values=pixels)
    assert pooled.shape == (3, HIDDEN_SIZE) and text.shape == (3, HIDDEN_SIZE)
    assert getattr(image_embeds, "pooler_output", image_embeds).shape == (3, PROJECTION_DIM)
    # different captions and different frames give different features (the towers are not degenerate)
    assert torch.cdist(text, text)[~torch.eye(3, dtype=torch.bool)].min() > 1e-3
    assert torch.cdist(pooled, pooled)[~torch.eye(3, dtype=torch.bool)].min() > 1e-3
    # the end-of-text state pools the text: the end token is not 2 (the legacy argmax path)
    assert model.config.text_config.eos_token_id == processor.tokenizer.eos_token_id != 2
    other = CLIPModel.from_pretrained(make_tiny_clip(tmp_path / "other", seed=1))
    assert not torch.equal(other.visual_projection.weight, model.visual_projection.weight)
