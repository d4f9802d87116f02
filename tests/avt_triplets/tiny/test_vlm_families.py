"""The tiny VLM-family captioners (avt_triplets/tiny/vlm_families.py) load through the product's loading path as
their real checkpoints do, keep what makes each family's inputs its own, and caption in readable words that depend
on the image."""

from __future__ import annotations

import numpy as np
import pytest

from avt_triplets.tiny._text import CAPTION_CORPUS

VOCABULARY = {word for sentence in CAPTION_CORPUS for word in sentence.split()}
PROMPT = "Describe this image in one short sentence."

# model_type -> (model class, processor class, input keys besides input_ids / attention_mask / pixel_values)
FAMILIES = {
    "gemma3": ("Gemma3ForConditionalGeneration", "Gemma3Processor", {"token_type_ids"}),
    "paligemma": ("PaliGemmaForConditionalGeneration", "PaliGemmaProcessor", {"token_type_ids", "labels"}),
    "llava_onevision": (
        "LlavaOnevisionForConditionalGeneration",
        "LlavaOnevisionProcessor",
        {"image_sizes", "batch_num_images"},
    ),
    "internvl": ("InternVLForConditionalGeneration", "InternVLProcessor", set()),
    "qwen3_vl": (
        "Qwen3VLForConditionalGeneration",
        "Qwen3VLProcessor",
        {"image_grid_thw", "mm_token_type_ids"},
    ),
}


def _frames():
    """Two frames as the decoder hands them over (short side 224), of different shapes and content."""
    from PIL import Image

    noisy = np.random.default_rng(0).integers(0, 256, size=(224, 298, 3), dtype=np.uint8)
    return [Image.fromarray(noisy), Image.new("RGB", (224, 398), (20, 90, 200))]


def _prompt(processor) -> str:
    if processor.chat_template is None:  # PaliGemma: a task prefix after the image
        return "<image>caption en"
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    return processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_a_tiny_family_model_loads_and_captions_like_its_checkpoints(model_type, tiny_vlm):
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    model_class, processor_class, extra_keys = FAMILIES[model_type]
    folder = tiny_vlm(model_type)
    assert AutoConfig.from_pretrained(folder).model_type == model_type
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder)
    assert (type(model).__name__, type(processor).__name__) == (model_class, processor_class)
    assert processor.tokenizer.padding_side == "left"

    captions, shapes = [], []
    for frame in _frames():
        inputs = processor(images=[frame], text=[_prompt(processor)], return_tensors="pt")
        assert set(inputs) == {"input_ids", "attention_mask", "pixel_values"} | extra_keys
        shapes.append((tuple(inputs["input_ids"].shape), tuple(inputs["pixel_values"].shape)))
        generated = model.generate(**inputs, do_sample=False, max_new_tokens=6)
        assert (
            generated.shape[1] == inputs["input_ids"].shape[1] + 6
        )  # special tokens silenced: never stops early
        captions.append(
            processor.batch_decode(generated[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]
        )
    assert all(caption.split() and set(caption.split()) <= VOCABULARY for caption in captions), captions
    assert captions[0] != captions[1]  # the image reaches the caption
    if model_type in {"llava_onevision", "internvl", "qwen3_vl"}:  # inputs sized by the frame's shape
        assert shapes[0] != shapes[1]
    else:
        assert shapes[0] == shapes[1]
