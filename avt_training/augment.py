"""Fine-tuning augmentations of the official CAV-MAE loader, on normalised fbanks.

The official loader masks the raw fbank (masked bins read 0) and normalises afterwards; we mask the
normalised fbank with the value a raw 0 normalises to, which gives the same input.
"""

from __future__ import annotations

from typing import Any

import torch


def normalised_fbank_value(processor: Any, raw_value: float) -> float:
    """What a raw log-mel value becomes after the processor's normalisation (AST: ``(x - mean) / (2 std)``)."""
    fe = processor.feature_extractor
    if not getattr(fe, "do_normalize", True):
        return float(raw_value)
    return float((raw_value - fe.mean) / (2 * fe.std))


def apply_specaugment(
    audio_values: torch.Tensor,
    processor: Any,
    freq_mask: int,
    time_mask: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """torchaudio ``FrequencyMasking(freq_mask)`` then ``TimeMasking(time_mask)`` on one ``[T, F]`` fbank.

    torchaudio draws from the global RNG; with ``generator`` the draw is seeded from it inside a forked RNG
    state, so the mask is a function of the sample's seed and the global RNG is left untouched.
    """
    import torchaudio

    mask_value = normalised_fbank_value(processor, 0.0)
    spectrogram = audio_values.t().unsqueeze(0)  # [1, F, T], the layout torchaudio's masking expects
    with torch.random.fork_rng(devices=[]):
        if generator is not None:
            torch.manual_seed(int(torch.randint(0, 2**62, (), generator=generator)))
        if freq_mask:
            spectrogram = torchaudio.transforms.FrequencyMasking(freq_mask)(spectrogram, mask_value)
        if time_mask:
            spectrogram = torchaudio.transforms.TimeMasking(time_mask)(spectrogram, mask_value)
    return spectrogram.squeeze(0).t().contiguous()
