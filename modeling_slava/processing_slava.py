"""Inputs for SLAVA's towers from raw clips: every frame, the whole audio in fixed windows, tokenised captions.

A clip's frames become `pixel_values` `[B, M, 3, H, W]` (CLIP's image processor) with `frames_mask` `[B, M]`; its
audio is resampled to the audio tower's rate and covered by windows of exactly the tower's length (50 % overlap,
the last window aligned to the end; a shorter clip is one window, padded the tower's own way), giving
`audio_values` `[B, W, ...]` and `windows_mask` `[B, W]`. The model averages frame and window features per clip, so
a clip's embedding is a pure function of the clip (CLAP's own `rand_trunc` would crop long audio at random).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def window_starts(num_samples: int, window: int) -> list[int]:
    """Starts of `window`-sample windows with hop `window // 2` covering `num_samples`, the last ending at the end
    (one window at 0 for a signal no longer than the window)."""
    if num_samples <= window:
        return [0]
    last = num_samples - window
    return [*range(0, last, max(1, window // 2)), last]


def _pad_stack(groups: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack `[n_i, ...]` tensors into `[B, max n, ...]` with zero padding and a `[B, max n]` validity mask."""
    longest = max(g.shape[0] for g in groups)
    stacked = groups[0].new_zeros((len(groups), longest, *groups[0].shape[1:]))
    mask = torch.zeros((len(groups), longest), dtype=torch.bool)
    for row, group in enumerate(groups):
        stacked[row, : group.shape[0]] = group
        mask[row, : group.shape[0]] = True
    return stacked, mask


class SlavaProcessor:
    """CLIP image processor + CLIP tokenizer + the audio tower's front end, built from a `SlavaConfig`."""

    def __init__(
        self,
        image_processor: Any,
        tokenizer: Any,
        audio_feature_extractor: Any | None,
        audio_sampling_rate: int,
        audio_window_seconds: float,
    ):
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.audio_feature_extractor = audio_feature_extractor  # None: msclap takes raw windows
        self.audio_sampling_rate = int(audio_sampling_rate)
        self.window_samples = int(round(audio_window_seconds * audio_sampling_rate))

    @classmethod
    def from_config(cls, config) -> SlavaProcessor:
        """Load the towers' own processors from the references in `config` (no tower weights are read)."""
        from transformers import AutoImageProcessor, AutoTokenizer, ClapFeatureExtractor

        image_processor = AutoImageProcessor.from_pretrained(
            config.vision_model_name_or_path, revision=config.vision_model_revision
        )
        tokenizer = AutoTokenizer.from_pretrained(
            config.text_model_name_or_path, revision=config.text_model_revision
        )
        extractor = None
        if config.audio_backend == "clap":
            extractor = ClapFeatureExtractor.from_pretrained(
                config.audio_model_name_or_path, revision=config.audio_model_revision
            )
        return cls(
            image_processor, tokenizer, extractor, config.audio_sampling_rate, config.audio_window_seconds
        )

    # -- images ------------------------------------------------------------------------------------------------------

    def images(self, clips: Sequence[Sequence[Any]]) -> dict[str, torch.Tensor]:
        """Frames of each clip (PIL images) -> `pixel_values` `[B, M, 3, H, W]`, `frames_mask` `[B, M]`."""
        if any(len(frames) == 0 for frames in clips):
            raise ValueError("every clip needs at least one frame")
        flat = [frame for frames in clips for frame in frames]
        pixels = self.image_processor(images=flat, return_tensors="pt")["pixel_values"]
        groups = list(torch.split(pixels, [len(frames) for frames in clips]))
        pixel_values, frames_mask = _pad_stack(groups)
        return {"pixel_values": pixel_values, "frames_mask": frames_mask}

    # -- text --------------------------------------------------------------------------------------------------------

    def text(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    # -- audio -------------------------------------------------------------------------------------------------------

    def _resample(self, waveform: np.ndarray, sampling_rate: int) -> np.ndarray:
        wave = np.asarray(waveform, dtype=np.float32).reshape(-1)
        if wave.size == 0:
            raise ValueError("empty audio")
        if sampling_rate == self.audio_sampling_rate:
            return wave
        import torchaudio.functional as AF

        resampled = AF.resample(torch.from_numpy(wave), int(sampling_rate), self.audio_sampling_rate)
        return resampled.numpy()

    def _fit_window(self, window: np.ndarray) -> np.ndarray:
        """msclap's padding: repeat a short window to the full length."""
        if window.shape[0] >= self.window_samples:
            return window[: self.window_samples]
        return np.tile(window, -(-self.window_samples // window.shape[0]))[: self.window_samples]

    def _window_inputs(self, windows: list[np.ndarray]) -> torch.Tensor:
        if self.audio_feature_extractor is None:
            return torch.from_numpy(np.stack([self._fit_window(w) for w in windows]))
        features = self.audio_feature_extractor(
            [w.astype(np.float64) for w in windows],
            sampling_rate=self.audio_sampling_rate,
            return_tensors="pt",
        )
        return features["input_features"]

    def audio(self, waveforms: Sequence[np.ndarray], sampling_rate: int = 16_000) -> dict[str, torch.Tensor]:
        """Mono waveforms -> `audio_values` `[B, W, ...]` (one entry per window) and `windows_mask` `[B, W]`."""
        windows: list[np.ndarray] = []
        counts: list[int] = []
        for waveform in waveforms:
            wave = self._resample(waveform, sampling_rate)
            starts = window_starts(wave.shape[0], self.window_samples)
            windows += [wave[start : start + self.window_samples] for start in starts]
            counts.append(len(starts))
        inputs = self._window_inputs(windows)
        audio_values, windows_mask = _pad_stack(list(torch.split(inputs, counts)))
        return {"audio_values": audio_values, "windows_mask": windows_mask}

    def __call__(
        self,
        audio: Sequence[np.ndarray] | None = None,
        images: Sequence[Sequence[Any]] | None = None,
        text: Sequence[str] | None = None,
        sampling_rate: int = 16_000,
    ) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if audio is not None:
            out.update(self.audio(audio, sampling_rate=sampling_rate))
        if images is not None:
            out.update(self.images(images))
        if text is not None:
            out.update(self.text(text))
        return out


__all__ = ["SlavaProcessor", "window_starts"]
