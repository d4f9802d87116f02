"""Collators: decoded clips -> model inputs, through ``LGCavMaeProcessor`` (one preprocessing everywhere).

They run inside DataLoader workers. Every random draw uses the per-sample seed that ``ClipDataset`` put in
the example, so a batch is a pure function of its keys (see ``avt_training/data.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from avt_training.augment import apply_specaugment, normalised_fbank_value

logger = logging.getLogger(__name__)

# What the official loader substitutes for an unreadable clip: a constant fbank of 0.01 (before
# normalisation) and a constant 0.01 image (after normalisation).
FAILED_FBANK_RAW_VALUE = 0.01
FAILED_IMAGE_VALUE = 0.01


def _process(processor, examples: list[dict[str, Any]], waveforms: list[np.ndarray | None], images: list):
    """Run the processor on the decodable items and fill the others with the official constants."""
    config_frames = processor.audio_length
    fe = processor.feature_extractor
    num_bins = int(fe.num_mel_bins)
    audio_ok = [i for i, w in enumerate(waveforms) if w is not None]
    image_ok = [i for i, im in enumerate(images) if im is not None]
    audio = torch.full(
        (len(examples), config_frames, num_bins), normalised_fbank_value(processor, FAILED_FBANK_RAW_VALUE)
    )
    pixels = None
    if audio_ok:
        try:
            values = processor(
                audio=[waveforms[i] for i in audio_ok], sampling_rate=16_000, return_tensors="pt"
            )
            audio[audio_ok] = values["audio_values"]
        except ValueError:  # one clip too short for Kaldi fbank: process one by one to isolate it
            for i in audio_ok:
                try:
                    values = processor(audio=[waveforms[i]], sampling_rate=16_000, return_tensors="pt")
                    audio[i] = values["audio_values"][0]
                except ValueError as error:
                    examples[i]["decode_error"] = f"audio: {error}"
    if image_ok:
        values = processor(images=[images[i] for i in image_ok], return_tensors="pt")["pixel_values"]
        pixels = torch.full((len(examples), *values.shape[1:]), FAILED_IMAGE_VALUE, dtype=values.dtype)
        pixels[image_ok] = values
    else:
        size = processor.image_processor.crop_size
        pixels = torch.full((len(examples), 3, size["height"], size["width"]), FAILED_IMAGE_VALUE)
    return audio, pixels


def _decode_failures(examples: list[dict[str, Any]]) -> torch.Tensor:
    failed = [bool(e.get("decode_error")) for e in examples]
    for example, bad in zip(examples, failed):
        if bad:
            logger.warning("clip %s substituted: %s", example["index"], example["decode_error"])
    return torch.tensor(failed, dtype=torch.bool)


@dataclass
class PretrainingCollator:
    """Clips -> ``audio_values``, ``pixel_values``, ``text_embeds`` and the MAE mask noise.

    ``audio_noise_augment`` is the official pretraining augmentation (fbank noise + circular time shift).
    ``num_audio_patches``/``num_visual_patches`` set, the random masking noise is drawn here from the sample's
    seed (the model keeps the patches with the smallest noise), so masks are reproducible on resume.
    ``decode_failed`` marks clips replaced by the official constant inputs; the loop counts them.
    """

    processor: Any
    audio_noise_augment: bool = True
    num_audio_patches: int | None = None
    num_visual_patches: int | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        from modeling_lgcavmae.processing_lgcavmae import add_fbank_noise_and_roll

        generators = [torch.Generator().manual_seed(e["seed"]) for e in examples]
        audio, pixels = _process(
            self.processor, examples, [e["waveform"] for e in examples], [e["image"] for e in examples]
        )
        if self.audio_noise_augment:
            audio = torch.stack([add_fbank_noise_and_roll(a, generator=g) for a, g in zip(audio, generators)])
        batch = {"audio_values": audio, "pixel_values": pixels}
        if "text_embedding" in examples[0]:
            text = torch.from_numpy(np.stack([e["text_embedding"] for e in examples]))
            if "visual_text_embedding" in examples[0]:  # --text-source modality: (L_a2t's, L_v2t's) texts
                text = (text, torch.from_numpy(np.stack([e["visual_text_embedding"] for e in examples])))
            batch["text_embeds"] = text
        if self.num_audio_patches:
            batch["audio_noise"] = torch.stack(
                [torch.rand(self.num_audio_patches, generator=g) for g in generators]
            )
        if self.num_visual_patches:
            batch["visual_noise"] = torch.stack(
                [torch.rand(self.num_visual_patches, generator=g) for g in generators]
            )
        batch["decode_failed"] = _decode_failures(examples)
        return batch


def label_targets(
    positives: list[int],
    num_classes: int,
    label_smoothing: float = 0.0,
    mix: tuple[list[int], float] | None = None,
) -> np.ndarray:
    """Target vector as the official loader builds it.

    Without mixup, every class starts at ``ls / K`` and the positives are *set* to ``1 - ls``. With mixup
    (partner positives, lambda), the base is ``ls / K`` and ``lambda (1 - ls)`` resp. ``(1 - lambda)(1 - ls)``
    are *added* at the clip's and the partner's positives.
    """
    target = np.full(num_classes, label_smoothing / num_classes, dtype=np.float32)
    if mix is None:
        target[positives] = 1.0 - label_smoothing
        return target
    partner_positives, lam = mix
    for index in positives:
        target[index] += lam * (1.0 - label_smoothing)
    for index in partner_positives:
        target[index] += (1.0 - lam) * (1.0 - label_smoothing)
    return target


def mix_waveforms(first: np.ndarray, second: np.ndarray, lam: float) -> np.ndarray:
    """Official waveform mixup: the partner is zero-padded or cut to the first's length, both DC-removed."""
    first = first - first.mean()
    second = second - second.mean()
    if second.shape[0] < first.shape[0]:
        second = np.pad(second, (0, first.shape[0] - second.shape[0]))
    second = second[: first.shape[0]]
    mixed = lam * first + (1.0 - lam) * second
    return (mixed - mixed.mean()).astype(np.float32)


