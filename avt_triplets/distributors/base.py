"""What every distributor offers the switchboard (:mod:`avt_triplets.pipeline`), and the errors they share.

A distributor is placement only: it decides where the stages run, with which resources and in which order, and
never re-implements one nor handles a model itself. The switchboard asks it which shards this process is
responsible for (:meth:`Distributor.shard_indices`), and finally to run the pending shard plans with the run's
models (a :class:`~avt_triplets.model_host.ModelHost`: loading, probing, batch size, input preparation and the
worker stage live there). The host in turn asks it where a model's probe runs and to agree on one value among
the run's processes (:class:`~avt_triplets.model_host.Placement`).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from avt_core.errors import RunAborted
from avt_triplets import shards
from avt_triplets.batching import ModelFailure
from avt_triplets.model_host import ModelHost, Placement
from avt_triplets.options import GenerationOptions
from avt_triplets.stages.reader import ShardPlan
from avt_triplets.stages.writer import ProvisionalCard


@dataclass
class Work:
    """The shards a distributor is to run, and where their files go."""

    root: Path
    options: GenerationOptions
    plans: list[ShardPlan]
    num_shards: int  # of the whole run, for messages
    card: ProvisionalCard | None = None  # refreshed after each finished shard (main process only)

    @property
    def clips(self) -> int:
        return sum(len(plan.clips) for plan in self.plans)


@dataclass
class RunReport:
    """What a distributor did: clips it processed, and the errors of shards that failed on their own (they
    stay unfinished; a rerun retries them)."""

    processed: int = 0
    shard_errors: list[str] = field(default_factory=list)


class Distributor(Placement, Protocol):
    """Where a run's work goes: which shards this process takes, where each model role runs (the
    :class:`~avt_triplets.model_host.Placement` part), and the run itself."""

    name: str
    rank: int
    world_size: int
    is_main: bool  # writes the provisional card and clears the card on --overwrite

    def shard_indices(self, num_shards: int) -> range: ...

    def owns(self, index: int) -> bool: ...

    def run(self, work: Work, host: ModelHost) -> RunReport:
        """Run ``work``'s plans with ``host``'s models (its worker stage, or its replicas in pools)."""
        ...

    def run_probing(
        self, pending: Work, settle: Callable[[dict[str, Any] | None], Work], host: ModelHost
    ) -> RunReport:
        """Only where ``probes_in_replicas``: run ``pending``'s plans while the replicas probe the models; the
        reports go to ``settle`` (manifest, batch size, card), whose settled work every replica waits for."""
        ...

    def close(self) -> None: ...


def is_disk_full(error: BaseException) -> bool:
    if not isinstance(error, OSError):
        return False
    return error.errno in (errno.ENOSPC, errno.EDQUOT) or "no space left" in str(error).lower()


def run_stopping_cause(error: BaseException, detail: str) -> str | None:
    """Why ``error`` stops the whole run rather than one shard (a broken model or a full disk would fail every
    following shard too), with ``detail`` (its message) appended; None for an error of one shard."""
    if isinstance(error, ModelFailure):
        return f"stopped: a model failed on a single item ({detail})"
    if is_disk_full(error):
        return f"stopped: no space left on the device ({detail})"
    return None


def stopped(work: Work, shard: int | None, cause: str) -> RunAborted:
    """The error that stops a run: what happened, what is kept, how to go on."""
    done = shards.collect_totals(work.root).shards_done
    in_flight = f" (shard {shard}, in progress, was dropped)" if shard is not None else ""
    return RunAborted(
        f"{cause}. {done} of {work.num_shards} shards are finished in {work.root} and stay valid{in_flight}; "
        "fix the cause and rerun the same command to resume",
        resumable=True,
    )


__all__ = ["Distributor", "RunReport", "Work", "is_disk_full", "run_stopping_cause", "stopped"]
