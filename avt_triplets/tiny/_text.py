"""Small word-level tokenizers for the tiny models, built with the ``tokenizers`` library.

The tiny captioners and CLAP need a real tokenizer (saved as ``tokenizer.json`` and reloaded by
``AutoTokenizer``/``AutoProcessor``) whose decoded output is readable words, so that captions in
tests and in the demo look like captions. A word-level vocabulary trained on a few audio-visual
sentences does that in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

# Sentences in the style of frame captions and sound descriptions. Their words are the vocabulary.
CAPTION_CORPUS: tuple[str, ...] = (
    "a red circle moving on a dark background",
    "a green square in the middle of the frame",
    "a blue triangle sliding to the left",
    "a yellow shape bouncing slowly",
    "a dog barking in the yard",
    "a man playing an acoustic guitar",
    "a woman singing into a microphone",
    "a car engine revving on the street",
    "people talking in a crowded room",
    "a bird chirping in a tree",
    "water flowing over rocks in a stream",
    "a drum kit being played loudly",
    "a high pitched tone with a steady hum",
    "a low pitched tone and soft noise",
    "a piano melody in a quiet hall",
    "children laughing on a playground",
    "rain falling on a window",
    "a train passing by a station",
    "an orchestra playing music on stage",
    "a cat meowing near the door",
    "the sound of wind and waves at the beach",
    "a person typing on a keyboard",
    "an airplane flying overhead",
    "a crowd cheering at a stadium",
)


def train_word_tokenizer(
    special_tokens: Sequence[str],
    *,
    corpus: Sequence[str] = CAPTION_CORPUS,
    bos_token: str | None = None,
    eos_token: str | None = None,
    lowercase: bool = True,
):
    """Train a ``tokenizers.Tokenizer`` with a WordLevel model on ``corpus``.

    ``special_tokens`` take the first ids, in order (so callers can mirror a real model's layout,
    e.g. Llama's ``<unk>=0, <s>=1, </s>=2``). When ``bos_token``/``eos_token`` are given, a
    post-processor adds them around every encoded sequence, like the real tokenizers do.
    """
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from tokenizers.trainers import WordLevelTrainer

    unk = next((t for t in special_tokens if "unk" in t), None)
    tokenizer = Tokenizer(WordLevel(unk_token=unk))
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with single spaces
    trainer = WordLevelTrainer(special_tokens=list(special_tokens), min_frequency=1)
    tokenizer.train_from_iterator(corpus, trainer=trainer)

    single = " ".join(t for t in (bos_token, "$A", eos_token) if t)
    pair = " ".join(t for t in (bos_token, "$A", eos_token, "$B:1", eos_token and f"{eos_token}:1") if t)
    special = {t: tokenizer.token_to_id(t) for t in (bos_token, eos_token) if t}
    if special:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=single, pair=pair, special_tokens=list(special.items())
        )
    return tokenizer
