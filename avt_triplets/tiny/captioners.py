"""Tiny random-weight BLIP-2 and LLaVA-1.5 captioners, saved like their Hub checkpoints.

Each folder holds what ``Salesforce/blip2-opt-2.7b`` / ``llava-hf/llava-1.5-7b-hf`` hold
(config, safetensors weights, generation config, tokenizer, image processor, processor config and,
for LLaVA, a chat template), with the same special-token layout and image-token handling, so the
product's loading code (``AutoProcessor`` + ``AutoModelForImageTextToText``) is what loads them.
Images are 32 px so a caption costs milliseconds on a CPU.

Random weights caption nonsense, but readable nonsense: the vocabulary is a few hundred words, and
the output-embedding rows of the special tokens are zeroed so greedy decoding emits words (never
only EOS/padding/image tokens) and captions are never empty.
"""

from __future__ import annotations

from pathlib import Path

from avt_triplets.legacy_checkpoints import LLAVA_1_5_CHAT_TEMPLATE
from avt_triplets.tiny._text import train_word_tokenizer

IMAGE_SIZE = 32
PATCH_SIZE = 8
BLIP2_NUM_QUERY_TOKENS = 4
MAX_NEW_TOKENS = 8
# Larger than the usual 0.02 so the image, through the tiny towers, visibly changes the caption.
INIT_STD = 0.3
# The text model of every tiny VLM (vlm_captioners, vlm_families): 2 layers of 32, grouped-query attention.
TINY_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "initializer_range": INIT_STD,
}


def _silence_special_tokens(model, token_ids: list[int]) -> None:
    """Zero the output rows of special tokens: their logits become 0 while the ~100 word logits
    are random around 0, so greedy decoding picks a word at every step."""
    import torch

    with torch.no_grad():
        model.get_output_embeddings().weight[token_ids] = 0.0


def save_silenced(
    model_class,
    config,
    tokenizer,
    processor,
    output_dir: Path,
    seed: int,
    silenced: list[int],
    zero_init: tuple[str, ...] = (),
) -> Path:
    """Build ``model_class(config)`` from ``seed``, zero the output rows of the ``silenced`` token ids, set greedy
    generation, save model and processor: what every tiny captioner builder ends with. ``zero_init``: parameters
    the family initialises to zero (Gemma 3's image projection), drawn at random instead so that the image
    reaches the caption."""
    import torch
    from transformers import GenerationConfig

    torch.manual_seed(seed)
    model = model_class(config).eval()
    with torch.no_grad():
        for name in zero_init:
            model.get_parameter(name).normal_(0.0, INIT_STD)
    _silence_special_tokens(model, silenced)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=MAX_NEW_TOKENS,
    )
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir


def save_tiny(
    model_class, config, tokenizer, processor, output_dir: Path, seed: int, image_token_id: int | None = None
) -> Path:
    """:func:`save_silenced` with the special tokens, the special added ones (Idefics3's tile tags) and the image
    token silenced."""
    image_token_id = config.image_token_index if image_token_id is None else image_token_id
    added = [i for i, token in tokenizer.added_tokens_decoder.items() if token.special]
    silenced = sorted({*tokenizer.all_special_ids, *added, image_token_id})
    return save_silenced(model_class, config, tokenizer, processor, output_dir, seed, silenced)


def make_tiny_blip2(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny BLIP-2 (ViT + Q-Former + OPT) with its Blip2Processor to ``output_dir``.

    Mirrors blip2-opt-2.7b: OPT special tokens (``</s>`` is both BOS and EOS), ``<image>`` added to
    the tokenizer after the vocabulary and used as ``image_token_index``, ``num_query_tokens``
    image tokens prepended by the processor.
    """
    from transformers import (
        Blip2Config,
        Blip2ForConditionalGeneration,
        Blip2Processor,
        Blip2QFormerConfig,
        Blip2VisionConfig,
        BlipImageProcessor,
        OPTConfig,
        PreTrainedTokenizerFast,
    )

    output_dir = Path(output_dir)
    raw = train_word_tokenizer(["<s>", "<pad>", "</s>", "<unk>"], bos_token="</s>")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="</s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=64,
    )
    image_processor = BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=BLIP2_NUM_QUERY_TOKENS)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")

    vision = Blip2VisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        initializer_range=INIT_STD,
    )
    qformer = Blip2QFormerConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        encoder_hidden_size=32,
        cross_attention_frequency=1,
        max_position_embeddings=64,
        initializer_range=INIT_STD,
    )
    text = OPTConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        word_embed_proj_dim=32,
        num_hidden_layers=2,
        ffn_dim=64,
        num_attention_heads=4,
        max_position_embeddings=64,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        init_std=INIT_STD,
    )
    config = Blip2Config(
        vision_config=vision.to_dict(),
        qformer_config=qformer.to_dict(),
        text_config=text.to_dict(),
        num_query_tokens=BLIP2_NUM_QUERY_TOKENS,
        image_token_index=image_token_id,
        initializer_range=INIT_STD,
    )
    return save_tiny(Blip2ForConditionalGeneration, config, tokenizer, processor, output_dir, seed)


def make_tiny_llava(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny LLaVA-1.5 (CLIP ViT + MLP projector + Llama) with its LlavaProcessor to ``output_dir``.

    Mirrors llava-1.5-7b-hf: Llama special tokens (``<unk>=0, <s>=1, </s>=2``), ``<image>`` and
    ``<pad>`` added after the vocabulary, left padding, ``vision_feature_select_strategy="default"``
    (CLS dropped) with ``num_additional_image_tokens=1``, features from layer -2, and a
    ``USER: <image>\\n... ASSISTANT:`` chat template.
    """
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    output_dir = Path(output_dir)
    raw = train_word_tokenizer(["<unk>", "<s>", "</s>"], bos_token="<s>", lowercase=True)
    raw.add_special_tokens(["<image>", "<pad>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        padding_side="left",
        model_max_length=128,
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        chat_template=LLAVA_1_5_CHAT_TEMPLATE,  # the llava-hf checkpoints' format
        num_additional_image_tokens=1,
    )
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    num_image_tokens = (IMAGE_SIZE // PATCH_SIZE) ** 2

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        initializer_range=INIT_STD,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=INIT_STD,
    )
    config = LlavaConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_index=image_token_id,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=num_image_tokens,
    )
    return save_tiny(LlavaForConditionalGeneration, config, tokenizer, processor, output_dir, seed)
