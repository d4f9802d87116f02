"""Classification metrics as the official CAV-MAE fine-tuning evaluation computes them.

* single-label (VGGSound): accuracy of the arg-max of softmax scores;
* multi-label (AudioSet): mean over classes of sklearn's ``average_precision_score`` (the official
  ``calculate_stats``). Classes without any positive clip in the evaluated set have no defined AP and are
  left out of the mean (their count is reported); on the full AudioSet eval set every class has positives;
* multi-frame: per-frame sigmoid (multi-label) or softmax (single-label) outputs averaged over frames.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

ProblemType = Literal["single_label_classification", "multi_label_classification"]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def logits_to_scores(logits: np.ndarray, problem_type: ProblemType) -> np.ndarray:
    """Softmax for single-label, sigmoid for multi-label, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    return _sigmoid(logits) if problem_type == "multi_label_classification" else _softmax(logits)


def average_per_clip(logits: np.ndarray, clip_of_row: np.ndarray, problem_type: ProblemType) -> np.ndarray:
    """[R, C] logits of single frames, row ``r`` from clip ``clip_of_row[r]`` -> [N, C] per-clip mean of the softmax
    (single-label) or sigmoid (multi-label) outputs: the official multi-frame result. Clips may have different
    frame counts."""
    scores = logits_to_scores(logits, problem_type)
    clip_of_row = np.asarray(clip_of_row)
    num_clips = int(clip_of_row.max()) + 1
    sums = np.zeros((num_clips, scores.shape[1]))
    np.add.at(sums, clip_of_row, scores)
    return sums / np.bincount(clip_of_row, minlength=num_clips)[:, None]


def average_over_frames(logits_per_frame: np.ndarray, problem_type: ProblemType) -> np.ndarray:
    """[F, N, C] per-frame logits (every clip scored at the same F frame indices) -> [N, C] averaged scores."""
    logits_per_frame = np.asarray(logits_per_frame)
    if logits_per_frame.ndim != 3:
        raise ValueError(f"expected [frames, clips, classes] logits, got shape {logits_per_frame.shape}")
    frames, clips, classes = logits_per_frame.shape
    clip_of_row = np.tile(np.arange(clips), frames)
    return average_per_clip(logits_per_frame.reshape(frames * clips, classes), clip_of_row, problem_type)


def accuracy(scores: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy; ``targets`` are class indices [N] or one-/multi-hot rows [N, C] (arg-max taken)."""
    targets = np.asarray(targets)
    if targets.ndim == 2:
        targets = targets.argmax(axis=1)
    return float(np.mean(np.asarray(scores).argmax(axis=1) == targets))


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> dict[str, float | int]:
    """Class-wise average precision averaged over classes that have at least one positive."""
    from sklearn.metrics import average_precision_score

    scores, targets = np.asarray(scores), np.asarray(targets)
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and multi-hot targets {targets.shape} must both be [N, C]")
    present = targets.sum(axis=0) > 0
    if not present.any():
        raise ValueError("no positive label in targets: mAP is undefined")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns for classes we skip anyway
        per_class = average_precision_score(targets[:, present], scores[:, present], average=None)
    return {
        "mAP": float(np.mean(per_class)),
        "num_classes_scored": int(present.sum()),
        "num_classes_without_positives": int((~present).sum()),
    }


def classification_metrics(scores: np.ndarray, targets: np.ndarray, problem_type: ProblemType) -> dict:
    """Accuracy for single-label problems, mAP for multi-label ones (the official metric of each)."""
    if problem_type == "multi_label_classification":
        return mean_average_precision(scores, targets)
    return {"accuracy": accuracy(scores, targets)}
