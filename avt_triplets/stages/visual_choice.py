"""The visual scorer's step (``--visual-scorer``): a captioned chunk -> the same chunk with, for every decodable
clip, the frame whose caption the CLIP-style model matches best to that frame (``CaptionedChunk.visual_choice``);
the scorer then writes that caption as ``visual_caption`` (``caption`` stays CLAP's choice).

The (frame, caption) pairs are the clip's stored JPEG frames with their own captions, scored in batches of
``batch_size`` pairs in the chunk's order (boundaries fixed by content: a resumed shard is byte-identical). An empty
caption is never chosen; a clip whose pairs failed or are all empty keeps CLAP's choice (None), and a clip whose
captions failed is failed by the scorer as before.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from avt_triplets import selection
from avt_triplets.batching import BackoffBatcher, Failed, call_batched
from avt_triplets.stages.av_captions import stored_frames
from avt_triplets.stages.reader import Chunk
from avt_triplets.stages.worker import CaptionedChunk


class VisualChoiceStep:
    """Which frame caption is each clip's visual caption, by a CLIP-style (frame, caption) score."""

    def __init__(self, scorer: Any, batch_size: int):
        self.scorer = scorer
        self.batcher = BackoffBatcher(self._score, batch_size, "visual scorer")

    def _score(self, pairs: list[tuple[np.ndarray, str]]) -> list[float]:
        return self.scorer.score_pairs([f for f, _ in pairs], [c for _, c in pairs]).tolist()

    def _pairs(self, captioned: CaptionedChunk) -> tuple[list[tuple[np.ndarray, str]], list[tuple[int, int]]]:
        pairs, owners = [], []
        for i, (item, captions) in enumerate(zip(captioned.items, captioned.captions)):
            if captions is None or any(isinstance(c, Failed) for c in captions):
                continue
            for k, (frame, caption) in enumerate(zip(stored_frames(item.frames_jpeg), captions)):
                if not selection.is_empty_caption(caption):
                    pairs.append((frame, caption))
                    owners.append((i, k))
        return pairs, owners

    def __call__(self, chunk: Chunk, captioned: CaptionedChunk) -> CaptionedChunk:
        self.batcher.reset()
        started = time.perf_counter()
        pairs, owners = self._pairs(captioned)
        scores = call_batched(self.batcher, pairs, lambda j: f"frame {owners[j][1]} of clip {owners[j][0]}")
        best: dict[int, tuple[float, int]] = {}
        for (i, k), score in zip(owners, scores):
            if not isinstance(score, Failed) and np.isfinite(score) and (i not in best or score > best[i][0]):
                best[i] = (score, k)  # strictly greater: the first frame wins a tie
        choice = [best[i][1] if i in best else None for i in range(len(captioned.items))]
        seconds = dict(captioned.seconds)
        seconds["visual_score"] = seconds.get("visual_score", 0.0) + time.perf_counter() - started
        return replace(captioned, visual_choice=choice, seconds=seconds)


__all__ = ["VisualChoiceStep"]
