"""The test files that take longest, longest first, so the test command starts them first.

``scripts/test.sh`` runs two pytest-xdist workers with ``--dist loadfile --no-loadscope-reorder``: each file goes
whole to one worker, handed out in collection order (xdist's default order, by number of tests, would start the
Ray files, which hold few but long tests, last, and one of them would run alone at the end). ``tests/conftest.py``
moves these files to the front of the collection; every other file keeps its place behind them. Seconds are one
worker's time for the whole file (2-core machine, two workers), from ``--durations``; refresh the list when a file
grows past the last entry. A listed path that no longer exists fails tests/repository/test_slow_files.py.
"""

from __future__ import annotations

SLOW_FILES: tuple[str, ...] = (
    "tests/avt_triplets/distributors/test_ray_cluster.py",  # ~190 s: a 2-3 node cluster, one generate run
    "tests/avt_triplets/distributors/test_processes.py",  # ~170 s: accelerate, SIGKILL / Ctrl-C runs
    "tests/avt_triplets/distributors/test_ray_data.py",  # ~170 s: killed Ray driver and resume
    "tests/avt_recipes/test_tiny_recipes.py",  # ~110 s: every recipe with --tiny
    "tests/avt_training/slava/test_train.py",  # ~70 s
    "tests/bench/test_gpu_suite.py",  # ~65 s
    "tests/avt_triplets/commands/test_demo.py",  # ~60 s
    "tests/avt_training/test_interrupts.py",
    "tests/avt_training/test_cli.py",
    "tests/avt_triplets/test_caption_compile.py",
    "tests/avt_triplets/test_vlm_family_captions.py",
    "tests/avt_data/test_parquet_reading.py",
    "tests/modeling_slava/test_model.py",
    "tests/eval/test_parallel_evaluation.py",
    "tests/avt_training/test_learning.py",
    "tests/avt_triplets/test_object_storage.py",
    "tests/modeling_slava/test_hub.py",
)


def slow_first(nodeid: str) -> int:
    """Sort key of a test: its file's place in :data:`SLOW_FILES`, every other file after them (a stable sort
    keeps each file's tests together and in order)."""
    path = nodeid.split("::", 1)[0]
    return _RANK.get(path, len(SLOW_FILES))


_RANK = {path: rank for rank, path in enumerate(SLOW_FILES)}
