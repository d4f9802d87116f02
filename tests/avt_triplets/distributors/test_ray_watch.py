"""Issue 18 §12 and §15: what the driver logs while a Ray pipeline runs, checked against a scripted node table
and clock (the real cluster: tests/avt_triplets/distributors/test_ray_cluster.py)."""

from __future__ import annotations

import logging

from avt_triplets.distributors.ray_watch import PipelineWatch


class ScriptedRay:
    """The calls PipelineWatch makes, answered from a node table the test edits."""

    def __init__(self):
        self.table = [
            {"NodeID": "a" * 56, "Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 1.0}},
            {"NodeID": "b" * 56, "Alive": True, "NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 1.0}},
        ]

    def nodes(self):
        return [dict(node) for node in self.table]

    def available_resources(self):
        return {"CPU": 0.0}

    def cluster_resources(self):
        return {"CPU": 2.0}

    def get_runtime_context(self):
        raise ConnectionError("no GCS here")  # pending demands unknown: the line still says what is free


def test_a_node_that_dies_is_reported_once_in_one_line(caplog):
    ray = ScriptedRay()
    watch = PipelineWatch(ray, chunks=4)
    ray.table[1].update(Alive=False, Resources={})
    with caplog.at_level(logging.WARNING):
        watch.check_nodes()
        watch.check_nodes()
    assert [r.getMessage() for r in caplog.records] == [
        "lost Ray node 10.0.0.2 (1 CPU, 0 GPU, id bbbbbbbb): Ray retries its tasks and restarts its actors on "
        "the other nodes"
    ]


def test_a_stall_is_reported_after_the_threshold_and_again_after_as_long(caplog):
    now = [0.0]
    watch = PipelineWatch(ScriptedRay(), chunks=4, stall_seconds=300, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        for now[0] in (100.0, 299.0):
            watch.check_stall()
        assert caplog.records == []
        watch.progressed()  # a chunk at 299 s: the wait starts again
        for now[0] in (598.0, 599.0, 700.0, 899.0):
            watch.check_stall()
    assert [r.getMessage() for r in caplog.records] == [
        "no chunk finished for 300 s (3 chunks left); Ray is waiting to place: nothing (the tasks run, slowly); "
        "free in the cluster: CPU 0 of 2",
        "no chunk finished for 600 s (3 chunks left); Ray is waiting to place: nothing (the tasks run, slowly); "
        "free in the cluster: CPU 0 of 2",
    ]
