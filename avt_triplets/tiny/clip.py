"""A tiny random-weight transformers CLIP (vision + text towers), saved like ``openai/clip-vit-base-patch32``.

``CLIPModel.from_pretrained`` / ``AutoProcessor.from_pretrained`` load the folder, so the SLAVA towers are loaded by
the same code as the real checkpoint. The image processor is CLIP's own (resize the short side, centre crop, CLIP
mean/std) at the tiny ``image_size``; only the towers and the vocabulary are shrunk. The word-level vocabulary covers
the caption corpus of the other tiny models plus the words of the synthetic triplets' captions
(``avt_training/synthetic.py``: "a circle of colour 3"), so every caption of the tests tokenises without unknown words.
"""

from __future__ import annotations

from pathlib import Path

from avt_triplets.tiny._text import CAPTION_CORPUS, train_word_tokenizer

PROJECTION_DIM = 16
HIDDEN_SIZE = 32
IMAGE_SIZE = 32
# Words of the synthetic triplets' captions and class numbers up to 63.
SYNTHETIC_CAPTION_CORPUS: tuple[str, ...] = (
    "a circle of colour",
    "a square of colour",
    " ".join(str(number) for number in range(64)),
)


def make_tiny_clip(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny ``CLIPModel`` + ``CLIPProcessor`` to ``output_dir`` and return it.

    The vision tower pools ``HIDDEN_SIZE``-d CLS states, the text tower ``HIDDEN_SIZE``-d end-of-text states, and
    both project to ``PROJECTION_DIM``. ``seed`` fixes the weights: two seeds give two different towers.
    """
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPVisionConfig,
        PreTrainedTokenizerFast,
    )

    output_dir = Path(output_dir)
    # CLIP's layout: start and end of text first; the end token also pads (pooling reads its first occurrence).
    raw = train_word_tokenizer(
        ["<|startoftext|>", "<|endoftext|>", "<unk>"],
        corpus=CAPTION_CORPUS + SYNTHETIC_CAPTION_CORPUS,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
    )
    max_length = 32
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
        model_max_length=max_length,
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)

    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=2 * HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        projection_dim=PROJECTION_DIM,
    )
    vision_config = CLIPVisionConfig(
        hidden_size=HIDDEN_SIZE,
        intermediate_size=2 * HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=8,
        projection_dim=PROJECTION_DIM,
    )
    config = CLIPConfig(
        text_config=text_config.to_dict(),
        vision_config=vision_config.to_dict(),
        projection_dim=PROJECTION_DIM,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir


__all__ = ["HIDDEN_SIZE", "IMAGE_SIZE", "PROJECTION_DIM", "SYNTHETIC_CAPTION_CORPUS", "make_tiny_clip"]
