"""Classification evaluation of a fine-tuned ``LGCavMaeForAudioVisualClassification``.

Like the official fine-tuning script, every clip is scored once per frame index (0..F-1, missing frames falling
back to the clip's last one); the middle frame gives the single-frame result and the average of the per-frame
softmax / sigmoid outputs the multi-frame result. The audio fbank is computed once per clip and reused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from avt_triplets.labels import ClassTable
from eval.classification import average_over_frames, classification_metrics, logits_to_scores
from eval.features import ClipFrameDataset, ModelInputs, autocast_context, make_loader, per_clip_records
from eval.protocol import middle_frame_index

logger = logging.getLogger(__name__)
AUDIO_ONLY_MODES = ("audio", "missing_visual")


def problem_type_of(config: Any) -> str:
    return config.problem_type or "single_label_classification"


def encode_targets(labels: list[list[Any] | None], classes: ClassTable, multi_label: bool):
    """Labels (ids, display names or class indices, through :meth:`ClassTable.indices`) -> class indices
    (single-label) or multi-hot rows; returns (targets, kept row indices, the distinct unknown labels)."""
    num_classes = len(classes)
    kept, targets, unknown = [], [], set()
    for row, row_labels in enumerate(labels):
        ids, missing = classes.indices(row_labels)
        unknown.update(missing)
        if not ids:
            continue
        kept.append(row)
        if multi_label:
            hot = np.zeros(num_classes, dtype=np.float32)
            hot[ids] = 1.0
            targets.append(hot)
        else:
            targets.append(ids[0])
    dtype = np.float32 if multi_label else np.int64
    shape = (0, num_classes) if multi_label else (0,)
    return (
        (np.asarray(targets, dtype=dtype) if targets else np.zeros(shape, dtype)),
        kept,
        sorted(unknown, key=str),
    )


@dataclass
class FramePredictions:
    """Per-frame logits of the clips that decoded, in dataset order, and each clip's middle frame.

    Shapes: F frame positions (1 for a model that ignores images), N clips that decoded, C classes.

    Args:
        clip_ids (list of N str): the clips' ids.
        logits (`[F, N, C]`, float32): the classifier's logits for each frame position (before softmax / sigmoid).
        middle_frame (`[N]`, int64): the frame position of each clip's middle frame (the single-frame protocol).
        rows (list of N int): each clip's row in the evaluated dataset.
        skipped (list of dict): `{"clip_id", "reason"}` of every clip that did not decode.
    """

    clip_ids: list[str]
    logits: np.ndarray
    middle_frame: np.ndarray
    rows: list[int]
    skipped: list[dict[str, str]] = field(default_factory=list)


@torch.inference_mode()
def predict_frames(
    model: Any,
    processor: Any,
    hf_dataset,
    *,
    num_frames: int,
    batch_size: int = 16,
    device: str = "cpu",
    precision: str = "fp32",
    num_workers: int = 0,
    progress: bool = True,
) -> FramePredictions:
    """Logits of every clip for frame indices ``0..num_frames-1`` (one pass if the model ignores images)."""
    audio_only = getattr(model.config, "classifier_mode", "audio_visual") in AUDIO_ONLY_MODES
    frame_indices = [0] if audio_only else list(range(num_frames))
    collate = ModelInputs(processor, len(frame_indices))
    loader = make_loader(ClipFrameDataset(hf_dataset, frame_indices), batch_size, num_workers, collate)

    def compute(batch: dict[str, Any]) -> dict[str, np.ndarray]:
        audio_values = batch["audio_values"].to(device)
        frame_logits = []
        for pixel_values in batch["pixel_values"]:  # one frame position at a time, the fbank reused
            with autocast_context(device, precision):
                logits = model(audio_values=audio_values, pixel_values=pixel_values.to(device)).logits
            frame_logits.append(logits.float().cpu().numpy())
        return {"logits": np.stack(frame_logits, axis=1)}  # [B, F, C]

    decoded, skipped = per_clip_records(loader, compute, desc="classify", progress=progress)
    return FramePredictions(
        clip_ids=[r["clip_id"] for r in decoded],
        logits=np.stack([r["logits"] for r in decoded], axis=1),  # [F, N, C]
        middle_frame=np.asarray(
            [0 if audio_only else min(middle_frame_index(r["num_frames"]), num_frames - 1) for r in decoded]
        ),
        rows=[r["index"] for r in decoded],
        skipped=skipped,
    )


def evaluate_predictions(
    predictions: FramePredictions, targets: np.ndarray, problem_type: str
) -> dict[str, Any]:
    """Single-frame (each clip's middle frame) and multi-frame (averaged outputs) metrics."""
    clips = np.arange(predictions.logits.shape[1])
    middle_logits = predictions.logits[predictions.middle_frame, clips]
    single = classification_metrics(logits_to_scores(middle_logits, problem_type), targets, problem_type)
    multi = classification_metrics(
        average_over_frames(predictions.logits, problem_type), targets, problem_type
    )
    return {"single_frame": single, "multi_frame": multi}
