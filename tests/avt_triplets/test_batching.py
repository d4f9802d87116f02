"""Batch backoff: a failing batch is retried in halves; only items failing alone are given up."""

from __future__ import annotations

import pytest

from avt_triplets.batching import BackoffBatcher, Failed, InputRejected, ModelFailure


def test_failing_item_is_isolated_and_others_keep_their_results():
    calls = []

    def square(batch):
        calls.append(list(batch))
        if 13 in batch:
            raise InputRejected("bad input 13")
        return [x * x for x in batch]

    results = BackoffBatcher(square, batch_size=8, name="square")(list(range(20)))
    assert results[13] == Failed("InputRejected: bad input 13")
    assert [r for i, r in enumerate(results) if i != 13] == [i * i for i in range(20) if i != 13]
    assert [len(c) for c in calls[:2]] == [8, 8]  # full batches first
    assert [13] in calls  # bisected down to the culprit alone


def test_out_of_memory_shrinks_the_batch_for_good():
    sizes = []

    def model(batch):
        sizes.append(len(batch))
        if len(batch) > 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [str(x) for x in batch]

    batcher = BackoffBatcher(model, batch_size=16, name="captioner")
    assert batcher(list(range(40))) == [str(x) for x in range(40)]
    assert batcher.batch_size <= 3
    first_failures = sizes.index(max(s for s in sizes if s <= 3))
    assert all(s <= 3 for s in sizes[first_failures:])  # no more full-size attempts after the OOM


def test_a_model_error_on_a_single_item_stops_instead_of_failing_every_item():
    calls = []

    def broken(batch):
        calls.append(len(batch))
        raise RuntimeError("weights are garbage")

    with pytest.raises(ModelFailure, match="broken failed on a single item: RuntimeError: weights") as caught:
        BackoffBatcher(broken, batch_size=8, name="broken")(list(range(20)))
    assert caught.value.index == 0 and calls == [8, 4, 2, 1]  # halved down to one item, then stopped


def test_reset_restores_the_batch_size_an_oom_reduced():
    def model(batch):
        if len(batch) > 2:
            raise MemoryError("out of memory")
        return list(batch)

    batcher = BackoffBatcher(model, batch_size=8, name="model")
    assert batcher(list(range(8))) == list(range(8)) and batcher.batch_size == 2
    batcher.reset()
    assert batcher.batch_size == 8


def test_wrong_result_count_counts_as_failure():
    batcher = BackoffBatcher(lambda batch: batch[:1], batch_size=4, name="broken")
    assert batcher([1, 2, 3, 4]) == [1, 2, 3, 4]  # halves down to size 1, where one result is right
