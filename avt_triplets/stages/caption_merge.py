"""The caption merger's step: scored rows -> the same rows with an audio-visual caption merged from each row's
chosen audio and visual captions by a local LLM (``--av-caption-from llm:MODEL``).

It runs after the scorer because the audio caption it merges is the one CLAP chose. Rows are merged in batches of
``batch_size`` in the chunk's order (boundaries fixed by content, reset per chunk: a resumed shard is
byte-identical); a row the model fails on alone becomes a ``caption_failed`` failure record, in clip order with the
chunk's other failures, instead of a row without its AV caption.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from avt_triplets import selection
from avt_triplets.batching import BackoffBatcher, Failed, call_batched
from avt_triplets.stages.reader import Chunk
from avt_triplets.stages.worker import ChunkResult


def _failure(row: dict[str, Any], detail: str) -> dict[str, str]:
    return {
        "clip_id": row["clip_id"],
        "video_path": row["video_path"],
        "reason": "caption_failed",
        "detail": detail,
    }


class CaptionMergeStep:
    """``av_captions`` / ``av_caption`` for every row of a chunk, from its ``audio_caption`` and ``visual_caption``."""

    def __init__(self, merger: Any, batch_size: int):
        self.merger = merger
        self.batcher = BackoffBatcher(self._merge, batch_size, "caption merger")

    def _merge(self, pairs: list[tuple[str, str]]) -> list[str]:
        return self.merger.merge([a for a, _ in pairs], [v for _, v in pairs])

    def __call__(self, chunk: Chunk, result: ChunkResult) -> ChunkResult:
        self.batcher.reset()
        started = time.perf_counter()
        pairs = [(row["audio_caption"], row["visual_caption"]) for row in result.rows]
        merged = call_batched(self.batcher, pairs, lambda j: f"clip {result.rows[j]['clip_id']}")
        rows, failures = [], list(result.failures)
        for row, caption in zip(result.rows, merged):
            if isinstance(caption, Failed):
                failures.append(_failure(row, f"caption merger: {caption.error}"))
            elif selection.is_empty_caption(caption):
                failures.append(_failure(row, f"the caption merger wrote an empty caption ({caption!r})"))
            else:
                rows.append({**row, "av_captions": [caption], "av_caption": caption})
        order = {clip.clip_id: k for k, clip in enumerate(chunk.clips)}
        failures.sort(key=lambda failure: order.get(failure["clip_id"], len(order)))
        seconds = dict(result.seconds)
        seconds["caption"] = (
            seconds.get("caption", 0.0) + time.perf_counter() - started
        )  # captioning, any kind
        return replace(result, rows=rows, failures=failures, seconds=seconds)


__all__ = ["CaptionMergeStep"]
