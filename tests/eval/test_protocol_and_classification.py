"""The per-class retrieval subset, and accuracy / mAP / multi-frame averaging on hand-computed cases."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from eval.classification import accuracy, average_over_frames, classification_metrics, mean_average_precision
from eval.protocol import middle_frame_index, per_class_subset


def test_middle_frame_is_the_official_frame_5_of_10():
    assert middle_frame_index(10) == 5
    assert middle_frame_index(1) == 0
    assert middle_frame_index(9) == 4
    with pytest.raises(ValueError):
        middle_frame_index(0)


def single_label_dataset(counts: dict[str, int]) -> list[list[str]]:
    labels = [[name] for name, count in counts.items() for _ in range(count)]
    order = np.random.default_rng(123).permutation(len(labels))
    return [labels[i] for i in order]


def test_single_label_subset_has_exactly_five_per_class_or_all_of_a_small_class():
    labels = single_label_dataset({"dog": 12, "cat": 5, "bird": 3, "car": 40}) + [[], None]
    chosen = per_class_subset(labels, per_class=5, seed=0)
    per_class = Counter(labels[i][0] for i in chosen)
    assert per_class == {"dog": 5, "cat": 5, "bird": 3, "car": 5}
    assert chosen == sorted(set(chosen))  # sorted, no duplicates
    assert all(labels[i] for i in chosen)  # unlabelled clips never chosen


def test_subset_is_deterministic_per_seed():
    labels = single_label_dataset({f"class{k}": 20 for k in range(30)})
    first = per_class_subset(labels, per_class=5, seed=7)
    assert len(first) == 30 * 5
    assert per_class_subset(labels, per_class=5, seed=7) == first
    assert per_class_subset(labels, per_class=5, seed=8) != first


def test_multi_label_subset_covers_every_class_without_duplicates():
    rng = np.random.default_rng(0)
    classes = [f"c{k}" for k in range(15)]
    labels = [list(rng.choice(classes, size=rng.integers(1, 4), replace=False)) for _ in range(300)]
    chosen = per_class_subset(labels, per_class=5, seed=0)
    coverage = Counter(label for i in chosen for label in labels[i])
    assert all(coverage[c] >= 5 for c in classes)
    assert len(chosen) == len(set(chosen)) <= 5 * len(classes)
    # counting already-chosen clips keeps the subset well below one new clip set per class
    assert len(chosen) < 5 * len(classes)


def test_accuracy_and_map_on_hand_computed_cases():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    assert accuracy(scores, np.array([0, 1, 1, 1])) == pytest.approx(0.5)
    assert accuracy(scores, np.eye(3)[[0, 1, 2, 0]]) == pytest.approx(1.0)

    # class 0: positives at scores 0.9 and 0.2 (ranks 1 and 3 of 0.9, 0.6, 0.2, 0.1) -> AP = (1/1 + 2/3) / 2
    # class 1: positive at 0.5 (rank 1 of 0.5, 0.3, 0.2, 0.1)                         -> AP = 1
    # class 2: positives at 0.0 and 0.7 (ranks 4 and 1 of 0.7, 0.3, 0.1, 0.0)         -> AP = (1 + 2/4) / 2
    targets = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [0, 0, 0]])
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    result = mean_average_precision(scores, targets)
    assert result["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 1.0 + (1 + 2 / 4) / 2) / 3)
    assert result["num_classes_scored"] == 3 and result["num_classes_without_positives"] == 0


def test_classes_without_positives_are_left_out_of_the_mean():
    targets = np.array([[1, 0], [0, 0], [1, 0]])
    scores = np.array([[0.9, 0.5], [0.1, 0.2], [0.8, 0.3]])
    result = mean_average_precision(scores, targets)
    assert result["mAP"] == pytest.approx(1.0)
    assert result["num_classes_scored"] == 1 and result["num_classes_without_positives"] == 1
    with pytest.raises(ValueError, match="no positive"):
        mean_average_precision(scores, np.zeros_like(targets))


def test_multi_frame_averages_probabilities_not_logits():
    # two frames, one clip, two classes
    logits = np.array([[[4.0, 0.0]], [[-3.0, 0.0]]])
    softmax = average_over_frames(logits, "single_label_classification")
    expected_softmax = (np.exp([4, 0]) / np.exp([4, 0]).sum() + np.exp([-3, 0]) / np.exp([-3, 0]).sum()) / 2
    np.testing.assert_allclose(softmax[0], expected_softmax)
    sigmoid = average_over_frames(logits, "multi_label_classification")
    expected_sigmoid = (
        1 / (1 + np.exp(-np.array([4.0, 0.0]))) + 1 / (1 + np.exp(-np.array([-3.0, 0.0])))
    ) / 2
    np.testing.assert_allclose(sigmoid[0], expected_sigmoid)
    # averaging logits would pick class 1 (mean logits 0.5 vs 0); averaging softmax outputs picks class 0
    assert softmax[0].argmax() == 0
    assert classification_metrics(softmax, np.array([0]), "single_label_classification") == {"accuracy": 1.0}
    with pytest.raises(ValueError, match="frames, clips, classes"):
        average_over_frames(logits[0], "single_label_classification")
