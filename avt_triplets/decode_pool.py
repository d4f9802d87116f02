"""An ordered, bounded pool of decode processes that needs no torch.

A run whose clips no model sees (``--captioner none``, or a Ray decode task) has nothing to hand over in shared
memory, so ``torch.utils.data.DataLoader`` would only cost it torch's import (~500 MB resident in the main
process and again in each worker). This pool does the same job with :mod:`multiprocessing`: worker ``w`` of
``n`` handles jobs ``w, w + n, ...`` into its own queue of at most ``prefetch`` items, and the caller reads the
queues round-robin, so results come back in job order. A worker that dies (a segfault inside FFmpeg) is noticed
while its result is awaited; the caller learns which job it was decoding and restarts the pool after it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_POLL_S = 0.2


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux); exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc symbol: the per-job check below still applies
            pass
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(0)


def become_worker(parent_pid: int) -> None:
    """What every decode worker does first: die with its parent, leave Ctrl-C / SIGTERM to it, yield cores."""
    die_with_parent(parent_pid)
    # Ctrl-C and a scheduler's SIGTERM reach the whole process group: the parent handles them (it drops the
    # shard in flight and shuts the workers down); a worker dying first would read as a decoder crash.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_IGN)
    try:  # the process feeding the models comes first when cores are short; workers use what is left
        os.nice(5)
    except OSError:
        pass


def _work(jobs: Sequence, worker: int, workers: int, run: Callable, known: dict, busy, out, parent_pid: int):
    become_worker(parent_pid)
    for position in range(worker, len(jobs), workers):
        if os.getppid() != parent_pid:
            return  # orphaned: nobody reads what we decode
        job = jobs[position]
        busy[worker] = job.index
        out.put(known[job.index] if job.index in known else run(job))
    out.close()
    out.join_thread()  # everything reaches the pipe before this process ends


class WorkerDied(Exception):
    """A pool worker ended without delivering; ``job`` is the one it was handling. Results it had queued but not yet
    flushed to its pipe are lost with it: the caller restarts after the last result it received."""

    def __init__(self, job: Any, exitcode: int | None):
        super().__init__(f"decode worker exited unexpectedly (exit code {exitcode})")
        self.job = job


def _receive(out, process) -> Any:
    while True:
        try:
            return out.get(timeout=_POLL_S)
        except queue.Empty:
            if process.is_alive():
                continue
        try:  # it may have ended right after its last put
            return out.get(timeout=_POLL_S)
        except queue.Empty:
            raise WorkerDied(None, process.exitcode) from None


def iter_ordered(
    jobs: Sequence,
    run: Callable,
    *,
    num_workers: int,
    prefetch: int,
    spawn: bool = False,
    known: dict | None = None,
) -> Iterator[Any]:
    """``run(job)`` for every job (each has an ``index``) in worker processes, yielded in job order.

    Raises :class:`WorkerDied` (after stopping the pool) naming the job a dead worker was handling; ``known``
    maps job indices to results that are yielded without running those jobs (a restart after a crash).
    """
    context = multiprocessing.get_context("spawn" if spawn else "fork")
    workers = max(1, min(num_workers, len(jobs)))
    busy = context.Array("q", [-1] * workers, lock=False)
    queues = [context.Queue(maxsize=max(1, prefetch)) for _ in range(workers)]
    known = known or {}
    processes = [
        context.Process(
            target=_work, args=(jobs, w, workers, run, known, busy, queues[w], os.getpid()), daemon=True
        )
        for w in range(workers)
    ]
    try:
        for process in processes:
            process.start()
        for position in range(len(jobs)):
            worker = position % workers
            try:
                item = _receive(queues[worker], processes[worker])
            except WorkerDied as died:
                index = busy[worker]
                died.job = next((job for job in jobs[position:] if job.index == index), jobs[position])
                raise
            yield item
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()  # workers ignore SIGTERM (become_worker); a blocked put holds nothing worth keeping
        for process in processes:
            process.join(timeout=5)
        for out in queues:
            out.cancel_join_thread()
            out.close()
