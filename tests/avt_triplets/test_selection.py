"""Best caption, exact top-k% and seeded random-k% subsets (avt_triplets.selection)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from avt_triplets import selection


def score_table(ids: list[str], scores, with_key: bool = True) -> selection.ScoreTable:
    columns = {"clip_id": pa.array(ids, pa.string()), "clap_score": pa.array(scores, pa.float32())}
    if with_key:
        columns["sample_key"] = pa.array([selection.sample_key(c) for c in ids], pa.float64())
    return selection.ScoreTable(pa.table(columns), [])


def reference_top(ids, scores, n) -> set[str]:
    scores32 = np.asarray(scores, dtype=np.float32)
    return {c for _, c in sorted(zip((-scores32).tolist(), ids))[:n]}


def test_best_caption_is_argmax_and_first_on_ties():
    assert selection.best_caption([0.1, 0.7, 0.3]) == 1
    assert selection.best_caption([0.2, 0.9, 0.9, 0.1]) == 1
    assert selection.best_caption([-0.5]) == 0
    assert selection.best_caption(np.array([0.1, np.nan, 0.4], dtype=np.float32)) == 2
    with pytest.raises(ValueError):
        selection.best_caption([])


@pytest.mark.parametrize(
    ("k", "total", "expected"),
    [(30, 10, 3), (50, 5, 3), (10, 4, 0), (10, 15, 2), (30, 7, 2), (2.5, 40, 1), (100, 13, 13), (50, 0, 0)],
)
def test_subset_size_rounds_half_up(k, total, expected):
    assert selection.subset_size(k, total) == expected


@pytest.mark.parametrize("k", [0, -5, 101])
def test_subset_size_rejects_bad_percentages(k):
    with pytest.raises(ValueError):
        selection.subset_size(k, 10)


@pytest.mark.parametrize("k", [10, 30, 50, 33, 2.5])
def test_top_k_is_exact_with_ties_broken_by_clip_id(k):
    rng = np.random.default_rng(1)
    ids = [f"clip-{i:04d}" for i in rng.permutation(500)]
    scores = np.round(rng.uniform(-0.2, 0.6, 500) * 10) / 10  # 9 distinct values: ties everywhere
    table = score_table(ids, scores)
    subset = selection.select_top(table, k)
    n = selection.subset_size(k, 500)
    assert subset.size == n
    chosen = selection.subset_clip_ids(table, subset)
    assert len(chosen) == n
    assert chosen == reference_top(ids, scores, n)
    # The boundary tie group is split: some clips at the threshold score are in, some out.
    threshold = subset.threshold["clap_score"]
    at_threshold = {c for c, s in zip(ids, np.float32(scores)) if s == np.float32(threshold)}
    assert at_threshold & chosen and at_threshold - chosen


def test_top_k_threshold_is_the_quantile():
    rng = np.random.default_rng(2)
    scores = rng.normal(0.3, 0.1, 1000).astype(np.float32)
    ids = [f"c{i}" for i in range(1000)]
    table = score_table(ids, scores)
    for k in (10, 30, 50):
        subset = selection.select_top(table, k)
        # distinct scores: (N-1)(1-k/100) is fractional, so numpy's "higher" quantile is the n-th best score
        assert subset.threshold["clap_score"] == pytest.approx(
            float(np.quantile(scores, 1 - k / 100, method="higher")), abs=0
        )
        chosen = selection.subset_clip_ids(table, subset)
        chosen_scores = scores[[int(c[1:]) for c in chosen]]
        others = np.delete(scores, [int(c[1:]) for c in chosen])
        assert chosen_scores.min() >= others.max()
        assert np.mean(scores >= subset.threshold["clap_score"]) == pytest.approx(k / 100)


def test_random_k_size_determinism_and_seeds():
    rng = np.random.default_rng(3)
    ids = [f"v{i:05d}" for i in range(2000)]
    scores = rng.uniform(0, 1, 2000)
    table = score_table(ids, scores)
    samples = {}
    for seed in range(6):
        subset = selection.select_random(table, 30, seed=seed)
        chosen = selection.subset_clip_ids(table, subset)
        assert subset.size == len(chosen) == 600
        assert chosen == selection.subset_clip_ids(table, selection.select_random(table, 30, seed=seed))
        samples[seed] = chosen
    assert len({frozenset(s) for s in samples.values()}) == 6
    # Seeds at least cover both the wrapping and the non-wrapping window.
    wraps = {len(selection.select_random(table, 30, seed=s).filters) == 3 for s in range(6)}
    assert wraps == {True, False}
    # Independent of the score: the sample's mean score is near the population's (0.5 ± ~3 s.e.).
    for chosen in samples.values():
        mean = np.mean([scores[int(c[1:])] for c in chosen])
        assert abs(mean - 0.5) < 3 * math.sqrt(1 / 12 / 600)
    # Same size as the top-k subset.
    assert selection.select_top(table, 30).size == 600


def test_random_k_does_not_depend_on_row_order():
    ids = [f"r{i}" for i in range(300)]
    scores = np.linspace(0, 1, 300)
    forward = score_table(ids, scores)
    backward = score_table(ids[::-1], scores[::-1])
    for k in (10, 50):
        a = selection.subset_clip_ids(forward, selection.select_random(forward, k, seed=4))
        b = selection.subset_clip_ids(backward, selection.select_random(backward, k, seed=4))
        assert a == b


def test_random_k_is_exact_when_sample_keys_tie():
    # Duplicate keys can only come from hash collisions; force them to check the clip_id tie-break.
    ids = [f"t{i:03d}" for i in range(100)]
    keys = np.repeat(np.linspace(0.05, 0.95, 10), 10)
    table = selection.ScoreTable(
        pa.table({"clip_id": ids, "clap_score": pa.array(np.zeros(100), pa.float32()), "sample_key": keys}),
        [],
    )
    for seed in range(4):
        for k in (5, 33, 77):
            subset = selection.select_random(table, k, seed=seed)
            assert (
                len(selection.subset_clip_ids(table, subset)) == subset.size == selection.subset_size(k, 100)
            )


def test_random_k_without_sample_key_falls_back_to_id_list():
    ids = [f"x{i}" for i in range(50)]
    table = score_table(ids, np.arange(50) / 50, with_key=False)
    subset = selection.select_random(table, 30, seed=1)
    assert subset.filters[0][0][:2] == ["clip_id", "in"]
    chosen = selection.subset_clip_ids(table, subset)
    assert len(chosen) == 15
    assert chosen == selection.subset_clip_ids(table, selection.select_random(table, 30, seed=1))
    assert chosen != selection.subset_clip_ids(table, selection.select_random(table, 30, seed=2))


def test_empty_subset_matches_nothing():
    table = score_table(["a", "b", "c", "d"], [0.1, 0.2, 0.3, 0.4])
    for subset in (selection.select_top(table, 10), selection.select_random(table, 10)):
        assert subset.size == 0
        assert selection.subset_clip_ids(table, subset) == set()


def test_nan_scores_are_never_selected():
    table = score_table(["a", "b", "c", "d", "e"], [0.1, float("nan"), 0.3, 0.4, 0.2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        subset = selection.select_top(table, 50)
    assert any("NaN" in str(w.message) for w in caught)
    assert subset.total == 4
    assert selection.subset_clip_ids(table, subset) == {"c", "d"}


def test_unfinished_shards_are_excluded_with_a_warning(small_output):
    with pytest.warns(UserWarning, match="unfinished"):
        built = selection.build_subsets(small_output.root, top=[30], random=[30], seed=0)
    assert built.total == len(small_output.scores) == 34
    assert built.excluded_files == ["data/shard-00003.parquet"]
    scores = selection.read_scores(small_output.root, [small_output.root / f for f in built.data_files])
    assert set(scores.table.column("clip_id").to_pylist()) == set(small_output.scores)
    top30 = built.get("top30")
    assert top30.size == 10
    ids = list(small_output.scores)
    assert selection.subset_clip_ids(scores, top30) == reference_top(
        ids, [small_output.scores[c] for c in ids], 10
    )


def test_subsets_json_round_trip(small_output):
    with pytest.warns(UserWarning):
        built = selection.build_subsets(small_output.root, top=[10, 30], random=[30], seed=5)
    selection.write_subsets(small_output.root, built)
    again = selection.read_subsets(small_output.root)
    assert again == built
    assert [s.name for s in again.subsets] == ["top10", "top30", "random30"]
    assert again.get("random30").seed == 5


def test_duplicate_clip_ids_are_refused(tmp_path):
    path = tmp_path / "shard-00000.parquet"
    pq.write_table(pa.table({"clip_id": ["a", "a"], "clap_score": pa.array([0.1, 0.2], pa.float32())}), path)
    with pytest.raises(ValueError, match="unique"):
        selection.read_scores(tmp_path, [path])
