"""The machinery both scorers share: whole-clip windowing and averaging, cosine scores, input checks.

A clip longer than a backend's window is covered by windows of exactly the window length, 50 % overlap, the last
one aligned to the clip's end (see :func:`window_starts`); each window is embedded and L2-normalised, the windows
of a clip are averaged and the mean normalised again, so an embedding is a pure function of the clip's audio.
:class:`WindowedScorer` implements that once for :class:`avt_triplets.scorers.ClapScorer` and
:class:`avt_triplets.msclap_scorer.MsclapScorer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from avt_triplets.batching import InputRejected

if TYPE_CHECKING:
    import torch


def score(audio_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """Cosine similarity: [D]×[N, D] → [N], or [B, D]×[N, D] → [B, N]. Inputs need not be normalised."""
    audio = l2_normalise(np.asarray(audio_emb, dtype=np.float32))
    text = l2_normalise(np.asarray(text_emb, dtype=np.float32))
    return audio @ text.T


def window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Start offsets of windows of ``window`` samples covering ``num_samples`` (last window ends at the end).

    A signal no longer than one window gets the single start 0 (the backend pads it).
    """
    if num_samples <= 0:
        raise ValueError("cannot cover an empty signal")
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if num_samples <= window:
        return [0]
    last = num_samples - window
    return [*range(0, last, hop), last]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32, copy=False)


def _as_mono_float32(waveform: np.ndarray) -> np.ndarray:
    wave = np.asarray(waveform, dtype=np.float32)
    if wave.ndim == 2 and 1 in wave.shape:
        wave = wave.reshape(-1)
    if wave.ndim != 1:
        raise InputRejected(f"expected a mono waveform (1-D array), got shape {wave.shape}")
    if wave.size == 0:
        raise InputRejected("empty waveform: nothing to embed")
    if not np.isfinite(wave).all():
        raise InputRejected("waveform contains NaN or infinite samples")
    return wave


class ClipWindows:
    """A clip's waveform -> the model inputs of its windows, ``[windows, ...]`` float32: the CPU part of
    embedding audio, done where the clip is decoded (:mod:`avt_triplets.model_inputs`).

    Small and picklable (no model in it). Subclasses implement :meth:`prepare` (the backend's padding and
    features of a list of 1-D windows, each at most ``window_samples`` long).
    """

    def __init__(self, window_samples: int):
        self.window_samples = int(window_samples)
        self.hop_samples = max(1, self.window_samples // 2)

    def windows(self, waveform: np.ndarray) -> list[np.ndarray]:
        """The clip's windows; :class:`InputRejected` for audio no scorer can use."""
        wave = _as_mono_float32(waveform)
        starts = window_starts(wave.shape[0], self.window_samples, self.hop_samples)
        return [wave[start : start + self.window_samples] for start in starts]

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        return self.prepare(self.windows(waveform))

    def prepare(self, windows: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError


class RepeatedWindows(ClipWindows):
    """Raw windows, a short one repeated to the full length (msclap's ``load_audio_into_tensor`` padding):
    ``[windows, window_samples]``; the model computes its own spectrogram on the device."""

    def prepare(self, windows: list[np.ndarray]) -> np.ndarray:
        return np.stack([self.fit(window) for window in windows])

    def fit(self, window: np.ndarray) -> np.ndarray:
        if window.shape[0] >= self.window_samples:
            return window[: self.window_samples]
        repeats = -(-self.window_samples // window.shape[0])
        return np.tile(window, repeats)[: self.window_samples]


class WindowedScorer:
    """Shared machinery: whole-clip windowing and averaging, duplicate texts embedded once.

    Subclasses set ``name``, ``revision``, ``embed_dim``, ``sampling_rate``, ``window_samples``, ``device`` and
    implement ``audio_preprocessor`` (a :class:`ClipWindows`: waveform -> prepared windows, on the CPU),
    ``_embed_prepared`` (a batch of prepared windows on the device -> [W, D] tensor) and ``_embed_texts`` (list
    of strings -> [N, D] tensor). ``weights_digest`` (local weights) and ``dtype`` are recorded in the run's
    manifest.
    """

    name: str
    revision: str | None
    embed_dim: int
    sampling_rate: int
    window_samples: int
    device: torch.device
    weights_digest: str | None = None
    dtype: str = "float32"

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        if len(waveforms) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        prepare = self.audio_preprocessor()
        return self.embed_prepared_audio([prepare(waveform) for waveform in waveforms])

    def embed_prepared_audio(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """[B, D] from each clip's prepared windows (``audio_preprocessor()`` of its waveform): the windows of
        the whole batch go to the model in one call, and each clip's normalised window embeddings are averaged."""
        from avt_triplets.devices import batch_to_device

        if len(clips) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        batch = batch_to_device(clips, self.device, concatenate=True)
        window_emb = l2_normalise(self._to_numpy(self._embed_prepared(batch)))
        owner = np.repeat(np.arange(len(clips)), [len(clip) for clip in clips])
        sums = np.zeros((len(clips), window_emb.shape[1]), dtype=np.float64)
        np.add.at(sums, owner, window_emb)
        return l2_normalise(sums.astype(np.float32))

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        embeddings = l2_normalise(self._to_numpy(self._embed_texts(unique)))
        row_of = {text: row for row, text in enumerate(unique)}
        return embeddings[[row_of[text] for text in texts]]

    def score(self, audio_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return score(audio_emb, text_emb)

    @staticmethod
    def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().float().cpu().numpy()

    def audio_preprocessor(self) -> ClipWindows:
        raise NotImplementedError

    def _embed_prepared(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, revision={self.revision!r}, "
            f"embed_dim={self.embed_dim}, sampling_rate={self.sampling_rate})"
        )


__all__ = ["ClipWindows", "RepeatedWindows", "WindowedScorer", "l2_normalise", "score", "window_starts"]
