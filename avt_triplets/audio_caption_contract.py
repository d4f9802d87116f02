"""The audio captioner contract: what the ``audio_captioner`` role (:mod:`avt_triplets.model_host`) needs of a
model that captions a clip's audio, and the family conventions selected by ``model_type``.

Light on purpose (no torch, no transformers): the manifest imports the identity to know its fields, and the
adapter table is read before any model loads (a wrong ``model_type`` refused in one line).

Audio reaches the model as the dataset stores it: the clip's 16 kHz mono WAV, cut into ``windows`` equal parts
(:func:`audio_windows`), so what was captioned is exactly the ``audio`` column (a test can repeat it from a row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np

from avt_triplets.captioner_contract import ManifestIdentity

DEFAULT_AUDIO_PROMPT = "Describe the sounds in this audio in one sentence."


@dataclass(frozen=True)
class AudioCaptionerIdentity(ManifestIdentity):
    """What identifies a loaded audio captioner in the manifest (``audio_captioner``); every field required."""

    what = "audio captioner"

    name: str
    revision: str | None  # resolved Hub commit; None for a local folder
    weights_digest: str | None  # content of a local checkpoint; None for Hub models
    dtype: str  # the dtype the model runs in (its audio features are cast to it)
    prompt: str  # the instruction actually used (the family's default when none was given)
    max_new_tokens: int
    generation: Mapping[str, Any]  # generate() settings that decide the captions (greedy)
    windows: int  # --audio-caption-windows: candidates per clip
    sampling_rate: int  # the rate its feature extractor takes (the stored audio's, 16 kHz)
    adapter: str  # the family adapter (ADAPTERS) that formats the prompt


IDENTITY_FIELDS = tuple(f.name for f in fields(AudioCaptionerIdentity))


class AudioCaptioner(Protocol):
    """What the worker stage and the probe call: captions of 16 kHz mono windows, and the identity."""

    name: str
    windows: int
    sampling_rate: int

    def identity(self) -> AudioCaptionerIdentity: ...

    def caption_audio(self, windows: Sequence[np.ndarray]) -> list[str]:
        """One caption per window (float32 mono at ``sampling_rate``), as one batched greedy call."""
        ...


@dataclass(frozen=True)
class AudioAdapter:
    """A family's conventions: the model class that loads it and how an instruction and one audio become the
    chat the processor's template formats."""

    name: str
    model_class: str  # the transformers class that loads it (AF3 is in no Auto class of generating models)

    def messages(self, prompt: str) -> list[dict[str, Any]]:
        """One user turn: the audio, then the instruction (Qwen2-Audio's template writes the audio tokens)."""
        return [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": prompt}]}]


# One entry per family, by config.model_type; a new family is one entry (and a tiny builder and its oracle test).
ADAPTERS: dict[str, AudioAdapter] = {
    "qwen2_audio": AudioAdapter("qwen2_audio", "Qwen2AudioForConditionalGeneration"),
    "audioflamingo3": AudioAdapter("audioflamingo3", "AudioFlamingo3ForConditionalGeneration"),
}


def window_bounds(samples: int, windows: int) -> list[tuple[int, int]]:
    """``windows`` consecutive sample ranges covering ``samples`` (lengths differ by at most one sample)."""
    edges = [round(k * samples / windows) for k in range(windows + 1)]
    return list(zip(edges[:-1], edges[1:]))


def audio_windows(audio: np.ndarray, windows: int) -> list[np.ndarray]:
    """The clip's audio cut into ``windows`` equal parts (the candidates' inputs)."""
    return [audio[start:end] for start, end in window_bounds(len(audio), windows)]


__all__ = [
    "ADAPTERS",
    "DEFAULT_AUDIO_PROMPT",
    "IDENTITY_FIELDS",
    "AudioAdapter",
    "AudioCaptioner",
    "AudioCaptionerIdentity",
    "audio_windows",
    "window_bounds",
]
