"""The torch-free decode pool: job order, the job a dead worker was on, no worker left behind."""

from __future__ import annotations

import multiprocessing
import os
from types import SimpleNamespace

import pytest

from avt_triplets.decode_pool import WorkerDied, iter_ordered


def _square_or_die(job):
    if job.index == 3:
        os._exit(7)  # what a segfault inside FFmpeg looks like
    return job.index * job.index, os.getpid()


def _jobs(n):
    return [SimpleNamespace(index=i) for i in range(n)]


def test_results_come_in_job_order_from_several_processes():
    results = list(iter_ordered(_jobs(7)[:3] + _jobs(7)[4:], _square_or_die, num_workers=2, prefetch=1))
    assert [value for value, _ in results] == [0, 1, 4, 16, 25, 36]
    assert len({pid for _, pid in results}) == 2 and os.getpid() not in {pid for _, pid in results}


def test_a_dead_worker_names_its_job_and_the_pool_stops():
    delivered = []
    with pytest.raises(WorkerDied) as died:
        for value, _ in iter_ordered(_jobs(6), _square_or_die, num_workers=2, prefetch=1):
            delivered.append(value)
    # results the dead worker had queued but not yet flushed to its pipe are lost: the caller restarts after the
    # last delivered one (decoding._iter_pooled), so only a prefix arrives
    assert delivered == [0, 1, 4][: len(delivered)] and died.value.job.index == 3
    assert multiprocessing.active_children() == []


def test_known_results_are_not_run_again_and_closing_early_stops_the_workers():
    known = {3: ("recorded", 0)}
    stream = iter_ordered(_jobs(6), _square_or_die, num_workers=2, prefetch=1, known=known)
    assert [next(stream)[0] for _ in range(5)] == [0, 1, 4, "recorded", 16]
    stream.close()
    assert multiprocessing.active_children() == []
