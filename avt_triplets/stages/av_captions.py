"""The AV captioner's step of the worker stage: a captioned chunk -> the same chunk with every decodable clip's
audio-visual caption candidates (``CaptionedChunk.extra["av"]``), which the scorer then scores against the audio
and chooses from, as it does for frame and audio captions.

The omni model sees what the dataset stores: the clip's JPEG frames (decoded back to RGB) and its 16 kHz audio
(:func:`~avt_triplets.decoding.decode_stored_audio`), so a row's AV captions can be repeated from the row alone.
One clip per model call (its frames are one video); ``count`` candidates per clip, seeded by the clip's id
(:meth:`~avt_triplets.av_captioners.OmniAvCaptioner.caption_clip`), so a resumed shard is byte-identical.
"""

from __future__ import annotations

import io
import time
from dataclasses import replace
from typing import Any

import numpy as np

from avt_triplets.batching import BackoffBatcher, call_batched
from avt_triplets.decoding import decode_stored_audio
from avt_triplets.stages.reader import Chunk
from avt_triplets.stages.worker import CaptionedChunk

KIND = "av"


def stored_frames(frames_jpeg: list[bytes]) -> list[np.ndarray]:
    """A clip's stored JPEG frames as RGB uint8 arrays (what a reader of the dataset gets)."""
    from PIL import Image

    return [
        np.array(Image.open(io.BytesIO(data)).convert("RGB")) for data in frames_jpeg
    ]  # writable, for torch


class AvCaptionStep:
    """Audio-visual caption candidates for every decodable clip of a chunk."""

    def __init__(self, captioner: Any, count: int, seed: int, fps: float):
        self.captioner, self.count, self.seed, self.fps = captioner, count, seed, fps
        self.batcher = BackoffBatcher(self._caption, 1, "AV captioner")  # one clip = one video per call

    def _caption(self, clips: list[tuple[str, list[np.ndarray], np.ndarray]]) -> list[list[str]]:
        return [
            self.captioner.caption_clip(
                frames, audio, fps=self.fps, count=self.count, seed=self.seed, key=key
            )
            for key, frames, audio in clips
        ]

    def __call__(self, chunk: Chunk, captioned: CaptionedChunk) -> CaptionedChunk:
        self.batcher.reset()
        started = time.perf_counter()
        owners = [i for i, item in enumerate(captioned.items) if item.failure is None]
        clips = [
            (
                captioned.items[i].job.clip.clip_id,
                stored_frames(captioned.items[i].frames_jpeg),
                decode_stored_audio(captioned.items[i].audio_encoded),
            )
            for i in owners
        ]
        results = call_batched(self.batcher, clips, lambda j: f"clip {clips[j][0]}")
        candidates: list[list[Any] | None] = [None] * len(captioned.items)
        for owner, result in zip(owners, results):
            candidates[owner] = result if isinstance(result, list) else [result]  # Failed: the clip fails
        seconds = dict(captioned.seconds)
        seconds["caption"] = (
            seconds.get("caption", 0.0) + time.perf_counter() - started
        )  # captioning, any kind
        return replace(captioned, extra={**captioned.extra, KIND: candidates}, seconds=seconds)


__all__ = ["KIND", "AvCaptionStep", "stored_frames"]
