"""Random-weight captioners at the published sizes, built in memory, for throughput benchmarks without downloads.

:data:`BLIP2_OPT_2_7B` holds the sizes of ``Salesforce/blip2-opt-2.7b`` (ViT-g/14 at 224 px, 39 layers x 1408;
Q-Former 12 x 768 with cross-attention every 2nd layer and 32 queries; OPT-2.7B 32 x 2560, vocabulary 50304,
``<image>`` = 50265, end of caption = 50118); :data:`BLIP2_SMOKE` is the same structure a few hundred times
smaller for CPU smoke runs. :func:`build_blip2_captioner` returns the product's
:class:`~avt_triplets.captioners.TransformersCaptioner`, so ``caption()`` is the code the pipeline runs.

:data:`QWEN2_5_VL_3B` and :data:`SMOLVLM_256M` hold the sizes of ``Qwen/Qwen2.5-VL-3B-Instruct`` (3.75 B
parameters) and ``HuggingFaceTB/SmolVLM-256M-Instruct`` (0.256 B), written out from their ``config.json``;
:func:`build_family_captioner` builds either (or its ``*_SMOKE`` twin) around a processor whose image settings
match the tower (``bench/published_processors.py``), with the family's adapter and variable-size batches.

Weights are random, so a caption is random words; the benchmark forces every caption to ``max_new_tokens`` tokens
(``min_new_tokens``), the slowest case of the real model, whose captions usually stop earlier. Parameter dtypes
follow ``from_pretrained(dtype=...)``'s rule (under float16 BLIP-2 keeps the Q-Former and query tokens in float32).
"""

from __future__ import annotations

import re
from typing import Any

BLIP2_OPT_2_7B: dict[str, Any] = {
    "name": "random-weight BLIP-2 OPT-2.7B (published sizes)",
    "vision": {
        "hidden_size": 1408,
        "intermediate_size": 6144,
        "num_hidden_layers": 39,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
        "layer_norm_eps": 1e-6,
    },
    "qformer": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "cross_attention_frequency": 2,
        "encoder_hidden_size": 1408,
        "vocab_size": 30522,
    },
    "text": {
        "hidden_size": 2560,
        "word_embed_proj_dim": 2560,
        "ffn_dim": 10240,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "max_position_embeddings": 2048,
        "vocab_size": 50304,
    },
    "num_query_tokens": 32,
    "image_token_index": 50265,
    "eos_token_id": 50118,
}

BLIP2_SMOKE: dict[str, Any] = {
    "name": "random-weight BLIP-2 (smoke sizes)",
    "vision": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": 32,
        "patch_size": 8,
        "layer_norm_eps": 1e-6,
    },
    "qformer": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "cross_attention_frequency": 2,
        "encoder_hidden_size": 32,
        "vocab_size": 128,
    },
    "text": {
        "hidden_size": 32,
        "word_embed_proj_dim": 32,
        "ffn_dim": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 128,
        "vocab_size": 320,
    },
    "num_query_tokens": 4,
    "image_token_index": 300,
    "eos_token_id": 299,
}

