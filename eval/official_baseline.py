"""The official CAV-MAE retrieval math (``src/retrieval.py``: ``get_sim_mat`` and ``compute_metrics``), as written.

Kept for two jobs: the baseline that ``bench/bench_retrieval.py`` times our vectorised path against, and the
independent oracle the retrieval tests compare ``eval.retrieval`` with. Never used for real evaluations: the Python
double loop is O(N^2) interpreted work.
"""

from __future__ import annotations

import numpy as np


def official_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of every (query, item) pair in a Python double loop, float64, like ``get_sim_mat``."""
    sim = np.empty((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            sim[i, j] = np.dot(a[i], b[j]) / (np.linalg.norm(a[i]) * np.linalg.norm(b[j]))
    return sim


def official_metrics(sim: np.ndarray) -> dict[str, float]:
    """``compute_metrics``: position of the diagonal after a descending sort of each row."""
    sorted_rows = np.sort(-sim, axis=1)
    positions = np.where(sorted_rows - np.diag(-sim)[:, None] == 0)[1]
    return {
        "R@1": float(np.sum(positions == 0)) / len(positions),
        "R@5": float(np.sum(positions < 5)) / len(positions),
        "R@10": float(np.sum(positions < 10)) / len(positions),
        "MR": float(np.median(positions) + 1),
    }
