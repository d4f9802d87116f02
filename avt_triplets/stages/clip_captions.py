"""``--caption-unit clip``: the captions of a chunk's clips, each clip window's sampled frames as one video.

Candidate ``k`` of a clip is the captioner's caption of all its sampled frames, in time order (duplicates
included: a video's frames are its timeline), asked with prompt ``k`` of ``captioner.clip_prompts``; the scorer
then picks among the candidates exactly as it picks among frame captions, so ``caption_index`` indexes the
candidates (their prompts are the manifest's ``captioner.clip_prompts``).

Every model call is one video with one prompt (a batch of one, the documented usage of every video family):
clips differ in frame count and frame size, and a batch of one gives the captions of a plain transformers call
whatever else the chunk holds, so a resumed shard equals an uninterrupted one byte for byte. Decoding is greedy;
the worker still seeds every chunk as it does for frames. A video the model gives up on alone (out of memory,
:class:`~avt_triplets.batching.InputRejected`) fails its clip (``caption_failed``), as a frame does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avt_triplets.batching import BackoffBatcher, Failed, call_batched
from avt_triplets.model_inputs import FrameInputs


def clip_frames(frames: FrameInputs) -> list[np.ndarray]:
    """A clip's sampled RGB frames in time order (the decode workers keep exact duplicates once: put back)."""
    return [np.asarray(frames.unique[int(row)]) for row in frames.rows]


class ClipCaptioner:
    """``len(captioner.clip_prompts)`` candidate captions per clip, one ``caption_video`` call each."""

    def __init__(self, captioner: Any, fps: float):
        self.captioner, self.fps = captioner, float(fps)
        self.batcher = BackoffBatcher(self._caption, 1, "captioner")

    def __call__(self, frames: list[np.ndarray], clip_id: str) -> list[str | Failed]:
        """The clip's candidates in prompt order: a caption, or :class:`Failed` where the model gave up."""
        prompts = self.captioner.clip_prompts
        return call_batched(
            self.batcher,
            [(frames, prompt) for prompt in prompts],
            lambda j: f"clip {clip_id}, prompt {prompts[j]!r}",
        )

    def _caption(self, batch: list[tuple[list[np.ndarray], str]]) -> list[str]:
        return [self.captioner.caption_video(frames, self.fps, prompt) for frames, prompt in batch]


__all__ = ["ClipCaptioner", "clip_frames"]
