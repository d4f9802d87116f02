"""A tiny random-weight Microsoft CLAP 2023 (msclap) for tests and the offline demo.

The folder it writes is loaded by the real path, ``load_scorer("msclap:2023", weights=folder)``, which runs
msclap's own ``CLAPWrapper(model_fp=...)``::

    folder/CLAP_weights_2023.pth   # {"model": state_dict}, like the released file
    folder/gpt2/                   # tiny GPT-2 (byte-level BPE, '!' = id 0 as in GPT-2), path contains "gpt"
    folder/msclap_config.yml       # shrinks config_2023.yml's text/projection sizes and HTSAT's architecture

Everything else is the real 2023 configuration: 44.1 kHz audio, 7 s windows, 64 mel bins, HTSAT's 256×256
spectrogram "image" and 4 Swin stages (only much narrower), the GPT-2 last-token text pooling, 77-token text.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

TINY_TEXT_WIDTH = 32
TINY_EMBED_DIM = 64
TINY_HTSAT = {"embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2], "window_size": 8}
# HTSAT's pooled feature width: embed_dim doubled at each of the 3 patch merges.
TINY_HTSAT_OUT = TINY_HTSAT["embed_dim"] * 2 ** (len(TINY_HTSAT["depths"]) - 1)


def _gpt2_byte_alphabet() -> list[str]:
    """GPT-2's byte→unicode table in vocabulary order: printable bytes first, so '!' is id 0 as in GPT-2."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = [chr(b) for b in printable]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _tiny_gpt2_tokenizer():
    from transformers import GPT2Tokenizer

    alphabet = _gpt2_byte_alphabet()
    vocab = {char: index for index, char in enumerate(alphabet)}
    # A few merges so common words become multi-byte tokens, as in a real BPE.
    merges = [("Ġ", "a"), ("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("o", "n"), ("e", "r")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    vocab["<|endoftext|>"] = len(vocab)
    return GPT2Tokenizer(vocab=vocab, merges=merges, model_max_length=1024)


def make_tiny_msclap(output_dir: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random msclap 2023 model to ``output_dir`` and return the folder."""
    overrides = {
        "transformer_embed_dim": TINY_TEXT_WIDTH,
        "out_emb": TINY_HTSAT_OUT,
        "d_proj": TINY_EMBED_DIM,
        "htsat": TINY_HTSAT,
    }
    text_sizes = {"n_positions": 128, "n_embd": TINY_TEXT_WIDTH, "n_layer": 2, "n_head": 2}
    return _write_random_msclap(output_dir, overrides, text_sizes, seed=seed)


def make_random_msclap_2023(output_dir: str | Path, *, seed: int = 0) -> Path:
    """Write msclap 2023 at its full size (HTSAT-base + GPT-2 124M, 1024-d projections) with random weights.

    For throughput benchmarks on machines that can't download the released weights: no ``msclap_config.yml``,
    so msclap builds its packaged ``config_2023.yml`` architecture. The text model is GPT-2's published size
    (vocabulary 50257) behind the tiny byte-level tokenizer; captions are padded to 77 tokens either way.
    """
    text_sizes = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12}
    return _write_random_msclap(output_dir, None, text_sizes, seed=seed)


def _write_random_msclap(
    output_dir: str | Path, overrides: dict | None, text_sizes: dict, *, seed: int
) -> Path:
    """msclap's own ``CLAP`` built from its packaged 2023 config plus ``overrides``, saved as the loader reads it."""
    import torch
    import yaml
    from transformers import GPT2Config, GPT2Model

    from modeling_slava.msclap_slava import (
        CONFIG_FILENAME,
        TEXT_MODEL_DIRNAME,
        WEIGHTS_FILENAME,
        htsat_architecture,
        import_clap_wrapper,
    )

    output_dir = Path(output_dir)
    text_dir = output_dir / TEXT_MODEL_DIRNAME
    text_dir.mkdir(parents=True, exist_ok=True)
    if overrides:
        (output_dir / CONFIG_FILENAME).write_text(
            "# Tiny test model: overrides of msclap's configs/config_2023.yml, read by modeling_slava.msclap_slava.\n"
            + yaml.safe_dump(overrides, sort_keys=False)
        )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = _tiny_gpt2_tokenizer()
        tokenizer.save_pretrained(text_dir)
        text_config = GPT2Config(
            **{"vocab_size": len(tokenizer), **text_sizes},
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        GPT2Model(text_config).save_pretrained(text_dir)

        # Build the model with msclap's own classes from its packaged config plus our overrides, as the loader will.
        import_clap_wrapper()  # imports msclap without its warning/logging side effects
        import msclap
        from msclap.models.clap import CLAP

        packaged = Path(msclap.__file__).parent / "configs" / "config_2023.yml"
        args = argparse.Namespace(**yaml.safe_load(packaged.read_text()))
        for key, value in (overrides or {}).items():
            if key != "htsat":
                setattr(args, key, value)
        with htsat_architecture((overrides or {}).get("htsat")), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)
            model = CLAP(
                audioenc_name=args.audioenc_name,
                sample_rate=args.sampling_rate,
                window_size=args.window_size,
                hop_size=args.hop_size,
                mel_bins=args.mel_bins,
                fmin=args.fmin,
                fmax=args.fmax,
                classes_num=args.num_classes,
                out_emb=args.out_emb,
                text_model=str(text_dir),
                transformer_embed_dim=args.transformer_embed_dim,
                d_proj=args.d_proj,
            )
    torch.save({"model": model.state_dict()}, output_dir / WEIGHTS_FILENAME)
    return output_dir
