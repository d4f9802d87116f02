"""A chunk's caption batches, formed as its clips arrive, each stacked while the previous one is captioned.

The batches are runs of ``batch_size`` distinct frames of the chunk's decodable clips, in order: their
boundaries depend on the chunk's content only (see :mod:`avt_triplets.stages.worker`), not on when the clips
arrive. A complete batch is stacked by a helper thread into one page-locked host buffer (NumPy copies without
the GIL), so the thread holding the captioner only hands a ready buffer to the device. It is captioned as soon
as the next batch is complete (the next one is then stacked while the captioner works), when no further clip
has arrived yet (:meth:`CaptionBatches.flush`: waiting for one would leave the device idle), or when the chunk
ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np

from avt_triplets.batching import BackoffBatcher, Failed, call_batched
from avt_triplets.decoding import DecodedItem
from avt_triplets.model_inputs import FrameInputs

Key = tuple[int, int]  # (item position in the chunk, distinct frame row of that item)


class CaptionBatches:
    """One chunk's captioning: :meth:`add` each item as it arrives, then :meth:`finish`; ``captions`` maps
    every distinct frame to its caption or :class:`Failed`."""

    def __init__(
        self,
        batcher: BackoffBatcher,
        frames_of: Callable[[DecodedItem], FrameInputs | None],
        stacker: Executor,
        pin: bool,
        stack: Callable[[list, bool], Any],
    ):
        self.batcher, self.frames_of, self.stacker, self.pin = batcher, frames_of, stacker, pin
        self.stack = stack  # the captioner's: preprocessed rows -> one host batch (its layout)
        self.batch_size = batcher.initial_batch_size
        self.items: list[DecodedItem] = []
        self.frames: list[FrameInputs | None] = []
        self.pending: list[Key] = []  # distinct frames not in a batch yet
        self.next_batch: tuple[list[Key], Future] | None = None  # formed, being stacked
        self.captions: dict[Key, str | Failed] = {}
        self.model_seconds, self.captioned, self.released = 0.0, 0, 0
        self.preprocessed: bool | None = None

    def add(self, item: DecodedItem) -> None:
        frames = self.frames_of(item)
        if frames is not None:
            if self.preprocessed not in (None, frames.preprocessed):
                raise ValueError("a chunk mixes preprocessed and raw frames")
            self.preprocessed = frames.preprocessed
        self.items.append(item)
        self.frames.append(frames)
        if frames is not None:
            self.pending += [(len(self.items) - 1, row) for row in range(frames.num_unique)]
        while len(self.pending) >= self.batch_size:
            self._form()

    def flush(self) -> None:
        """Caption the complete batch now instead of when the next one is complete (no clip is waiting)."""
        if self.next_batch is not None:
            batch, self.next_batch = self.next_batch, None
            self._caption(*batch)

    def finish(self) -> None:
        while self.pending:
            self._form()
        self.flush()

    def _form(self) -> None:
        """Cut the next batch and start stacking it; caption the one before it meanwhile."""
        keys, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
        rows = [self.frames[i].row(row) for i, row in keys]
        future = self.stacker.submit(self._stack, rows)
        previous, self.next_batch = self.next_batch, (keys, future)
        if previous is not None:
            self._caption(*previous)

    def _caption(self, keys: list[Key], stacked: Future) -> None:
        batch = stacked.result()
        started = time.perf_counter()
        results = call_batched(self.batcher, batch, lambda j: self._describe(keys[j]))
        self.model_seconds += time.perf_counter() - started
        self.captioned += len(keys)
        for key, result in zip(keys, results):
            self.captions[key] = result if isinstance(result, Failed) else str(result).strip()
        self._release(self._first_waiting())

    def _first_waiting(self) -> int:
        """The first item with a frame not captioned yet: keys are cut in item order, so it is the first key of
        the batch being stacked, else of the pending frames."""
        if self.next_batch is not None:
            return self.next_batch[0][0][0]
        return self.pending[0][0] if self.pending else len(self.items)

    def _describe(self, key: Key) -> str:
        i, row = key
        first = int(np.flatnonzero(self.frames[i].rows == row)[0])
        return f"frame {first} of clip {self.items[i].job.clip.clip_id}"

    def _release(self, upto: int) -> None:
        """Drop the model inputs of items whose frames are all stacked and captioned (the largest memory)."""
        for frames in self.frames[self.released : upto]:
            if frames is not None:
                frames.unique, frames.extra = None, {}
        self.released = max(self.released, upto)

    def _stack(self, rows: list) -> Any:
        """Preprocessed rows as one host batch (the captioner's layout: one copy); raw RGB frames stay a list (the
        captioner takes images)."""
        return self.stack(rows, self.pin) if self.preprocessed else rows