# OPT's layout: <s>=0, <pad>=1, </s>=2 (BOS and EOS of the tokenizer), <unk>=3, then the words.
_OPT_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
# CLIP's normalisation, what BLIP-2's image processor uses.
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _word_tokenizer(image_token_index: int):
    """A word-level tokenizer with OPT's special ids and ``image_token_index`` words, then ``<image>``."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(_OPT_SPECIALS)}
    vocab.update({f"w{i}": i for i in range(len(vocab), image_token_index)})
    raw = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="</s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    assert tokenizer.convert_tokens_to_ids("<image>") == image_token_index
    return tokenizer


def _keep_in_fp32(model: Any, dtype: Any) -> None:
    """Upcast what ``from_pretrained(dtype=dtype)`` keeps in float32: ``_keep_in_fp32_modules`` under float16,
    ``_keep_in_fp32_modules_strict`` under any half dtype (transformers 5's rule)."""
    import torch

    names = set(getattr(model, "_keep_in_fp32_modules_strict", None) or [])
    if dtype == torch.float16:
        names |= set(getattr(model, "_keep_in_fp32_modules", None) or [])
    if not names or dtype == torch.float32:
        return
    pattern = re.compile(r"(^|\.)(" + "|".join(map(re.escape, sorted(names))) + r")(\.|$)")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if pattern.search(name):
                parameter.data = parameter.data.float()


def build_blip2_captioner(
    spec: dict[str, Any], *, device: str, dtype: Any, max_new_tokens: int = 30, seed: int = 0
):
    """A :class:`TransformersCaptioner` over a random BLIP-2 of ``spec``'s sizes, on ``device`` in ``dtype``.

    The weights are initialised directly on ``device`` (seconds for 3.9 B parameters on a GPU).
    """
    import torch
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        BlipImageProcessor,
        GenerationConfig,
    )

    from avt_triplets.captioners import TransformersCaptioner

    tokenizer = _word_tokenizer(spec["image_token_index"])
    size = spec["vision"]["image_size"]
    image_processor = BlipImageProcessor(
        size={"height": size, "width": size}, image_mean=_CLIP_MEAN, image_std=_CLIP_STD
    )
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=spec["num_query_tokens"])
    ids = {"bos_token_id": 2, "eos_token_id": spec["eos_token_id"], "pad_token_id": 1}
    config = Blip2Config(
        vision_config=spec["vision"],
        qformer_config=spec["qformer"],
        text_config={**spec["text"], **ids},
        num_query_tokens=spec["num_query_tokens"],
        image_token_index=spec["image_token_index"],
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = Blip2ForConditionalGeneration._from_config(config, dtype=dtype)
    _keep_in_fp32(model, dtype)
    model.generation_config = GenerationConfig(**ids, max_new_tokens=max_new_tokens)
    captioner = TransformersCaptioner(
        model, processor, name=spec["name"], revision=None, prompt=None, max_new_tokens=max_new_tokens
    )
    captioner.generate_kwargs["min_new_tokens"] = max_new_tokens  # random weights: every caption full length
    return captioner


# Qwen/Qwen2.5-VL-3B-Instruct's config.json (sizes; token ids come from the tokenizer the model is built with).
QWEN2_5_VL_3B: dict[str, Any] = {
    "name": "random-weight Qwen2.5-VL-3B (published sizes)",
    "model_type": "qwen2_5_vl",
    "text": {
        "hidden_size": 2048,
        "intermediate_size": 11008,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 2,
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    },
    "vision": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 2048,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
    },
}
_SMOKE_TEXT: dict[str, Any] = {  # the text model of both smoke VLMs
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
    "vocab_size": 512,
}
QWEN2_5_VL_SMOKE: dict[str, Any] = {
    "name": "random-weight Qwen2.5-VL (smoke sizes)",
    "model_type": "qwen2_5_vl",
    "text": {
        **_SMOKE_TEXT,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
    },
    "vision": {
        **QWEN2_5_VL_3B["vision"],
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 4,
        "out_hidden_size": 32,
        "window_size": 56,
        "fullatt_block_indexes": [1],
    },
}
# HuggingFaceTB/SmolVLM-256M-Instruct's config.json: SigLIP-base-sized tower on 512 px tiles of 16 px patches,
# pixel shuffle by 4 (64 tokens a tile), SmolLM2-135M-sized Llama.
SMOLVLM_256M: dict[str, Any] = {
    "name": "random-weight SmolVLM-256M (published sizes)",
    "model_type": "idefics3",
    "scale_factor": 4,
    "text": {
        "model_type": "llama",
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "head_dim": 64,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "vocab_size": 49280,
        "tie_word_embeddings": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": 100000.0},
    },
    "vision": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 512,
        "patch_size": 16,
    },
}
SMOLVLM_SMOKE: dict[str, Any] = {  # the tiny builder's tiles: 32 px, 8 px patches, shuffle by 2
    "name": "random-weight SmolVLM (smoke sizes)",
    "model_type": "idefics3",
    "scale_factor": 2,
    "text": {"model_type": "llama", **_SMOKE_TEXT},
    "vision": dict(BLIP2_SMOKE["vision"]),  # the same 2-layer tower on 32 px images of 8 px patches
}


def _family_config(spec: dict[str, Any], tokenizer: Any) -> Any:
    """The family's real config class from ``spec``'s sizes, with the special-token ids of ``tokenizer``."""
    from transformers import Idefics3Config, Qwen2_5_VLConfig

    ids = tokenizer.convert_tokens_to_ids
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    text = {**spec["text"], "eos_token_id": eos, "pad_token_id": pad, "bos_token_id": tokenizer.bos_token_id}
    if spec["model_type"] == "qwen2_5_vl":
        return Qwen2_5_VLConfig(
            text_config=text,
            vision_config=spec["vision"],
            image_token_id=ids("<|image_pad|>"),
            video_token_id=ids("<|video_pad|>"),
            vision_start_token_id=ids("<|vision_start|>"),
            vision_end_token_id=ids("<|vision_end|>"),
        )
    return Idefics3Config(
        text_config=text,
        vision_config=spec["vision"],
        image_token_id=ids("<image>"),
        scale_factor=spec["scale_factor"],
        pad_token_id=pad,
    )


def build_family_captioner(
    spec: dict[str, Any], processor: Any, *, device: str, dtype: Any, max_new_tokens: int = 30, seed: int = 0
):
    """A :class:`TransformersCaptioner` (with the family's adapter) over a random model of ``spec``'s sizes,
    around ``processor`` (whose image settings must match the spec's tower: the published processor for the
    published sizes, the tiny builder's for the smoke sizes), weights initialised on ``device`` in ``dtype``."""
    import torch
    from transformers import (
        GenerationConfig,
        Idefics3ForConditionalGeneration,
        Qwen2_5_VLForConditionalGeneration,
    )

    from avt_triplets.captioners import TransformersCaptioner

    tokenizer = processor.tokenizer
    config = _family_config(spec, tokenizer)
    model_class = (
        Qwen2_5_VLForConditionalGeneration
        if spec["model_type"] == "qwen2_5_vl"
        else Idefics3ForConditionalGeneration
    )
    torch.manual_seed(seed)
    with torch.device(device):
        model = model_class._from_config(config, dtype=dtype)
    ids = {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    model.generation_config = GenerationConfig(**ids, max_new_tokens=max_new_tokens)
    captioner = TransformersCaptioner(
        model, processor, name=spec["name"], revision=None, prompt=None, max_new_tokens=max_new_tokens
    )
    captioner.generate_kwargs["min_new_tokens"] = max_new_tokens  # random weights: every caption full length
    return captioner
