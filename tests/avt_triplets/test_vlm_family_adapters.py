"""What each of today's VLM family adapters does differently (avt_triplets/captioner_adapters/: Gemma 3, PaliGemma,
LLaVA-OneVision, InternVL, Qwen3-VL), checked on the tiny models of avt_triplets/tiny/vlm_families.py."""

from __future__ import annotations

import pytest

from avt_triplets.captioner_adapters import adapter_for

# model_type -> (adapter name, the attribute path of its vision tower)
FAMILIES = {
    "gemma3": ("gemma3", "model.vision_tower"),
    "paligemma": ("paligemma", "model.vision_tower"),
    "llava_onevision": ("llava-onevision", "model.vision_tower"),
    "internvl": ("internvl", "model.vision_tower"),
    "qwen3_vl": ("qwen3-vl", "model.visual"),
}


def test_every_family_is_in_the_adapter_table():
    assert {model_type: adapter_for(model_type).name for model_type in FAMILIES} == {
        model_type: name for model_type, (name, _) in FAMILIES.items()
    }
    assert adapter_for("qwen3_vl_moe").name == "qwen3-vl"


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_the_input_dtype_is_the_vision_towers(model_type, tiny_vlm):
    """The tower in bfloat16 and the rest in float32 (as BLIP-2 keeps its Q-Former): pixels go in as bfloat16, and
    that dtype is what the manifest records."""
    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_vlm(model_type))
    model.get_submodule(FAMILIES[model_type][1]).to(torch.bfloat16)
    assert adapter_for(model_type).vision_dtype(model) == torch.bfloat16
    assert model.get_input_embeddings().weight.dtype == torch.float32


@pytest.fixture(scope="module")
def gemma3(tiny_vlm):
    from avt_triplets.captioners import load_captioner

    return load_captioner(tiny_vlm("gemma3"), device="cpu", max_new_tokens=4)


def test_gemma3_prompts_start_with_one_bos(gemma3):
    """Gemma 3's template writes <bos> and its tokenizer adds one: rendered without the template's, the ids are
    those of apply_chat_template(tokenize=True), with a single <bos>."""
    from PIL import Image

    from avt_triplets.captioners import processor_inputs

    processor, bos_id = gemma3.processor, gemma3.processor.tokenizer.bos_token_id
    frame = Image.new("RGB", (298, 224), (200, 30, 30))
    ours = processor_inputs(processor, [frame], gemma3._prompt_text)
    turn = [{"type": "image", "image": frame}, {"type": "text", "text": gemma3.prompt}]
    documented = processor.apply_chat_template(
        [{"role": "user", "content": turn}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    assert ours["input_ids"].tolist() == documented["input_ids"].tolist()
    assert ours["input_ids"][0].tolist().count(bos_id) == 1 and ours["input_ids"][0, 0] == bos_id
    assert ours["token_type_ids"].tolist() == documented["token_type_ids"].tolist()
    assert ours["token_type_ids"].sum() == processor.image_seq_length  # the image tokens, marked


def test_gemma3_captions_a_batch_of_frames_one_image_per_prompt(gemma3):
    """Its processor reads a flat list of images as one prompt's images; each frame is its own prompt."""
    from PIL import Image

    frames = [Image.new("RGB", (298, 224), (200, 30, 30)), Image.new("RGB", (398, 224), (20, 90, 200))]
    assert len(gemma3.caption(frames)) == 2


@pytest.mark.parametrize("prompt, rendered", [(None, "<image>caption en"), ("<image>caption es", None)])
def test_paligemma_prompts_are_task_prefixes_after_the_image(prompt, rendered, tiny_vlm):
    from PIL import Image

    from avt_triplets.captioners import load_captioner, processor_inputs

    captioner = load_captioner(tiny_vlm("paligemma"), device="cpu", prompt=prompt, max_new_tokens=4)
    assert captioner.prompt == (prompt or "caption en")
    assert captioner._prompt_text == (rendered or prompt)
    assert captioner.input_plan().layout == "fixed"  # its training labels dropped, nothing varies by image
    inputs = processor_inputs(
        captioner.processor,
        [Image.new("RGB", (64, 48))],
        captioner._prompt_text,
        captioner.adapter.unused_keys,
    )
    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids", "pixel_values"}


@pytest.mark.parametrize(
    "model_type, native",
    [("gemma3", 32), ("paligemma", 32), ("llava_onevision", 32), ("internvl", 32), ("qwen3_vl", None)],
)
def test_native_caption_image_size_is_the_processors_tile(model_type, native, tiny_vlm):
    """`--caption-image-size native`: the side the image processor resizes to (one 32 px tile here; 896 for
    Gemma 3, 224 for PaliGemma-224, 384 for LLaVA-OneVision, 448 for InternVL3); Qwen3-VL takes frames at any size
    (its min/max_pixels bound the area), so its frames go in as decoded."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_vlm(model_type))
    assert adapter_for(model_type).native_image_size(processor) == native


def test_native_size_reads_the_size_objects_of_transformers_5_image_processors(tiny_llava):
    """transformers 5 keeps an image processor's ``size`` as a ``SizeDict`` (attributes, not a dict): read as a
    dict only, every fixed-size family (LLaVA-1.5 here) had no native size and `native` meant the video's size."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_llava)
    assert not isinstance(processor.image_processor.size, dict)
    assert adapter_for("llava").native_image_size(processor) == 32
