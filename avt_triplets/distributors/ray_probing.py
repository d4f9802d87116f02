"""The ``ray`` distributor's models probed in the actors that use them (no probe task loads a model twice).

The run's :class:`~avt_triplets.probe_board.ProbeBoard` lives in a small actor; the first model actor of each pool
probes its model and reports there (:meth:`~avt_triplets.model_host.Replica.start_probing`), the driver settles the
run with the reports in a thread (:class:`Settling`: manifest, batch size, decode settings) while the pipeline's
actors and decode tasks start, and posts the verdict they all wait for before touching a clip: the decode settings
(the models' preprocessing) reach the decode tasks through it (:class:`AwaitedSettings`, fetched once per worker
process), so nothing is decoded or written with unprobed settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from avt_triplets.probe_board import ProbeBoard, Sealed, Verdict

if TYPE_CHECKING:
    from avt_triplets.decoding import DecodeSettings

# The board's calls that block until others post run in threads of their own: waiters never starve the reports.
WAITS = "waits"
WAITING_THREADS = 256  # waits served at once (every model actor and decode task waits once; more queue)
POSTING_THREADS = 4


class RemoteBoard:
    """A :class:`ProbeBoard` in an actor, called like the local one (picklable: it travels to the actors); the
    reports and the verdict cross it pickled (:class:`Sealed`), so its process stays small."""

    def __init__(self, actor: Any):
        self.actor = actor

    @classmethod
    def start(cls, ray, roles: list[str]) -> RemoteBoard:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # on the driver's node: a board on a node the cluster loses would take the run's settled verdict with it
        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        board = ray.remote(
            num_cpus=0,
            max_concurrency=POSTING_THREADS,
            concurrency_groups={WAITS: WAITING_THREADS},
            scheduling_strategy=here,
        )(ProbeBoard)
        return cls(board.remote(roles))

    def _call(self, method: str, *args: Any, waits: bool = False) -> Any:
        """``method`` on the board; ``waits``: one that blocks until others post, run in the waits' threads."""
        import ray

        call = getattr(self.actor, method)
        if waits:
            call = call.options(concurrency_group=WAITS)
        return ray.get(call.remote(*args))

    def claim(self, role: str) -> bool:
        return self._call("claim", role)

    def report(self, role: str, probed: Any) -> None:
        self._call("report", role, Sealed.of(probed))

    def handed(self, role: str) -> dict[str, Any]:
        return self._call("handed", role, waits=True)

    def probes(self) -> dict[str, Any] | None:
        reports = self._call("probes", waits=True)
        return None if reports is None else {role: sealed.open() for role, sealed in reports.items()}

    def decide(self, verdict: Verdict) -> None:
        self._call("decide", Sealed(None if verdict.stopped else True, {}, Sealed.pickled(verdict)))

    def verdict(self) -> Verdict:
        posted = self._call("verdict", waits=True)
        return posted.open() if isinstance(posted, Sealed) else posted

    def cancel(self) -> None:
        self.actor.cancel.remote()  # no wait: the run is stopping

    @property
    def key(self) -> str:
        return self.actor._actor_id.hex()


_SETTINGS: dict[str, DecodeSettings] = {}  # board -> the verdict's decode settings, in this worker process


# What a captioned run's decode tasks import for the models' preprocessing (transformers processors returning
# torch tensors, handed over by torch's DataLoader): imported while the task waits for the verdict, so the first
# chunk is not decoded after the models were probed plus this import.
PREPROCESSING_MODULES = ("torch.utils.data", "transformers")


class AwaitedSettings:
    """The decode settings of the run's verdict, in place of settings known before the run: a decode task asks the
    board once per worker process (Ray reuses them) and waits there until the models are probed, importing
    ``warm`` meanwhile."""

    def __init__(self, board: RemoteBoard, warm: tuple[str, ...] = PREPROCESSING_MODULES):
        self.board, self.warm = board, warm

    def resolve(self) -> DecodeSettings:
        import importlib

        from avt_core.errors import RunAborted

        key = self.board.key
        if key not in _SETTINGS:
            for module in self.warm:
                importlib.import_module(module)
            verdict = self.board.verdict()
            if verdict.stopped:
                raise RunAborted(verdict.stopped)
            _SETTINGS.clear()  # one run's settings at a time
            _SETTINGS[key] = verdict.settings
        return _SETTINGS[key]


class Settling(threading.Thread):
    """The driver's side: wait for every role's report, ``settle`` the run with them (returns the work with the
    settled options) and post the verdict ``verdict_of(work)``; a failure (a broken model, a manifest of other
    models) is kept as raised and posted as the stopping verdict, so the pipeline ends before any clip."""

    def __init__(
        self,
        board: RemoteBoard,
        settle: Callable[[dict[str, Any]], Any],
        verdict_of: Callable[[Any], Verdict],
    ):
        super().__init__(name="avt-ray-settle", daemon=True)
        self.board, self.settle, self.verdict_of = board, settle, verdict_of
        self.work: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            probed = self.board.probes()
            if probed is None:
                return  # cancelled: the pipeline stopped first
            self.work = self.settle(probed)
            self.board.decide(self.verdict_of(self.work))
        except BaseException as error:  # noqa: BLE001 - raised again by the driver (settled())
            self.error = error
            text = str(error).strip()
            self.board.decide(Verdict(stopped=text.splitlines()[0] if text else type(error).__name__))

    def settled(self, timeout: float | None = None) -> Any:
        """The settled work, once the thread is done; raises what settling raised."""
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.work

    def stop(self) -> BaseException | None:
        """The pipeline stopped: release the thread if it still waits, and say what settling raised."""
        self.board.cancel()
        self.join(timeout=60)
        return self.error


__all__ = ["AwaitedSettings", "RemoteBoard", "Settling"]
