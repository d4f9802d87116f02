"""Tiny random-weight captioners of today's VLM families, saved like their Hub checkpoints.

Gemma 3 (``google/gemma-3-4b-it``), PaliGemma (``google/paligemma-3b-mix-224``), LLaVA-OneVision
(``llava-hf/llava-onevision-qwen2-0.5b-ov-hf``), InternVL (``OpenGVLab/InternVL3-1B-hf``) and Qwen3-VL
(``Qwen/Qwen3-VL-2B-Instruct``): each folder holds the family's real config class, weights, generation config and
real processor class (image processor, video processor where the family has one, tokenizer with the family's
special tokens as named tokenizer attributes, chat template in the family's turn format), so the product's
loading code (``AutoProcessor`` + ``AutoModelForImageTextToText``) is what loads them. Hidden size 32, two
layers, 32 px tiles, so a caption costs milliseconds on a CPU.

What makes each family's inputs its own is kept: Gemma 3's ``token_type_ids`` and begin/end-of-image tokens,
PaliGemma's ``<image>``-prefix prompt (no chat template), ``<loc>``/``<seg>`` tokens and ``token_type_ids``,
LLaVA-OneVision's any-resolution patches with ``image_sizes``, InternVL's variable tile count per image, Qwen3-VL's
dynamic-resolution patch rows with ``image_grid_thw``. As in :mod:`avt_triplets.tiny.captioners`, the output rows of
every special or added token are zeroed, so greedy decoding emits readable words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avt_triplets.tiny._text import train_word_tokenizer
from avt_triplets.tiny.captioners import INIT_STD, TINY_TEXT, save_silenced

TILE = 32  # image / tile side in pixels
PATCH = 8  # vision patch side: (32 / 8) ** 2 = 16 patches per tile

_TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
_TEXT = {**TINY_TEXT, "max_position_embeddings": 256}

# ChatML (Qwen, InternVL, LLaVA-OneVision-Qwen2) with the family's image placeholder, as their templates write it
_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}IMAGE"
    "{% elif item['type'] == 'video' %}VIDEO{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] | trim }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def chatml_template(image: str, video: str) -> str:
    """A ChatML template writing ``image`` / ``video`` for an image / video item of a user turn."""
    return _CHATML.replace("IMAGE", image).replace("VIDEO", video)


def _tokenizer(specials: list[str], added: list[str], named: dict[str, str], **tokens: str):
    """A word-level fast tokenizer: ``specials`` first (ids 0..), then the ``added`` special tokens; ``named``
    are the attributes a family's processor reads (``image_token``, ``boi_token``, ...)."""
    from transformers import PreTrainedTokenizerFast

    raw = train_word_tokenizer(specials, bos_token=tokens.get("bos_token"))
    raw.add_special_tokens(added)
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        padding_side="left",
        model_max_length=256,
        extra_special_tokens=named,
        **tokens,
    )


def _chatml_tokenizer(added: list[str], named: dict[str, str]):
    """Qwen2-style special tokens (``<|endoftext|>`` pads, ``<|im_end|>`` ends a turn; no BOS)."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]
    return _tokenizer(
        specials, added, named, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="<unk>"
    )


def _silenced_ids(tokenizer) -> list[int]:
    """Every special or added token (image placeholders, PaliGemma's ``<loc>`` / ``<seg>`` tokens)."""
    return sorted(set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder))


def _save(
    model_class, config, tokenizer, processor, output_dir: Path, seed: int, zero_init: tuple = ()
) -> Path:
    """:func:`~avt_triplets.tiny.captioners.save_silenced` with every special or added token silenced."""
    silenced = _silenced_ids(tokenizer)
    return save_silenced(model_class, config, tokenizer, processor, output_dir, seed, silenced, zero_init)


def _siglip(**extra: Any) -> dict:
    from transformers import SiglipVisionConfig

    return SiglipVisionConfig(**_TOWER, image_size=TILE, patch_size=PATCH, **extra).to_dict()


