"""What the driver says while a Ray pipeline runs: a lost node in one line, and what Ray is waiting for when no
chunk has finished for a long time (instead of sitting at 0 clips without a word).

A thread polls the cluster's node table every few seconds; :meth:`PipelineWatch.progressed` is called for
every finished chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

STALL_SECONDS = 300.0  # no chunk finished for this long: log what is pending (again every as long)
POLL_SECONDS = 5.0


def _resources(node: dict[str, Any]) -> str:
    resources = node.get("Resources") or {}
    return f"{resources.get('CPU', 0):g} CPU, {resources.get('GPU', 0):g} GPU"


def _bundle(bundle: dict[str, float]) -> str:
    return "{" + ", ".join(f"{name} {amount:g}" for name, amount in sorted(bundle.items())) + "}"


def pending_demands(ray) -> str:
    """The requests Ray has not placed yet, as ``3 x {CPU 1}``; "" when none (or the GCS does not say)."""
    try:
        from ray.autoscaler.v2.sdk import get_cluster_status

        status = get_cluster_status(ray.get_runtime_context().gcs_address, timeout=10)
    except Exception as error:  # noqa: BLE001 - the report is a hint; the run goes on either way
        logger.debug("could not read the cluster's pending demands: %s", error)
        return ""
    demands = status.resource_demands.ray_task_actor_demand
    return ", ".join(
        f"{request.count} x {_bundle(request.bundle)}"
        for demand in demands
        for request in demand.bundles_by_count
    )


def describe_stall(ray, seconds: float, chunks_left: int) -> str:
    """One line: how long nothing finished, what Ray cannot place, what the cluster has free."""
    pending = pending_demands(ray) or "nothing (the tasks run, slowly)"
    free, total = ray.available_resources(), ray.cluster_resources()
    have = ", ".join(
        f"{name} {free.get(name, 0):g} of {total[name]:g}" for name in ("CPU", "GPU") if name in total
    )
    return (
        f"no chunk finished for {seconds:.0f} s ({chunks_left} chunks left); Ray is waiting to place: {pending}; "
        f"free in the cluster: {have or 'nothing'}"
    )


class PipelineWatch:
    """Runs beside the driver's loop over finished chunks (a context manager)."""

    def __init__(
        self,
        ray,
        chunks: int,
        stall_seconds: float = STALL_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ray, self.chunks_left = ray, chunks
        self.stall_seconds, self.poll_seconds, self.clock = stall_seconds, poll_seconds, clock
        self.last_progress = self.last_report = clock()
        self.alive = {node["NodeID"]: node for node in ray.nodes() if node.get("Alive")}
        self.lost: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="avt-ray-watch", daemon=True)

    def __enter__(self) -> PipelineWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=self.poll_seconds + 15)

    def progressed(self) -> None:
        self.last_progress = self.clock()
        self.chunks_left -= 1

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check_nodes()
                self.check_stall()
            except Exception as error:  # noqa: BLE001 - watching must never stop the run
                logger.debug("watching the Ray cluster failed: %s", error)

    def check_nodes(self) -> None:
        """One line per node that was alive when the run started and is dead now."""
        for node in self.ray.nodes():
            known = self.alive.get(node["NodeID"])
            if known is None or node.get("Alive"):
                continue
            del self.alive[node["NodeID"]]
            line = (
                f"lost Ray node {known.get('NodeManagerAddress', '?')} ({_resources(known)}, id "
                f"{node['NodeID'][:8]}): Ray retries its tasks and restarts its actors on the other nodes"
            )
            self.lost.append(line)
            logger.warning(line)

    def check_stall(self) -> None:
        now = self.clock()
        if now - max(self.last_progress, self.last_report) >= self.stall_seconds:
            logger.warning(describe_stall(self.ray, now - self.last_progress, self.chunks_left))
            self.last_report = now  # the next report after another stall_seconds


__all__ = ["PipelineWatch", "describe_stall", "pending_demands"]
