"""The transformers captioner on the tiny BLIP-2 and LLaVA-1.5: greedy, batch-invariant, prompt stripped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avt_core.errors import UsageError
from avt_triplets.captioners import DEFAULT_CHAT_PROMPT, Captioner, load_captioner


def _frames() -> list[Image.Image]:
    """Three different frames (sizes differ too: the processor resizes)."""
    rng = np.random.default_rng(0)
    solid = Image.new("RGB", (64, 48), (200, 30, 30))
    noise = Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 50, dtype=np.uint8)[:, None, None], (1, 70, 3)))
    return [solid, noise, gradient.convert("L")]  # a greyscale frame is converted to RGB


@pytest.fixture(scope="module")
def blip2(tiny_blip2: Path):
    return load_captioner(str(tiny_blip2), device="cpu")


@pytest.fixture(scope="module")
def llava(tiny_llava: Path):
    return load_captioner(str(tiny_llava), device="cpu")


def _reference_captions(captioner, images, text: str | None) -> list[str]:
    """generate() by hand: greedy, cut the prompt tokens, decode without special tokens."""
    kwargs = {"images": [im.convert("RGB") for im in images], "return_tensors": "pt"}
    if text is not None:
        kwargs.update(text=[text] * len(images), padding=True)
    inputs = captioner.processor(**kwargs)
    with torch.no_grad():
        out = captioner.model.generate(
            **inputs, do_sample=False, num_beams=1, max_new_tokens=captioner.max_new_tokens
        )
    if "input_ids" in inputs:
        out = out[:, inputs["input_ids"].shape[1] :]
    return [" ".join(t.split()) for t in captioner.processor.batch_decode(out, skip_special_tokens=True)]


@pytest.mark.parametrize("which", ["blip2", "llava"])
def test_batch_captions_are_deterministic_and_batch_invariant(which, request):
    captioner = request.getfixturevalue(which)
    frames = _frames()
    first = captioner.caption(frames)
    assert isinstance(captioner, Captioner)
    assert len(first) == 3 and all(isinstance(c, str) and c for c in first)
    assert all(c == c.strip() and "\n" not in c for c in first)
    assert captioner.caption(frames) == first
    assert [captioner.caption([frame])[0] for frame in frames] == first
    assert captioner.caption([]) == []


def test_blip2_defaults(blip2, tiny_blip2: Path):
    assert blip2.prompt is None  # plain captioning
    assert blip2.name == str(tiny_blip2) and blip2.revision is None
    assert blip2.model.dtype == torch.float32  # CPU default
    assert blip2.processor.tokenizer.padding_side == "left"
    frames = _frames()
    assert blip2.caption(frames) == _reference_captions(blip2, frames, None)


def test_blip2_prompt_is_cut_from_the_caption(tiny_blip2: Path):
    prompt = "a photo of"
    captioner = load_captioner(str(tiny_blip2), prompt=prompt, device="cpu", max_new_tokens=5)
    frames = _frames()
    captions = captioner.caption(frames)
    assert captioner.prompt == prompt
    assert captions == _reference_captions(captioner, frames, prompt)
    assert all(len(c.split()) <= 5 for c in captions)  # only the new tokens, never the 3 prompt words too


def test_llava_uses_the_chat_template_and_strips_it(llava):
    assert llava.prompt == DEFAULT_CHAT_PROMPT
    conversation = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": DEFAULT_CHAT_PROMPT}]}
    ]
    text = llava.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    assert "<image>" in text and text.rstrip().endswith("ASSISTANT:")
    frames = _frames()
    captions = llava.caption(frames)
    assert captions == _reference_captions(llava, frames, text)
    assert not any("assistant" in c.lower() or "user:" in c.lower() for c in captions)


def test_custom_chat_prompt_and_dtype(tiny_llava: Path):
    captioner = load_captioner(
        str(tiny_llava), prompt="What sound could this make?", dtype="bfloat16", device="cpu"
    )
    assert captioner.prompt == "What sound could this make?"
    assert captioner.model.dtype == torch.bfloat16
    assert len(captioner.caption(_frames()[:2])) == 2


def test_unknown_dtype_is_a_clear_error(tiny_blip2: Path):
    with pytest.raises(UsageError, match="unknown dtype"):
        load_captioner(str(tiny_blip2), dtype="float99")
