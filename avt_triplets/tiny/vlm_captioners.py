"""Tiny random-weight Qwen2.5-VL and SmolVLM (Idefics3) captioners, saved like their Hub checkpoints.

Each folder holds what ``Qwen/Qwen2.5-VL-3B-Instruct`` / ``HuggingFaceTB/SmolVLM-256M-Instruct`` hold: config
(the real config classes), safetensors weights, generation config, tokenizer with the family's special tokens,
the real image processor and processor classes and a chat template in the family's format, so
``AutoProcessor`` + ``AutoModelForImageTextToText`` load them as they load the real ones. Images are tiny
(Qwen: 28 px merge units, at most 16 of them; SmolVLM: 32 px tiles) so a caption costs milliseconds on a CPU.
Special tokens are silenced as in :mod:`avt_triplets.tiny.captioners`, so captions are words, never empty.
"""

from __future__ import annotations

from pathlib import Path

from avt_triplets.tiny._text import train_word_tokenizer
from avt_triplets.tiny.captioners import INIT_STD, TINY_TEXT, save_tiny

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<unk>",  # the word-level test tokenizer needs one; Qwen's byte-level BPE has none
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Qwen2.5-VL's template, reduced to what a user turn of one image or one video uses
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_MIN_PIXELS, QWEN_MAX_PIXELS = 28 * 28 * 4, 28 * 28 * 16

SMOLVLM_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<unk>",
    "<fake_token_around_image>",
    "<image>",
    "<end_of_utterance>",
    "<global-img>",
] + [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
# SmolVLM-256M-Instruct's template
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
SMOLVLM_TILE, SMOLVLM_PATCH = 32, 8


def _tokenizer(specials: list[str], **tokens: str):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=train_word_tokenizer(specials),
        unk_token="<unk>",
        padding_side="left",
        model_max_length=1024,
        **tokens,
    )


def _small_text(tokenizer, **ids: int | None) -> dict:
    return dict(vocab_size=len(tokenizer), **TINY_TEXT, max_position_embeddings=1024, **ids)


def make_tiny_qwen2_5_vl(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2.5-VL (windowed ViT with 2x2 patch merging + Qwen2 text model, M-RoPE) with its
    Qwen2_5_VLProcessor (Qwen2VL image and video processors) to ``output_dir``."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = _tokenizer(QWEN_SPECIAL_TOKENS, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    pixels = dict(min_pixels=QWEN_MIN_PIXELS, max_pixels=QWEN_MAX_PIXELS, patch_size=14, merge_size=2)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels, temporal_patch_size=2),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**pixels, temporal_patch_size=2),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    ids = tokenizer.convert_tokens_to_ids
    text = _small_text(
        tokenizer, bos_token_id=None, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>")
    )
    text["rope_parameters"] = {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0}
    vision = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=4,
        out_hidden_size=32,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=56,
        fullatt_block_indexes=[1],
        initializer_range=INIT_STD,
    )
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    model_class = Qwen2_5_VLForConditionalGeneration
    return save_tiny(model_class, config, tokenizer, processor, Path(output_dir), seed, config.image_token_id)


def make_tiny_smolvlm(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny SmolVLM as ``SmolVLM-256M-Instruct`` is saved: an Idefics3 model (SigLIP-style tower, pixel
    shuffle, Llama text model) with its Idefics3Processor, image splitting on, to ``output_dir``."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    tokenizer = _tokenizer(
        SMOLVLM_SPECIAL_TOKENS,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
    )
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": 2 * SMOLVLM_TILE},
        max_image_size={"longest_edge": SMOLVLM_TILE},
        do_image_splitting=True,
    )
    scale_factor = 2
    image_seq_len = (SMOLVLM_TILE // SMOLVLM_PATCH) ** 2 // scale_factor**2
    processor = Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=image_seq_len,
        chat_template=SMOLVLM_CHAT_TEMPLATE,
    )
    ids = tokenizer.convert_tokens_to_ids
    text = _small_text(
        tokenizer,
        bos_token_id=ids("<|im_start|>"),
        eos_token_id=ids("<end_of_utterance>"),
        pad_token_id=ids("<|endoftext|>"),
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=SMOLVLM_TILE,
        patch_size=SMOLVLM_PATCH,
        initializer_range=INIT_STD,
    )
    config = Idefics3Config(
        text_config={"model_type": "llama", **text},
        vision_config=vision,
        image_token_id=ids("<image>"),
        scale_factor=scale_factor,
        pad_token_id=ids("<|endoftext|>"),
    )
    model_class = Idefics3ForConditionalGeneration
    return save_tiny(model_class, config, tokenizer, processor, Path(output_dir), seed, config.image_token_id)