@dataclass
class ClassificationCollator:
    """Clips with labels -> ``audio_values``, ``pixel_values``, ``labels`` (float targets) for fine-tuning.

    Mixup partners come from ``MixupClipDataset`` (``mix_*`` keys); images are mixed with the same lambda
    after preprocessing, as the official loader does. SpecAugment (``freq_mask``/``time_mask``, torchaudio)
    and the noise + shift augmentation apply in training only: build an evaluation collator with them off.
    """

    processor: Any
    label2id: dict[str, int]
    label_smoothing: float = 0.0
    freq_mask: int = 0
    time_mask: int = 0
    audio_noise_augment: bool = False

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        from modeling_lgcavmae.processing_lgcavmae import add_fbank_noise_and_roll

        waveforms, targets = [], []
        num_classes = max(self.label2id.values(), default=-1) + 1  # label2id may hold aliases (mid and name)
        for example in examples:
            positives = self.label_ids(example["labels"])
            waveform = example["waveform"]
            if "mix_lambda" in example and waveform is not None and example["mix_waveform"] is not None:
                lam = float(example["mix_lambda"])
                waveform = mix_waveforms(waveform, example["mix_waveform"], lam)
                mix = (self.label_ids(example["mix_labels"]), lam)
            else:
                mix = None
            waveforms.append(waveform)
            targets.append(label_targets(positives, num_classes, self.label_smoothing, mix))
        audio, pixels = _process(self.processor, examples, waveforms, [e["image"] for e in examples])
        mixed = [i for i, e in enumerate(examples) if "mix_lambda" in e and e.get("mix_image") is not None]
        if mixed:
            partner_pixels = self.processor(
                images=[examples[i]["mix_image"] for i in mixed], return_tensors="pt"
            )
            lam = torch.tensor([float(examples[i]["mix_lambda"]) for i in mixed]).view(-1, 1, 1, 1)
            pixels[mixed] = lam * pixels[mixed] + (1 - lam) * partner_pixels["pixel_values"]
        generators = [torch.Generator().manual_seed(e["seed"]) for e in examples]
        if self.freq_mask or self.time_mask:
            audio = torch.stack(
                [
                    apply_specaugment(a, self.processor, self.freq_mask, self.time_mask, g)
                    for a, g in zip(audio, generators)
                ]
            )
        if self.audio_noise_augment:
            audio = torch.stack([add_fbank_noise_and_roll(a, generator=g) for a, g in zip(audio, generators)])
        return {
            "audio_values": audio,
            "pixel_values": pixels,
            "labels": torch.from_numpy(np.stack(targets)),
        }

    def label_ids(self, labels: list[str]) -> list[int]:
        """Class indices of the labels the class list holds. Unknown labels are ignored (`avt finetune` counts and
        reports them once, up front); a clip without any known label has no target, so it is an error here
        (fine-tuning skips such clips before training)."""
        ids = [self.label2id[label] for label in labels if label in self.label2id]
        if not ids:
            raise ValueError(
                f"clip has no label in the class list: {list(labels)} are not in the class list "
                f"({len(self.label2id)} names)"
            )
        return ids
