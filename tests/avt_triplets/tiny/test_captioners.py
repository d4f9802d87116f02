"""The tiny captioners load through the same path as the real checkpoints and caption PIL images."""

from __future__ import annotations

import numpy as np
import pytest

from avt_triplets.tiny._text import CAPTION_CORPUS

VOCABULARY = {word for sentence in CAPTION_CORPUS for word in sentence.split()}


def _images():
    from PIL import Image

    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8))
    red = Image.new("RGB", (90, 60), (230, 40, 40))
    return [noisy, red]


def _assert_captions(captions: list[str], expected: int) -> None:
    assert len(captions) == expected
    for caption in captions:
        words = caption.split()
        assert words, f"empty caption in {captions}"
        assert set(words) <= VOCABULARY, caption


@pytest.fixture(scope="module")
def blip2(tiny_blip2):
    from transformers import AutoModelForImageTextToText, AutoProcessor, Blip2ForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_blip2)
    model = AutoModelForImageTextToText.from_pretrained(tiny_blip2)
    assert isinstance(model, Blip2ForConditionalGeneration)
    return processor, model


@pytest.fixture(scope="module")
def llava(tiny_llava):
    from transformers import AutoModelForImageTextToText, AutoProcessor, LlavaForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_llava)
    model = AutoModelForImageTextToText.from_pretrained(tiny_llava)
    assert isinstance(model, LlavaForConditionalGeneration)
    return processor, model


def test_blip2_mirrors_the_real_layout(blip2):
    processor, model = blip2
    assert type(processor).__name__ == "Blip2Processor"
    assert processor.num_query_tokens == model.config.num_query_tokens
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_index
    assert model.config.text_config.model_type == "opt"
    assert model.config.text_config.vocab_size >= len(processor.tokenizer)


def test_blip2_captions_images_without_and_with_a_prompt(blip2):
    processor, model = blip2
    images = _images()
    inputs = processor(images=images, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=6)
    _assert_captions(processor.batch_decode(out, skip_special_tokens=True), len(images))

    inputs = processor(images=images, text=["a photo of"] * len(images), return_tensors="pt")
    image_tokens = (inputs["input_ids"] == model.config.image_token_index).sum(dim=1)
    assert image_tokens.tolist() == [model.config.num_query_tokens] * len(images)
    out = model.generate(**inputs, max_new_tokens=6)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 6  # special tokens silenced: never stops early
    _assert_captions(processor.batch_decode(out, skip_special_tokens=True), len(images))


def test_llava_mirrors_the_real_layout(llava):
    processor, model = llava
    assert type(processor).__name__ == "LlavaProcessor"
    assert processor.num_additional_image_tokens == 1
    assert (
        processor.vision_feature_select_strategy == model.config.vision_feature_select_strategy == "default"
    )
    assert processor.image_token_id == model.config.image_token_index
    assert processor.tokenizer.padding_side == "left"
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}],
        add_generation_prompt=True,
    )
    assert prompt == "USER: <image>\nDescribe the image. ASSISTANT:"


def test_llava_captions_a_batch_with_the_chat_template(llava):
    processor, model = llava
    images = _images()
    prompts = [
        processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}],
            add_generation_prompt=True,
        )
        for text in ("Describe the image.", "What is in this picture, in one short sentence?")
    ]
    inputs = processor(images=images, text=prompts, padding=True, return_tensors="pt")
    image_tokens = (inputs["input_ids"] == model.config.image_token_index).sum(dim=1)
    assert image_tokens.tolist() == [model.config.image_seq_length] * len(images)
    out = model.generate(**inputs, max_new_tokens=6)
    new_tokens = out[:, inputs["input_ids"].shape[1] :]
    _assert_captions(processor.batch_decode(new_tokens, skip_special_tokens=True), len(images))
