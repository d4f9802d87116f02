"""Run a model over items in batches; on failure retry with half the batch, down to one item.

A long generation job must not die because one batch ran out of GPU memory or holds one unusable input:
the failing batch is split in two and each half retried, so only the items that fail on their own are given
up (and recorded by the caller). What happens to an item that fails alone depends on why:

- out of memory, or the model raised :class:`InputRejected` (this input can't be used): the item becomes a
  :class:`Failed` result and the job goes on;
- anything else: the model itself is broken, and going on would only record every clip as failed, so
  :class:`ModelFailure` is raised and the caller stops the run. A :class:`ModelFailure` raised by the model call
  itself (a batch of results no working model gives) stops it at once, without retrying halves.

After an out-of-memory error the batch size stays halved until :meth:`BackoffBatcher.reset`, so the job
doesn't pay for the same OOM on every batch. The worker resets it at every chunk: a chunk's batches then
never depend on what happened in an earlier chunk (see :mod:`avt_triplets.stages.worker`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class InputRejected(ValueError):
    """Raised by a model for an input it cannot use (empty or non-finite audio, ...): recorded, not fatal."""


class ModelFailure(RuntimeError):
    """A model failed on a single item for a reason other than memory: the model, not the data, is broken.

    ``index`` is the position of that item in the list the batcher was called with.
    """

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index

    def __reduce__(self):  # crosses process boundaries intact (a Ray actor raises it, the driver catches it)
        return type(self), (str(self), self.index)


@dataclass(frozen=True)
class Failed:
    """Marks an item its model call failed on, even alone; ``error`` says why."""

    error: str


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA/MPS/CPU allocator failures, whichever class the backend raises."""
    try:
        import torch

        if isinstance(error, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    text = str(error).lower()
    return isinstance(error, MemoryError) or "out of memory" in text or "can't allocate memory" in text


def release_accelerator_memory() -> None:
    """Hand the blocks of a failed batch back to the device (a retry needs them; another process may too)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


class BackoffBatcher(Generic[T, R]):
    """Calls ``fn(batch) -> list_of_results`` in batches of at most ``batch_size``; a batch is a list of items,
    or, when ``items`` is one array or tensor, a slice of it (a view: nothing is copied to split it).

    ``results = batcher(items)`` has one entry per item: ``fn``'s result, or :class:`Failed`.
    ``batch_size`` shrinks (halves) after an out-of-memory error and stays there until :meth:`reset`.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], batch_size: int, name: str):
        if batch_size < 1:
            raise ValueError(f"{name} batch size must be >= 1, got {batch_size}")
        self.fn = fn
        self.initial_batch_size = batch_size
        self.batch_size = batch_size
        self.name = name
        self.retries = 0

    def reset(self) -> None:
        """Back to the configured batch size (forget earlier out-of-memory errors)."""
        self.batch_size = self.initial_batch_size

    def __call__(self, items: Sequence[T]) -> list[R | Failed]:
        results: list[Any] = [None] * len(items)
        start = 0
        while start < len(items):
            size = min(self.batch_size, len(items) - start)
            self._run(items, start, size, results)
            start += size
        return results

    def _run(self, items: Sequence[T], start: int, size: int, results: list[Any]) -> None:
        chunk = items[start : start + size]
        if not hasattr(chunk, "shape"):  # an array or tensor batch stays one (a view); anything else: a list
            chunk = list(chunk)
        try:
            out = list(self.fn(chunk))
            if len(out) != len(chunk):
                raise RuntimeError(f"{self.name} returned {len(out)} results for {len(chunk)} inputs")
        except ModelFailure as error:  # ``fn`` itself judged the model broken: smaller batches would not help
            raise ModelFailure(str(error), start + error.index) from error
        except Exception as error:  # noqa: BLE001 - any model failure is retried smaller, then recorded
            release_accelerator_memory()
            message = f"{type(error).__name__}: {error}"
            if size == 1:
                if not (is_out_of_memory(error) or isinstance(error, InputRejected)):
                    raise ModelFailure(f"{self.name} failed on a single item: {message}", start) from error
                logger.warning("%s failed on one item, giving it up: %s", self.name, message)
                results[start] = Failed(message)
                return
            self.retries += 1
            if is_out_of_memory(error):
                self.batch_size = max(1, min(self.batch_size, size // 2))
                logger.warning(
                    "%s ran out of memory on %d items; batch size is now %d", self.name, size, self.batch_size
                )
            else:
                logger.warning(
                    "%s failed on a batch of %d (%s); retrying in halves", self.name, size, message
                )
            position, end = start, start + size
            while position < end:  # halves, or smaller if an OOM inside shrank the batch size further
                piece = min(max(1, size // 2), self.batch_size, end - position)
                self._run(items, position, piece, results)
                position += piece
            return
        results[start : start + size] = out


def call_batched(batcher: BackoffBatcher, items: Sequence, describe: Callable[[int], str]) -> list:
    """``batcher(items)``; a :class:`ModelFailure` names the item it failed on (``describe(index)``)."""
    try:
        return batcher(items)
    except ModelFailure as error:
        raise ModelFailure(f"{error} ({describe(error.index)})", error.index) from error
