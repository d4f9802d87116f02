"""A tiny random-weight transformers CLAP (HTSAT audio tower + RoBERTa text tower), saved like
``laion/clap-htsat-unfused`` so the transformers CLAP scorer loads it with ``from_pretrained``.

The feature extractor is the real one (48 kHz, 64 mel bins, hop 480, 10 s windows) in its unfused
form (``truncation="rand_trunc"``, ``padding="repeatpad"``); only the towers are shrunk.
"""

from __future__ import annotations

from pathlib import Path

from avt_triplets.tiny._text import train_word_tokenizer

PROJECTION_DIM = 16


def make_tiny_clap(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny ``ClapModel`` + ``ClapProcessor`` to ``output_dir`` and return it.

    ``get_audio_features`` / ``get_text_features`` give ``PROJECTION_DIM``-d embeddings.
    """
    import torch
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        PreTrainedTokenizerFast,
    )

    output_dir = Path(output_dir)
    # RoBERTa's layout: <s>=0, <pad>=1, </s>=2, <unk>=3, words, <mask> last; "<s> text </s>".
    raw = train_word_tokenizer(["<s>", "<pad>", "</s>", "<unk>"], bos_token="<s>", eos_token="</s>")
    raw.add_special_tokens(["<mask>"])
    max_length = 64
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=max_length,
    )
    feature_extractor = ClapFeatureExtractor(
        feature_size=64,
        sampling_rate=48_000,
        hop_length=480,
        max_length_s=10,
        fft_window_size=1024,
        frequency_min=50,
        frequency_max=14_000,
        truncation="rand_trunc",
        padding="repeatpad",
    )
    processor = ClapProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)

    text_config = ClapTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=max_length + 2,  # RoBERTa positions start after the padding id
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        projection_dim=PROJECTION_DIM,
    )
    audio_config = ClapAudioConfig(
        num_mel_bins=64,
        spec_size=256,  # the smallest that holds 1001 frames x 64 mels (HTSAT folds time into 4 rows)
        window_size=8,
        patch_size=8,
        patch_stride=(8, 8),
        patch_embeds_hidden_size=16,
        hidden_size=32,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        num_hidden_layers=2,
        enable_fusion=False,
        projection_dim=PROJECTION_DIM,
    )
    config = ClapConfig(
        text_config=text_config.to_dict(), audio_config=audio_config.to_dict(), projection_dim=PROJECTION_DIM
    )
    torch.manual_seed(seed)
    model = ClapModel(config).eval()
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
