"""Captioner checkpoints in the transformers 4.x layout, made to caption under transformers 5.

Folders saved by transformers 4.x (many fine-tuned BLIP-2 and LLaVA-1.5 copies, older snapshots of the Hub
repos) load their weights under transformers 5 but lack fields its processors and ``generate`` need, and
crash at the first caption:

- BLIP-2: no ``image_token_index`` in ``config.json`` (4.x prepended the query embeddings itself; 5 puts
  them where the ``<image>`` tokens are) and no ``num_query_tokens`` in the processor config (without it a
  text prompt carries no image tokens and the image is silently ignored);
- LLaVA-1.5: no ``patch_size``, ``vision_feature_select_strategy`` or ``num_additional_image_tokens`` in the
  processor config (5 expands ``<image>`` into one token per patch itself); 4.4x saved the first two but not the
  third, which 5 then takes as 0 and expands 575 tokens for 576 features;
- the chat template only inside ``tokenizer_config.json``, where 5's processor does not look; a LLaVA folder saved
  by 4.36 has none anywhere, so it gets LLaVA-1.5's conversation format (:data:`LLAVA_1_5_CHAT_TEMPLATE`).

:func:`fill_missing_fields` takes each from where 4.x had it (model config, vision tower, tokenizer) and
returns a description of everything it filled, for the loader to log.
"""

from __future__ import annotations

from typing import Any


def _image_token_index(model: Any, processor: Any) -> list[str]:
    config = model.config
    if getattr(config, "image_token_index", 0) is not None:
        return []
    tokenizer = processor.tokenizer
    token = getattr(processor, "image_token", None) or "<image>"  # Blip2Processor adds it when missing
    token = str(getattr(token, "content", token))
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        tokenizer.add_tokens([token], special_tokens=True)
        token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id >= model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(token_id + 1)  # its row is replaced by image features, never read
    config.image_token_index = token_id
    return [f"image_token_index={token_id} (the {token!r} token)"]


def _num_query_tokens(model: Any, processor: Any) -> list[str]:
    if getattr(processor, "num_query_tokens", "n/a") is not None:
        return []
    if getattr(model.config, "num_query_tokens", None) is None:
        return []
    processor.num_query_tokens = model.config.num_query_tokens
    return [f"processor num_query_tokens={processor.num_query_tokens} (from the model config)"]


def _has_class_token(model: Any) -> bool:
    """Whether the vision tower prepends a CLS token (CLIP does, SigLIP does not)."""
    return any(hasattr(module, "class_embedding") for module in model.modules())


def _patch_size(model: Any, processor: Any) -> list[str]:
    if getattr(processor, "patch_size", "n/a") is not None:
        return []
    config = model.config
    processor.patch_size = config.vision_config.patch_size
    filled = [f"processor patch_size={processor.patch_size} (from the vision config)"]
    if getattr(processor, "vision_feature_select_strategy", None) is None:
        processor.vision_feature_select_strategy = config.vision_feature_select_strategy
        filled.append(f"vision_feature_select_strategy={config.vision_feature_select_strategy!r}")
    return filled


def _num_additional_image_tokens(model: Any, processor: Any) -> list[str]:
    """transformers 5 defaults this to 0, so in a 4.x processor config (4.36: no patch size either; 4.4x: patch
    size but no token count) "missing" and "0" look alike. A CLS token in the tower makes 0 wrong whatever was
    saved (one image token too few), so decide from the tower itself, as 4.x did when it expanded the image
    tokens in the model."""
    if getattr(processor, "patch_size", None) is None or not hasattr(
        processor, "num_additional_image_tokens"
    ):
        return []
    if processor.num_additional_image_tokens or not _has_class_token(model):
        return []
    processor.num_additional_image_tokens = 1
    return ["num_additional_image_tokens=1 (the vision tower's CLS token)"]


# LLaVA-1.5's conversation format, as the llava-hf checkpoints' template renders it:
# "USER: <image>\n{prompt} ASSISTANT:".
LLAVA_1_5_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}{% endfor %}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def _chat_template(model: Any, processor: Any) -> list[str]:
    if getattr(processor, "chat_template", "n/a") is not None:
        return []
    template = getattr(getattr(processor, "tokenizer", None), "chat_template", None)
    if template:
        processor.chat_template = template
        return ["chat_template (from tokenizer_config.json)"]
    if getattr(model.config, "model_type", None) != "llava":
        return []
    # Without a template the default prompt would carry no <image> token and the model could not see the frame.
    processor.chat_template = LLAVA_1_5_CHAT_TEMPLATE
    return [
        "chat_template (none saved: LLaVA-1.5's conversation format 'USER: <image>\\n{prompt} ASSISTANT:')"
    ]


def fill_missing_fields(model: Any, processor: Any) -> list[str]:
    """Fill what a transformers-4.x checkpoint lacks, in place; returns one description per filled field."""
    return (
        _image_token_index(model, processor)
        + _num_query_tokens(model, processor)
        + _patch_size(model, processor)
        + _num_additional_image_tokens(model, processor)
        + _chat_template(model, processor)
    )


__all__ = ["LLAVA_1_5_CHAT_TEMPLATE", "fill_missing_fields"]
