"""The audio captioner's step of the worker stage: a captioned chunk -> the same chunk with every decodable clip's
audio caption candidates (``CaptionedChunk.extra["audio"]``), which the scorer then scores against the audio.

Each clip's stored audio (16 kHz WAV, :func:`~avt_triplets.decoding.decode_stored_audio`) is cut into the model's
``windows`` equal parts, one candidate each (:mod:`avt_triplets.audio_caption_contract`). The windows of the chunk's
decodable clips, in order, are captioned in runs of ``batch_size`` (boundaries fixed by the chunk's content, the
batch size reset per chunk), so a resumed shard is byte-identical, as for the frame captioner
(:mod:`avt_triplets.stages.worker`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from avt_triplets import selection
from avt_triplets.audio_caption_contract import AudioCaptioner, audio_windows
from avt_triplets.batching import BackoffBatcher, ModelFailure, call_batched
from avt_triplets.decoding import decode_stored_audio
from avt_triplets.stages.reader import Chunk
from avt_triplets.stages.worker import CaptionedChunk

KIND = "audio"


class AudioCaptionStep:
    """Audio caption candidates for every decodable clip of a chunk."""

    def __init__(self, captioner: AudioCaptioner, batch_size: int):
        self.captioner = captioner
        self.batcher = BackoffBatcher(self._caption, batch_size, "audio captioner")

    def _caption(self, windows: list[np.ndarray]) -> list[str]:
        """A batch of windows; several all captioned as empty is a broken model, not data (as for frames)."""
        captions = self.captioner.caption_audio(windows)
        if len(captions) > 1 and all(selection.is_empty_caption(c) for c in captions):
            raise ModelFailure(
                f"the audio captioner gave all {len(captions)} windows of a batch an empty caption "
                f"({captions[0]!r}); its weights may be broken (NaN) or it emits only end-of-sequence tokens",
                0,
            )
        return captions

    def __call__(self, chunk: Chunk, captioned: CaptionedChunk) -> CaptionedChunk:
        self.batcher.reset()
        started = time.perf_counter()
        windows: list[np.ndarray] = []
        owners: list[int] = []
        for i, item in enumerate(captioned.items):
            if item.failure is None:
                parts = audio_windows(decode_stored_audio(item.audio_encoded), self.captioner.windows)
                windows += parts
                owners += [i] * len(parts)
        results = call_batched(
            self.batcher, windows, lambda j: f"audio of clip {captioned.items[owners[j]].job.clip.clip_id}"
        )
        candidates: list[list[Any] | None] = [None] * len(captioned.items)
        for owner, result in zip(owners, results):
            candidates[owner] = [*(candidates[owner] or []), result]
        seconds = dict(captioned.seconds)
        seconds["caption"] = (
            seconds.get("caption", 0.0) + time.perf_counter() - started
        )  # captioning, any kind
        return replace(captioned, extra={**captioned.extra, KIND: candidates}, seconds=seconds)


__all__ = ["KIND", "AudioCaptionStep"]
