"""Tiny random-weight models for the audio-visual caption kinds: an omni captioner and a caption-merging LLM.

- :func:`make_tiny_qwen2_5_omni`: a Qwen2.5-Omni *thinker* (``Qwen/Qwen2.5-Omni-3B``'s text-generating half:
  Qwen2.5-VL vision tower, Whisper-style audio tower, Qwen2 text model with 3-D M-RoPE) saved with its real
  ``Qwen2_5OmniProcessor`` (Qwen2-VL image and video processors, Whisper feature extractor, a ChatML tokenizer
  carrying the family's ``<|AUDIO|>``/``<|IMAGE|>``/``<|VIDEO|>`` placeholders and their begin/end tokens as named
  attributes). ``AutoProcessor`` + ``Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained`` load it.
- :func:`make_tiny_caption_llm`: a Qwen2 ``AutoModelForCausalLM`` with a ChatML tokenizer and chat template, the
  shape of ``Qwen/Qwen2.5-0.5B-Instruct``: the local stand-in for AVCaps's GPT-4 merging step.

Hidden size 32, two layers, 16-pixel vision patches; the Whisper feature extractor keeps 1 second of audio (``chunk_length=1``), so the
audio tower sees 100 mel frames and a caption costs milliseconds on a CPU. As in
:mod:`avt_triplets.tiny.vlm_families`, the output rows of special tokens are zeroed so greedy decoding emits words.
"""

from __future__ import annotations

from pathlib import Path

from avt_triplets.tiny.vlm_families import INIT_STD, TILE, _chatml_tokenizer, _save

# Qwen2.5-Omni's processor raises every video frame to at least 128 x 28 x 28 pixels (its reference floor), so a
# 16-pixel patch (the real one is 14) keeps the tiny vision tower at ~400 patches per frame pair
OMNI_PATCH = 16

OMNI_SAMPLING_RATE = 16000
# Qwen2.5-Omni's turn format, with its audio / image / video placeholders between their begin/end tokens
OMNI_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif item['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif item['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_OMNI_TOKENS = {
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
    "audio_token": "<|AUDIO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
}
_SMALL_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
    "initializer_range": INIT_STD,
}


def _omni_processor(tokenizer):
    from transformers import Qwen2_5OmniProcessor, WhisperFeatureExtractor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    grid = {"patch_size": OMNI_PATCH, "temporal_patch_size": 2, "merge_size": 2}
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(
            size={"shortest_edge": TILE * TILE, "longest_edge": 4 * TILE * TILE}, **grid
        ),
        video_processor=Qwen2VLVideoProcessor(
            size={"shortest_edge": TILE * TILE, "longest_edge": 4 * TILE * TILE}, **grid
        ),
        feature_extractor=WhisperFeatureExtractor(
            feature_size=16, sampling_rate=OMNI_SAMPLING_RATE, chunk_length=1, return_attention_mask=True
        ),
        tokenizer=tokenizer,
        chat_template=OMNI_CHAT_TEMPLATE,
    )


def make_tiny_qwen2_5_omni(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2.5-Omni thinker + ``Qwen2_5OmniProcessor`` to ``output_dir`` and return it.

    Frames go in as a video (``video_grid_thw``, two frames per temporal patch), audio as Whisper log-mel features
    (16 bins, up to 1 second); text positions are Qwen2.5-Omni's 3-D M-RoPE over both.
    """
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration
    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import (
        Qwen2_5OmniAudioEncoderConfig,
        Qwen2_5OmniTextConfig,
        Qwen2_5OmniVisionEncoderConfig,
    )

    tokenizer = _chatml_tokenizer(list(_OMNI_TOKENS.values()), _OMNI_TOKENS)
    tokenizer.model_max_length = 32768  # a clip's video and audio placeholders alone are hundreds of tokens
    processor = _omni_processor(tokenizer)
    vision = Qwen2_5OmniVisionEncoderConfig(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=4,
        patch_size=OMNI_PATCH,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=16 * OMNI_PATCH,  # windows of 8 x 8 merged patches: a few attention calls per frame
        out_hidden_size=32,
        fullatt_block_indexes=[1],
        initializer_range=INIT_STD,
    )
    audio = Qwen2_5OmniAudioEncoderConfig(
        num_mel_bins=16,
        encoder_layers=2,
        encoder_attention_heads=4,
        encoder_ffn_dim=64,
        d_model=32,
        output_dim=32,
        max_source_positions=50,
        n_window=25,
        initializer_range=INIT_STD,
    )
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]}
    text = Qwen2_5OmniTextConfig(
        **_SMALL_TEXT, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, rope_parameters=rope
    )
    config = Qwen2_5OmniThinkerConfig(
        audio_config=audio.to_dict(),
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        audio_token_index=tokenizer.audio_token_id,
        image_token_index=tokenizer.image_token_id,
        video_token_index=tokenizer.video_token_id,
        audio_start_token_id=tokenizer.audio_bos_token_id,
        audio_end_token_id=tokenizer.audio_eos_token_id,
        vision_start_token_id=tokenizer.vision_bos_token_id,
        vision_end_token_id=tokenizer.vision_eos_token_id,
        user_token_id=tokenizer.convert_tokens_to_ids("user"),
        initializer_range=INIT_STD,
    )
    return _save(
        Qwen2_5OmniThinkerForConditionalGeneration, config, tokenizer, processor, Path(output_dir), seed
    )


def _qwen2_tokenizer():
    """A real ``Qwen2Tokenizer`` (byte-level BPE, Qwen2's pre-tokenizer) over a small vocabulary learnt from the
    caption corpus and the merge prompt, with Qwen2's ``<|endoftext|>`` / ``<|im_start|>`` / ``<|im_end|>``.
    ``AutoTokenizer`` reloads a ``qwen2`` model's tokenizer as this class, so a word-level one would not survive."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    from avt_triplets.caption_merge_prompt import DEFAULT_MERGE_PROMPT
    from avt_triplets.tiny._text import CAPTION_CORPUS

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator([*CAPTION_CORPUS, DEFAULT_MERGE_PROMPT, "user assistant system"], trainer)
    learnt = json.loads(raw.to_str())["model"]
    tokenizer = Qwen2Tokenizer(
        vocab=learnt["vocab"],
        merges=[tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in learnt["merges"]],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=4096,
        padding_side="left",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tokenizer.chat_template = TEXT_CHAT_TEMPLATE
    return tokenizer


def make_tiny_caption_llm(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2 causal LM + Qwen2 tokenizer (with a ChatML chat template) to ``output_dir``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = _qwen2_tokenizer()
    config = Qwen2Config(
        **_SMALL_TEXT,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    return _save(Qwen2ForCausalLM, config, tokenizer, tokenizer, Path(output_dir), seed)


__all__ = ["OMNI_CHAT_TEMPLATE", "OMNI_SAMPLING_RATE", "make_tiny_caption_llm", "make_tiny_qwen2_5_omni"]