def make_tiny_gemma3(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Gemma 3 (SigLIP + pooled projector + Gemma 3 text) with its Gemma3Processor.

    Mirrors gemma-3-4b-it: ``<pad>=0, <eos>=1, <bos>=2``, the image written as ``<start_of_image>`` and
    expanded by the processor to ``\\n\\n<start_of_image>`` + ``mm_tokens_per_image`` × ``<image_soft_token>``
    + ``<end_of_image>\\n\\n``, ``token_type_ids`` marking image tokens, ``<start_of_turn>user`` turns.
    """
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor, Gemma3TextConfig
    from transformers.models.gemma3 import Gemma3ImageProcessor

    turns = ["<start_of_turn>", "<end_of_turn>"]
    image_tokens = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>"}
    image_tokens["image_token"] = "<image_soft_token>"
    tokenizer = _tokenizer(
        ["<pad>", "<eos>", "<bos>", "<unk>"],
        [*turns, *image_tokens.values()],
        image_tokens,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    tokens_per_image = 16  # 4 × 4 patches, one token each (pooled 1 × 1)
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": TILE, "width": TILE}),
        tokenizer=tokenizer,
        chat_template=GEMMA3_CHAT_TEMPLATE,
        image_seq_length=tokens_per_image,
    )
    text = Gemma3TextConfig(
        **{**_TEXT, "num_key_value_heads": 1},
        vocab_size=len(tokenizer),
        head_dim=8,
        query_pre_attn_scalar=8,
        sliding_window=64,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = Gemma3Config(
        text_config=text.to_dict(),
        vision_config=_siglip(),
        mm_tokens_per_image=tokens_per_image,
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=tokenizer.eoi_token_id,
        image_token_index=tokenizer.image_token_id,
        initializer_range=INIT_STD,
        tie_word_embeddings=False,  # tied, the tiny model repeats its last token whatever the image
    )
    projection = ("model.multi_modal_projector.mm_input_projection_weight",)
    return _save(
        Gemma3ForConditionalGeneration, config, tokenizer, processor, Path(output_dir), seed, projection
    )


def make_tiny_paligemma(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny PaliGemma (SigLIP + linear projector + Gemma) with its PaliGemmaProcessor.

    Mirrors paligemma-3b-mix-224: no chat template; the processor writes ``image_seq_length`` × ``<image>`` +
    ``<bos>`` + prompt + ``\\n`` (prefix-LM: ``token_type_ids`` mark the prefix) and adds the 1024 ``<loc>`` and
    128 ``<seg>`` tokens; the image processor is SigLIP's with ``image_seq_length``.
    """
    from transformers import (
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
    )
    from transformers.models.siglip import SiglipImageProcessor

    tokenizer = _tokenizer(
        ["<pad>", "<eos>", "<bos>", "<unk>"],
        ["<image>"],
        {"image_token": "<image>"},
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    image_processor = SiglipImageProcessor(
        size={"height": TILE, "width": TILE}, image_seq_length=(TILE // PATCH) ** 2
    )
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)  # adds <loc>, <seg>
    text = GemmaConfig(
        **{**_TEXT, "num_key_value_heads": 1},
        vocab_size=len(tokenizer),
        head_dim=8,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = PaliGemmaConfig(
        text_config=text.to_dict(),
        vision_config=_siglip(),
        image_token_index=tokenizer.image_token_id,
        projection_dim=32,
        hidden_size=32,
        vocab_size=len(tokenizer),
        tie_word_embeddings=False,  # tied, the tiny model repeats its last token whatever the image
    )
    return _save(PaliGemmaForConditionalGeneration, config, tokenizer, processor, Path(output_dir), seed)


def make_tiny_llava_onevision(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny LLaVA-OneVision (SigLIP + MLP projector + Qwen2) with its LlavaOnevisionProcessor.

    Mirrors llava-onevision-qwen2-0.5b-ov-hf: any-resolution images (a base tile plus the tiles of the best
    ``image_grid_pinpoints`` grid, ``image_sizes`` beside ``pixel_values``; the image token count depends on the
    frame's shape), ``vision_feature_select_strategy="full"``, a video processor, ChatML with ``<image>\\n``.
    """
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionProcessor,
        Qwen2Config,
    )
    from transformers.models.llava_onevision import LlavaOnevisionImageProcessor, LlavaOnevisionVideoProcessor

    named = {"image_token": "<image>", "video_token": "<video>"}
    tokenizer = _chatml_tokenizer(list(named.values()), named)
    pinpoints = [[TILE, TILE], [TILE, 2 * TILE], [2 * TILE, TILE], [2 * TILE, 2 * TILE]]
    size = {"height": TILE, "width": TILE}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
        tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        num_image_tokens=(TILE // PATCH) ** 2,
        vision_feature_select_strategy="full",
        chat_template=chatml_template("<image>\n", "<video>\n"),
        vision_aspect_ratio="anyres_max_9",
    )
    text = Qwen2Config(
        **_TEXT,
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaOnevisionConfig(
        text_config=text.to_dict(),
        vision_config=_siglip(),
        image_token_index=tokenizer.image_token_id,
        video_token_index=tokenizer.video_token_id,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=pinpoints,
        vision_aspect_ratio="anyres_max_9",
    )
    return _save(LlavaOnevisionForConditionalGeneration, config, tokenizer, processor, Path(output_dir), seed)


def make_tiny_internvl(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny InternVL (InternViT + pixel-shuffle projector + Qwen2) with its InternVLProcessor.

    Mirrors InternVL3-1B-hf: images cut into up to ``max_patches`` tiles plus a thumbnail (the tile count
    depends on the frame's shape), each tile ``image_seq_length`` × ``<IMG_CONTEXT>`` between ``<img>`` and
    ``</img>``, a video processor, ChatML with ``<IMG_CONTEXT>\\n`` for an image.
    """
    from transformers import (
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVisionConfig,
        Qwen2Config,
    )
    from transformers.models.got_ocr2 import GotOcr2ImageProcessor
    from transformers.models.internvl import InternVLVideoProcessor

    named = {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    }
    tokenizer = _chatml_tokenizer(list(named.values()), named)
    size = {"height": TILE, "width": TILE}
    tokens_per_tile = (TILE // PATCH) ** 2 // 4  # downsample_ratio 0.5 in each direction
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, max_patches=4),
        tokenizer=tokenizer,
        video_processor=InternVLVideoProcessor(size=size),
        image_seq_length=tokens_per_tile,
        chat_template=chatml_template("<IMG_CONTEXT>\n", "<video>\n"),
    )
    vision = InternVLVisionConfig(
        **_TOWER, image_size=[TILE, TILE], patch_size=[PATCH, PATCH], initializer_range=INIT_STD
    )
    text = Qwen2Config(
        **_TEXT,
        vocab_size=len(tokenizer),
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = InternVLConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        image_token_id=tokenizer.context_image_token_id,
        image_seq_length=tokens_per_tile,
        downsample_ratio=0.5,
    )
    return _save(InternVLForConditionalGeneration, config, tokenizer, processor, Path(output_dir), seed)


def make_tiny_qwen3_vl(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen3-VL (ViT with DeepStack + Qwen3 text, interleaved M-RoPE) with its Qwen3VLProcessor.

    Mirrors Qwen3-VL-2B-Instruct: dynamic resolution (each image becomes ``t × h × w`` patch rows,
    ``image_grid_thw``, and ``h × w / 4`` ``<|image_pad|>`` tokens between ``<|vision_start|>`` and
    ``<|vision_end|>``; ``mm_token_type_ids`` beside them), pixels between ``min_pixels`` and ``max_pixels``
    (here 32² and 64²), a timestamped video processor, ChatML.
    """
    from transformers import (
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
    )
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl import Qwen3VLTextConfig, Qwen3VLVideoProcessor, Qwen3VLVisionConfig

    named = {
        "vision_start_token": "<|vision_start|>",
        "vision_end_token": "<|vision_end|>",
        "image_token": "<|image_pad|>",
        "video_token": "<|video_pad|>",
    }
    tokenizer = _chatml_tokenizer(list(named.values()), named)
    grid = {"patch_size": PATCH, "temporal_patch_size": 2, "merge_size": 2}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            size={"shortest_edge": TILE * TILE, "longest_edge": 4 * TILE * TILE}, **grid
        ),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(
            size={"shortest_edge": TILE * TILE, "longest_edge": 16 * TILE * TILE}, **grid
        ),
        chat_template=chatml_template(
            "<|vision_start|><|image_pad|><|vision_end|>", "<|vision_start|><|video_pad|><|vision_end|>"
        ),
    )
    vision = Qwen3VLVisionConfig(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=4,
        patch_size=PATCH,
        spatial_merge_size=2,
        temporal_patch_size=2,
        out_hidden_size=32,
        num_position_embeddings=64,
        deepstack_visual_indexes=[1],
        initializer_range=INIT_STD,
    )
    rope = {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "mrope_section": [2, 1, 1],
        "mrope_interleaved": True,
    }
    text = Qwen3VLTextConfig(
        **_TEXT,
        vocab_size=len(tokenizer),
        head_dim=8,
        pad_token_id=tokenizer.pad_token_id,
        rope_parameters=rope,
    )
    config = Qwen3VLConfig(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        image_token_id=tokenizer.image_token_id,
        video_token_id=tokenizer.video_token_id,
        vision_start_token_id=tokenizer.vision_start_token_id,
        vision_end_token_id=tokenizer.vision_end_token_id,
    )
    return _save(Qwen3VLForConditionalGeneration, config, tokenizer, processor, Path(output_dir), seed)


FAMILY_BUILDERS = {
    "gemma3": make_tiny_gemma3,
    "paligemma": make_tiny_paligemma,
    "llava_onevision": make_tiny_llava_onevision,
    "internvl": make_tiny_internvl,
    "qwen3_vl": make_tiny_qwen3_vl,
}
"""``model_type`` -> builder of a tiny model of that family."""
