"""Cross-modal retrieval metrics: recall@K and median rank from paired embeddings.

Clip ``i``'s query is paired with item ``i``. A query's rank is the number of items scoring strictly higher
than its ground-truth item under cosine similarity (0 = retrieved first). Without ties this is exactly the
official CAV-MAE ``compute_metrics`` (position of the ground truth after a descending sort). With ties the
official code counts every tied position as a separate hit (and so has more ranks than queries); we keep
one rank per query, the first tied position, which is what the official value is for a tie-free row.

Similarities are one matrix product per chunk of queries on the chosen device (one product for both
directions up to ``chunk_size`` clips), so N = 1,545 takes a fraction of a second on CPU instead of the
official Python double loop's minute or more (``bench/bench_retrieval.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

DEFAULT_KS = (1, 5, 10)


def _as_tensor(x: np.ndarray | torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    tensor = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    return tensor.to(device=device or tensor.device, dtype=torch.float32)


def l2_normalize(x: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """Rows scaled to unit L2 norm (what the official script does before the cosine matrix)."""
    return torch.nn.functional.normalize(_as_tensor(x, device), dim=-1)


def retrieval_ranks(
    queries: np.ndarray | torch.Tensor,
    items: np.ndarray | torch.Tensor,
    targets: Sequence[int] | np.ndarray | None = None,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """0-based rank of each query's ground-truth item among ``items`` by cosine similarity.

    Args:
        queries: [N, D] query embeddings (normalised here).
        items: [M, D] item embeddings (normalised here).
        targets: ground-truth item index per query; defaults to ``i`` (paired data, M == N).
        chunk_size: queries per similarity block, so memory is ``chunk_size * M`` floats whatever N is.
        device: where to compute (``"cuda"`` for large N); defaults to the inputs' device.
    """
    query_vectors = l2_normalize(queries, device)
    item_vectors = l2_normalize(items, query_vectors.device)
    num_queries = query_vectors.shape[0]
    if targets is None:
        if item_vectors.shape[0] != num_queries:
            raise ValueError(
                f"paired retrieval needs as many items as queries ({item_vectors.shape[0]} vs {num_queries})"
            )
        target_index = torch.arange(num_queries, device=query_vectors.device)
    else:
        target_index = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=query_vectors.device)
        if target_index.shape != (num_queries,):
            raise ValueError(f"targets must have one index per query, got shape {tuple(target_index.shape)}")
    ranks = torch.empty(num_queries, dtype=torch.long, device=query_vectors.device)
    for start in range(0, num_queries, chunk_size):
        stop = min(start + chunk_size, num_queries)
        similarity = query_vectors[start:stop] @ item_vectors.T
        # The ground-truth score is read from the same matrix, so it is compared at identical rounding.
        positive = similarity.gather(1, target_index[start:stop, None])
        ranks[start:stop] = (similarity > positive).sum(dim=1)
    return ranks.cpu().numpy()


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of queries whose ground truth is among the top ``k``."""
    return float(np.mean(np.asarray(ranks) < k))


def recall_curve(ranks: np.ndarray, max_k: int) -> np.ndarray:
    """recall@K for K = 1..max_k (index ``K - 1``)."""
    ranks = np.asarray(ranks)
    counts = np.bincount(np.minimum(ranks, max_k), minlength=max_k + 1)[:max_k]
    return np.cumsum(counts) / len(ranks)


def ranking_metrics(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """``R@K`` as fractions (like the official script), median rank 1-based (``MR``), mean rank, count."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError("no queries to score")
    metrics = {f"R@{k}": recall_at_k(ranks, k) for k in ks}
    metrics["MR"] = float(np.median(ranks) + 1)
    metrics["mean_rank"] = float(np.mean(ranks) + 1)
    metrics["num_queries"] = int(ranks.size)
    return metrics


def paired_ranks(
    audio: np.ndarray | torch.Tensor,
    visual: np.ndarray | torch.Tensor,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of audio->visual and visual->audio retrieval for paired clips.

    Up to ``chunk_size`` clips, one similarity matrix serves both directions (visual->audio is its transpose,
    exactly as the official float64 cosines are symmetric); beyond, each direction is computed in chunks.
    """
    audio_vectors = l2_normalize(audio, device)
    visual_vectors = l2_normalize(visual, audio_vectors.device)
    num_clips = audio_vectors.shape[0]
    if visual_vectors.shape[0] != num_clips:
        raise ValueError(
            f"paired retrieval needs as many visual as audio features ({visual_vectors.shape[0]} vs {num_clips})"
        )
    if num_clips > chunk_size:
        return (
            retrieval_ranks(audio_vectors, visual_vectors, chunk_size=chunk_size),
            retrieval_ranks(visual_vectors, audio_vectors, chunk_size=chunk_size),
        )
    similarity = audio_vectors @ visual_vectors.T
    positive = similarity.diagonal()
    audio_to_visual = (similarity > positive[:, None]).sum(dim=1)
    visual_to_audio = (similarity > positive[None, :]).sum(dim=0)
    return audio_to_visual.cpu().numpy(), visual_to_audio.cpu().numpy()


def paired_retrieval(
    audio: np.ndarray | torch.Tensor,
    visual: np.ndarray | torch.Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int = 4096,
    device: torch.device | str | None = None,
) -> dict[str, dict[str, float]]:
    """Audio->visual and visual->audio metrics for paired clips (the CAV-MAE / LG-CAV-MAE evaluation)."""
    audio_to_visual, visual_to_audio = paired_ranks(audio, visual, chunk_size=chunk_size, device=device)
    return {
        "audio_to_visual": ranking_metrics(audio_to_visual, ks),
        "visual_to_audio": ranking_metrics(visual_to_audio, ks),
    }
