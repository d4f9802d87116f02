"""Where the replicas of a run meet its driver when the models are probed where they run (no probe task).

A distributor that loads the models only in its replicas (the ``ray`` actors) would otherwise load every model
twice: once in a probe task before the run, once in the replicas. Instead the first replica of each role probes the
model it loaded and reports here (:meth:`ProbeBoard.report`); the driver waits for every role's report
(:meth:`ProbeBoard.probes`), settles the run with them (manifest, batch size, decode settings) and posts its
:class:`Verdict`; every replica and decode task waits for the verdict before it touches a clip, so nothing is
decoded or written with unprobed settings, and a broken model stops the run before any row exists.

The board is a plain thread-safe object (a test runs it in threads); the ``ray`` distributor hosts it in an actor.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sealed:
    """A probe report as the board actor holds it: what the board reads (failed or not, the hand-ons) and the
    report pickled, so the board never imports what a report holds (preprocessors: transformers, torch)."""

    record: bool | None  # None: the probe failed (what ProbeBoard reads of a Probed)
    hands_on: dict[str, Any]
    blob: bytes

    @classmethod
    def of(cls, probed: Any) -> Sealed:
        return cls(None if probed.record is None else True, probed.hands_on, cls.pickled(probed))

    @staticmethod
    def pickled(value: Any) -> bytes:
        return pickle.dumps(value)

    def open(self) -> Any:
        return pickle.loads(self.blob)


@dataclass(frozen=True)
class Verdict:
    """The driver's answer once the roles were probed: the run's options (``auto`` batch size settled), the
    record each role's replicas must match, the decode settings; or ``stopped``: why the run stops (one line)."""

    options: Any = None  # GenerationOptions
    records: dict[str, Any] = field(default_factory=dict)
    settings: Any = None  # DecodeSettings
    stopped: str = ""


class ProbeBoard:
    """One run's probe reports and verdict; ``roles`` in the host's order (a role's probe gets what the earlier
    ones hand on, e.g. the captioner's caption as the scorer's probe text)."""

    def __init__(self, roles: Sequence[str]):
        self.roles = list(roles)
        self.claimed: set[str] = set()
        self.reports: dict[str, Any] = {}  # role -> Probed
        self.posted: Verdict | None = None
        self.cancelled = False
        self.changed = threading.Condition()

    def claim(self, role: str) -> bool:
        """True for the one replica of ``role`` that probes (the first to ask)."""
        with self.changed:
            first = role not in self.claimed
            self.claimed.add(role)
            return first

    def report(self, role: str, probed: Any) -> None:
        with self.changed:
            self.reports[role] = probed
            self.changed.notify_all()

    def _failed(self) -> bool:
        return any(probed.record is None for probed in self.reports.values())

    def handed(self, role: str) -> dict[str, Any]:
        """What the roles before ``role`` hand on to its probe, once they reported ({} if one failed)."""
        earlier = self.roles[: self.roles.index(role)]
        with self.changed:
            self.changed.wait_for(
                lambda: self.cancelled or self._failed() or all(r in self.reports for r in earlier)
            )
            if self.cancelled or self._failed():
                return {}
            handed: dict[str, Any] = {}
            for name in earlier:
                handed |= self.reports[name].hands_on
            return handed

    def probes(self) -> dict[str, Any] | None:
        """Every role's report, or as soon as one failed, those in so far; None: the run was cancelled."""
        with self.changed:
            self.changed.wait_for(
                lambda: self.cancelled or self._failed() or all(r in self.reports for r in self.roles)
            )
            return None if self.cancelled else dict(self.reports)

    def decide(self, verdict: Verdict) -> None:
        with self.changed:
            self.posted = verdict
            self.changed.notify_all()

    def verdict(self) -> Verdict:
        """The driver's verdict, once it is posted (a cancelled run's: stopped)."""
        with self.changed:
            self.changed.wait_for(lambda: self.cancelled or self.posted is not None)
            return self.posted or Verdict(stopped="the run was cancelled")

    def cancel(self) -> None:
        """Release every waiter: the run stopped before a verdict."""
        with self.changed:
            self.cancelled = True
            self.changed.notify_all()


__all__ = ["ProbeBoard", "Sealed", "Verdict"]
