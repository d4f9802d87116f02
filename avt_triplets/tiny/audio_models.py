"""Tiny random-weight audio captioners, saved like their Hub checkpoints.

Qwen2-Audio (``Qwen/Qwen2-Audio-7B-Instruct``): the real config classes (``Qwen2AudioConfig`` with a Whisper-style
``Qwen2AudioEncoderConfig`` and a ``Qwen2Config`` text model), the real ``Qwen2AudioProcessor`` (a
``WhisperFeatureExtractor`` and a ChatML tokenizer with ``<|AUDIO|>``, ``<|audio_bos|>``, ``<|audio_eos|>``) and its
own default chat template. Audio Flamingo 3 (``nvidia/audio-flamingo-3-hf``): ``AudioFlamingo3Config`` and
``AudioFlamingo3Processor`` (Whisper features, ``<sound>`` in a ChatML template). The product's loading code
(``AutoProcessor`` + the class the family's adapter names) is what loads them. Hidden size 32, one encoder and two
text layers, 32 mel bins and 10 s feature windows (the real models' are 128 and 30 s), so a caption costs
milliseconds on a CPU. As the other tiny models, the output rows of
every special token are zeroed, so greedy decoding emits readable words.
"""

from __future__ import annotations

from pathlib import Path

from avt_triplets.tiny.vlm_families import _TEXT, INIT_STD, _chatml_tokenizer, _save

AUDIO_TOKENS = {
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
CHUNK_SECONDS = 10  # the feature extractor pads every window to this (Qwen2-Audio: 30)
MEL_BINS = 32
HOP = 160  # 10 ms frames at 16 kHz, Whisper's


def _whisper_features():
    """Whisper's log-mel features at 16 kHz, with the tiny models' mel bins and window."""
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(
        feature_size=MEL_BINS, sampling_rate=16_000, hop_length=HOP, chunk_length=CHUNK_SECONDS, n_fft=400
    )


def _qwen2_text(tokenizer) -> dict:
    """The Qwen2 text model both families decode with (ChatML ids of ``tokenizer``), as a config dict."""
    from transformers import Qwen2Config

    ids = tokenizer.convert_tokens_to_ids
    return Qwen2Config(
        **_TEXT,
        vocab_size=len(tokenizer),
        eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<|endoftext|>"),
        tie_word_embeddings=False,
    ).to_dict()


def make_tiny_qwen2_audio(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2-Audio (Whisper-style encoder + average pool + projector + Qwen2 text model) with its
    Qwen2AudioProcessor to ``output_dir``."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
    )

    tokenizer = _chatml_tokenizer(list(AUDIO_TOKENS.values()), AUDIO_TOKENS)
    features = _whisper_features()
    processor = Qwen2AudioProcessor(feature_extractor=features, tokenizer=tokenizer)
    frames = CHUNK_SECONDS * 16_000 // HOP
    encoder = Qwen2AudioEncoderConfig(
        num_mel_bins=MEL_BINS,
        encoder_layers=1,
        encoder_attention_heads=4,
        encoder_ffn_dim=64,
        d_model=32,
        max_source_positions=frames // 2,  # after the stride-2 convolution
        initializer_range=INIT_STD,
    )
    ids = tokenizer.convert_tokens_to_ids
    text = _qwen2_text(tokenizer)
    config = Qwen2AudioConfig(
        audio_config=encoder.to_dict(),
        text_config=text,
        audio_token_index=ids(AUDIO_TOKENS["audio_token"]),
    )
    return _save(Qwen2AudioForConditionalGeneration, config, tokenizer, processor, Path(output_dir), seed)


# ChatML, the audio written as AF3's ``<sound>`` placeholder (the processor expands it to one per audio frame)
AF3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'audio' %}<sound>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def make_tiny_audio_flamingo3(output_dir: str | Path, seed: int = 0) -> Path:
    """Write a tiny Audio Flamingo 3 (Whisper-style encoder + pooling + projector + Qwen2 text model) with its
    AudioFlamingo3Processor (WhisperFeatureExtractor, ChatML tokenizer with ``<sound>``) to ``output_dir``."""
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3EncoderConfig,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
    )

    tokenizer = _chatml_tokenizer(["<sound>"], {"audio_token": "<sound>"})
    features = _whisper_features()
    processor = AudioFlamingo3Processor(features, tokenizer, chat_template=AF3_CHAT_TEMPLATE)
    encoder = AudioFlamingo3EncoderConfig(
        num_mel_bins=MEL_BINS,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_size=32,
        max_source_positions=CHUNK_SECONDS * 16_000 // HOP // 2,
        initializer_range=INIT_STD,
    )
    ids = tokenizer.convert_tokens_to_ids
    text = _qwen2_text(tokenizer)
    config = AudioFlamingo3Config(
        audio_config=encoder.to_dict(), text_config=text, audio_token_id=ids("<sound>")
    )
    return _save(AudioFlamingo3ForConditionalGeneration, config, tokenizer, processor, Path(output_dir), seed)


__all__ = ["make_tiny_audio_flamingo3", "make_tiny_qwen2_audio"]
