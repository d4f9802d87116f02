"""Processor for LG-CAV-MAE: waveforms -> ``audio_values`` and frames -> ``pixel_values``.

Both paths reproduce the official CAV-MAE dataloader (``src/dataloader.py``) numerically:

* audio: the waveform's mean is removed, then Kaldi fbank (128 mel bins, 25 ms Hanning window, 10 ms shift,
  no dither, pre-emphasis 0.97, per-frame DC removal, no energy) is computed by transformers'
  ``ASTFeatureExtractor`` (torchaudio's Kaldi implementation), zero-padded or cut to ``audio_length`` frames,
  and normalised as ``(x - (-5.081)) / 4.4849``. AST divides by ``2 * std``, so the extractor stores
  ``std = 4.4849 / 2``. Padding happens before normalisation, so padded frames read ``5.081 / 4.4849 = +1.133``.
* images: PIL bicubic resize of the short side to ``image_size``, centre crop, ImageNet mean/std
  (``CLIPImageProcessorPil`` configured that way). Identical to ``Resize(224, BICUBIC) + CenterCrop(224)``
  of torchvision except when the crop margin is odd: transformers then starts the crop one pixel earlier
  (floor) than torchvision (round half to even). The official 224x224 frames and the frames written by
  ``avt generate`` (short side 224) are unaffected.

This file imports only transformers, numpy, torch and the config module, so it also works as Hub remote code.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from transformers import ASTFeatureExtractor, AutoProcessor, CLIPImageProcessorPil
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling
from transformers.processing_utils import ProcessorMixin

from .configuration_lgcavmae import LGCavMaeConfig

# Official CAV-MAE fbank statistics (AudioSet), used for AudioSet and VGGSound alike.
CAVMAE_FBANK_MEAN = -5.081
CAVMAE_FBANK_STD = 4.4849
SAMPLING_RATE = 16_000
# torchaudio's Kaldi fbank needs at least one 25 ms window (snip_edges=True).
MIN_AUDIO_SAMPLES = 400


def build_feature_extractor(audio_length: int = 1024, num_mel_bins: int = 128) -> ASTFeatureExtractor:
    """An ``ASTFeatureExtractor`` whose output equals the official CAV-MAE normalised fbank."""
    return ASTFeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLING_RATE,
        num_mel_bins=num_mel_bins,
        max_length=audio_length,
        padding_value=0.0,
        do_normalize=True,
        mean=CAVMAE_FBANK_MEAN,
        # AST normalises with (x - mean) / (2 * std); halve the std so the result is (x - mean) / 4.4849.
        std=CAVMAE_FBANK_STD / 2,
        return_attention_mask=False,
    )


def build_image_processor(image_size: int = 224) -> CLIPImageProcessorPil:
    """PIL bicubic short-side resize + centre crop + ImageNet mean/std: the official eval transform."""
    return CLIPImageProcessorPil(
        do_resize=True,
        size={"shortest_edge": image_size},
        resample=PILImageResampling.BICUBIC,
        do_center_crop=True,
        crop_size={"height": image_size, "width": image_size},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(IMAGENET_DEFAULT_MEAN),
        image_std=list(IMAGENET_DEFAULT_STD),
        do_convert_rgb=True,
    )


def _to_mono_waveform(item: Any, sampling_rate: int | None) -> tuple[np.ndarray, int | None]:
    """Accept a 1-D array/tensor/list, a ``{"array", "sampling_rate"}`` dict, or a torchcodec ``AudioDecoder``.

    Multi-channel input keeps the first channel, like the official ``sox ... remix 1``.
    """
    if isinstance(item, dict) and "array" in item:
        sampling_rate = item.get("sampling_rate", sampling_rate)
        item = item["array"]
    elif hasattr(item, "get_all_samples"):  # torchcodec AudioDecoder, what datasets >= 4 decodes Audio into
        samples = item.get_all_samples()
        sampling_rate = int(samples.sample_rate)
        item = samples.data
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    waveform = np.asarray(item, dtype=np.float32)
    if waveform.ndim == 2:
        waveform = waveform[0]
    if waveform.ndim != 1:
        raise ValueError(
            f"expected a mono waveform (1-D, or [channels, samples]); got shape {waveform.shape}"
        )
    return waveform, sampling_rate


def _as_batch(audio: Any) -> list[Any]:
    if isinstance(audio, np.ndarray | torch.Tensor) and audio.ndim == 2:
        return list(audio)  # [batch, samples]
    if isinstance(audio, list | tuple) and audio and not np.isscalar(audio[0]):
        return list(audio)
    return [audio]


class LGCavMaeProcessor(ProcessorMixin):
    r"""Turns raw audio and video frames into LG-CAV-MAE inputs, exactly as the official CAV-MAE dataloader.

    Args:
        feature_extractor (`ASTFeatureExtractor`, *optional*): the fbank extractor; defaults to
            `build_feature_extractor()` (1024 frames, 128 bins, CAV-MAE normalisation).
        image_processor (`CLIPImageProcessorPil`, *optional*): the frame transform; defaults to
            `build_image_processor()` (224, bicubic, centre crop, ImageNet mean/std).

    Example:

    ```python
    processor = LGCavMaeProcessor.from_config(model.config)
    inputs = processor(audio=[waveform], images=[frame], sampling_rate=16000, return_tensors="pt")
    audio_features = model.get_audio_features(inputs["audio_values"])
    ```
    """

    def __init__(self, feature_extractor=None, image_processor=None):
        feature_extractor = feature_extractor if feature_extractor is not None else build_feature_extractor()
        image_processor = image_processor if image_processor is not None else build_image_processor()
        super().__init__(feature_extractor, image_processor)

    @classmethod
    def from_config(cls, config: Any) -> LGCavMaeProcessor:
        """Build the processor matching a model config (``audio_length``, ``num_mel_bins``, ``image_size``)."""
        return cls(
            feature_extractor=build_feature_extractor(config.audio_length, config.num_mel_bins),
            image_processor=build_image_processor(config.image_size),
        )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        # Saved image processors reload with the torchvision backend by default, whose resize differs
        # slightly from the official PIL bicubic; keep PIL unless the caller asks otherwise.
        kwargs.setdefault("backend", "pil")
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @property
    def audio_length(self) -> int:
        return int(self.feature_extractor.max_length)

    @property
    def model_input_names(self) -> list[str]:
        return ["audio_values", "pixel_values"]

    def __call__(
        self,
        audio: Any = None,
        images: Any = None,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """Process a batch of waveforms and/or images.

        Args:
            audio: one waveform or a list of them (1-D float arrays/tensors in [-1, 1], ``{"array",
                "sampling_rate"}`` dicts, or torchcodec ``AudioDecoder`` objects as ``datasets`` decodes them).
            images: one image or a list (PIL images or arrays, as the image processor accepts).
            sampling_rate: rate of ``audio``; other rates than 16 kHz are resampled (the official data was
                resampled to 16 kHz with ffmpeg beforehand, so expect tiny differences from that path).
            return_tensors: ``"pt"`` (default), ``"np"`` or ``None``.

        Returns:
            `BatchFeature` with ``audio_values`` [B, audio_length, num_mel_bins] and/or ``pixel_values``
            [B, 3, image_size, image_size].
        """
        if audio is None and images is None:
            raise ValueError("Pass `audio`, `images`, or both.")
        data: dict[str, Any] = {}
        if audio is not None:
            data["audio_values"] = self.process_audio(audio, sampling_rate=sampling_rate)
        if images is not None:
            data["pixel_values"] = self.image_processor(images, return_tensors="np", **kwargs)["pixel_values"]
        return BatchFeature(data, tensor_type=return_tensors)

    def process_audio(self, audio: Any, sampling_rate: int | None = None) -> np.ndarray:
        """Waveform(s) -> normalised fbank, float32 [B, audio_length, num_mel_bins]."""
        waveforms = []
        for index, item in enumerate(_as_batch(audio)):
            waveform, rate = _to_mono_waveform(item, sampling_rate)
            waveform = self._resample_if_needed(waveform, rate)
            if waveform.shape[0] < MIN_AUDIO_SAMPLES:
                raise ValueError(
                    f"audio item {index} has {waveform.shape[0]} samples at 16 kHz; Kaldi fbank needs at least "
                    f"{MIN_AUDIO_SAMPLES} (one 25 ms window)"
                )
            # The official loader removes the clip's DC offset before fbank.
            waveforms.append(waveform - waveform.mean())
        features = self.feature_extractor(waveforms, sampling_rate=SAMPLING_RATE, return_tensors="np")
        return np.asarray(features["input_values"], dtype=np.float32)

    def _resample_if_needed(self, waveform: np.ndarray, rate: int | None) -> np.ndarray:
        if rate is None:
            warnings.warn(
                "LGCavMaeProcessor: no sampling_rate given; assuming 16 kHz. Pass sampling_rate to be safe.",
                stacklevel=3,
            )
            return waveform
        if int(rate) == SAMPLING_RATE:
            return waveform
        import torchaudio.functional

        resampled = torchaudio.functional.resample(torch.from_numpy(waveform), int(rate), SAMPLING_RATE)
        return resampled.numpy()


def add_fbank_noise_and_roll(
    audio_values: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The official pretraining/fine-tuning fbank augmentation, applied after normalisation.

    Per clip: add ``U(0, 1)[T, F] * s / 10`` with one ``s ~ U(0, 1)`` per clip, then roll the time axis
    circularly by a shift drawn uniformly from ``[-T, T)``. Accepts [T, F] or [B, T, F]; returns a new tensor.
    """
    single = audio_values.dim() == 2
    batch = audio_values.unsqueeze(0) if single else audio_values
    num_clips, num_frames, _ = batch.shape
    device, dtype = batch.device, batch.dtype
    scale = torch.rand(num_clips, 1, 1, generator=generator, device=device, dtype=dtype)
    noise = torch.rand(batch.shape, generator=generator, device=device, dtype=dtype)
    noisy = batch + noise * scale / 10
    shifts = torch.randint(-num_frames, num_frames, (num_clips,), generator=generator, device=device)
    # A circular roll by s is a gather with index (t - s) mod T, done for the whole batch at once.
    time_index = (torch.arange(num_frames, device=device)[None, :] - shifts[:, None]) % num_frames
    rolled = torch.gather(noisy, 1, time_index[:, :, None].expand_as(noisy))
    return rolled[0] if single else rolled


# `AutoProcessor.from_pretrained(checkpoint)` finds this class through the checkpoint's config; and saving copies
# this file next to processor_config.json, so `trust_remote_code=True` works without our package installed.
AutoProcessor.register(LGCavMaeConfig, LGCavMaeProcessor, exist_ok=True)
LGCavMaeProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "LGCavMaeProcessor",
    "add_fbank_noise_and_roll",
    "build_feature_extractor",
    "build_image_processor",
]
