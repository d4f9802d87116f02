"""Retrieval ranks and recall@K against hand-built cases and straightforward reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.official_baseline import official_metrics, official_similarity
from eval.retrieval import (
    paired_ranks,
    paired_retrieval,
    ranking_metrics,
    recall_at_k,
    recall_curve,
    retrieval_ranks,
)


def test_perfect_retrieval_ranks_everything_first():
    features = np.eye(6, 16, dtype=np.float32) * 3.0  # scale must not matter
    ranks = retrieval_ranks(features, features)
    assert ranks.tolist() == [0] * 6
    metrics = ranking_metrics(ranks)
    assert metrics["R@1"] == metrics["R@5"] == metrics["R@10"] == 1.0
    assert metrics["MR"] == 1.0


def test_known_similarity_gives_known_ranks():
    # Items on the unit circle; query i points at the angle that makes its ground truth the k-th nearest.
    angles = np.deg2rad([0, 10, 25, 45, 70, 100])
    items = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    # query 0 -> 0 deg (gt item 0 is nearest: rank 0); query 1 -> 36 deg: 45 (9), 25 (11) closer than 10 (26): rank 2
    # query 2 -> 25 deg: exact: rank 0; query 3 -> 0 deg: 0, 10, 25 closer than 45: rank 3
    # query 4 -> 180 deg: 100 closer than 70: rank 1; query 5 -> 0 deg: every other item closer than 100: rank 5
    query_angles = np.deg2rad([0, 36, 25, 0, 180, 0])
    queries = np.stack([np.cos(query_angles), np.sin(query_angles)], axis=1)
    ranks = retrieval_ranks(queries, items)
    assert ranks.tolist() == [0, 2, 0, 3, 1, 5]
    metrics = ranking_metrics(ranks, ks=(1, 2, 5))
    assert metrics["R@1"] == pytest.approx(2 / 6)
    assert metrics["R@2"] == pytest.approx(3 / 6)
    assert metrics["R@5"] == pytest.approx(5 / 6)
    assert metrics["MR"] == pytest.approx(np.median([0, 2, 0, 3, 1, 5]) + 1)


def test_a_permutation_of_items_moves_every_ground_truth():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((20, 8))
    permutation = rng.permutation(20)
    # items[j] = features[permutation[j]]: the exact match of query i sits at position inverse[i]
    items = features[permutation]
    inverse = np.argsort(permutation)
    targets_ranks = retrieval_ranks(features, items, targets=inverse)
    assert targets_ranks.tolist() == [0] * 20
    paired_ranks = retrieval_ranks(features, items)  # wrong pairing: ground truth is item i
    expected = [
        int(
            np.sum(
                official_similarity(features[i : i + 1], items)[0]
                > official_similarity(features[i : i + 1], items[i : i + 1])[0, 0]
            )
        )
        for i in range(20)
    ]
    assert paired_ranks.tolist() == expected
    assert (paired_ranks[permutation != np.arange(20)] > 0).all()


def test_matches_official_double_loop_on_random_features():
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((120, 32)).astype(np.float32)
    visual = (0.6 * audio + rng.standard_normal((120, 32))).astype(np.float32)
    ours = paired_retrieval(audio, visual)
    for direction, (q, k) in {"audio_to_visual": (audio, visual), "visual_to_audio": (visual, audio)}.items():
        expected = official_metrics(official_similarity(q.astype(np.float64), k.astype(np.float64)))
        for name, value in expected.items():
            assert ours[direction][name] == pytest.approx(value, abs=1e-12), (direction, name)
    assert 0 < ours["audio_to_visual"]["R@1"] < 1  # a non-trivial case


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
def test_chunked_equals_unchunked(chunk_size):
    rng = np.random.default_rng(2)
    queries, items = rng.standard_normal((150, 24)), rng.standard_normal((150, 24))
    whole = retrieval_ranks(queries, items, chunk_size=10_000)
    assert np.array_equal(retrieval_ranks(queries, items, chunk_size=chunk_size), whole)
    assert np.array_equal(
        retrieval_ranks(torch.from_numpy(queries), torch.from_numpy(items), chunk_size=chunk_size), whole
    )


def test_ties_take_the_first_tied_position_like_the_official_sort():
    # Query 0 scores items 0 and 1 equally: the official sort puts the ground truth at position 0 (and lists
    # the tie twice); we keep one rank per query, the first tied position.
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    items = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert retrieval_ranks(queries, items).tolist() == [0, 0]
    items = np.array([[1.0, 1.0], [1.0, 0.0]])  # query 1's gt (1,0) is behind (1,1)
    assert retrieval_ranks(queries, items).tolist() == [1, 1]


def test_recall_curve_is_cumulative_recall():
    ranks = np.array([0, 0, 1, 3, 9, 40])
    curve = recall_curve(ranks, max_k=10)
    assert curve.shape == (10,)
    for k in range(1, 11):
        assert curve[k - 1] == pytest.approx(recall_at_k(ranks, k))
    assert curve[0] == pytest.approx(2 / 6) and curve[-1] == pytest.approx(5 / 6)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="as many items"):
        retrieval_ranks(np.ones((3, 4)), np.ones((4, 4)))
    with pytest.raises(ValueError, match="one index per query"):
        retrieval_ranks(np.ones((3, 4)), np.ones((4, 4)), targets=[0, 1])


@pytest.mark.parametrize("chunk_size", [5, 10_000])
def test_paired_ranks_single_matrix_and_chunked_paths_agree(chunk_size):
    rng = np.random.default_rng(3)
    audio = rng.standard_normal((40, 16))
    visual = 0.5 * audio + rng.standard_normal((40, 16))
    audio_to_visual, visual_to_audio = paired_ranks(audio, visual, chunk_size=chunk_size)
    assert np.array_equal(audio_to_visual, retrieval_ranks(audio, visual, chunk_size=7))
    assert np.array_equal(visual_to_audio, retrieval_ranks(visual, audio, chunk_size=7))
    assert not np.array_equal(audio_to_visual, visual_to_audio)  # the two directions really differ
