"""Ctrl-C / SIGTERM during training: finish the optimizer step in flight, save a checkpoint, stop.

A step stopped half-way leaves no state worth saving, so the first signal only asks the loop to stop at the end of
the current step (``StopRequest``), where the loop saves a checkpoint and raises
``avt_core.interrupts.Interrupted`` with the resume command; a second signal stops at once. DataLoader workers
forked while the request is armed inherit it and ignore the signal: the main process shuts them down. Under several
processes every process would have to agree on the step to stop at, so there the signal stops at once and the
message names the latest checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

from avt_core.interrupts import Interrupted

logger = logging.getLogger(__name__)
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class StopRequest:
    """The signal that asked the loop to stop (``SIGINT`` / ``SIGTERM``), or None while none did."""

    signal: str | None = None


@contextlib.contextmanager
def stop_after_step(enabled: bool = True) -> Iterator[StopRequest]:
    """While the block runs, the first SIGINT / SIGTERM sets the request instead of raising; a second one raises
    ``KeyboardInterrupt``. Disabled (several processes, or not the main thread), signals raise at once."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum, frame):
        name = signal.Signals(signum).name
        if request.signal is not None:
            raise KeyboardInterrupt(name)
        request.signal = name
        logger.warning("%s: stopping after the current optimizer step (send it again to stop at once)", name)

    previous = {number: signal.signal(number, handle) for number in _SIGNALS}
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def interrupted(command: str, signal: str, where: str, latest: str | Path | None, saved: bool) -> Interrupted:
    """The ``Interrupted`` of a training command: where it stopped and the checkpoint ``--resume latest`` takes."""
    if saved and latest:
        kept = f"checkpoint saved in {latest}"
    elif latest:
        kept = f"the latest checkpoint is {latest}"
    else:
        kept = "no checkpoint was saved yet (resuming starts over)"
    return Interrupted(signal, f"avt {command} stopped {where}, {kept}", resume_flag="--resume latest")


class StopCallback(TrainerCallback):
    """``transformers.Trainer``'s side of a ``StopRequest``: checkpoint the step just taken, then stop training
    (no epoch-end evaluation or second save on the way out)."""

    def __init__(self, request: StopRequest):
        self.request = request

    def on_step_end(self, args, state, control, **kwargs):
        if self.request.signal is not None:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.request.signal is not None:
            control.should_evaluate = False
            control.should_save = False
        return control


__all__ = ["StopCallback", "StopRequest", "interrupted", "stop_after_step"]
