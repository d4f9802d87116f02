"""What the ``ray`` distributor asks of a Ray cluster, sized from the nodes it has, and whether that fits at all.

Ray places a task or an actor only on one node that holds everything it asks for; a request that no node can
hold waits forever, without a word. So:

- requests are sized from the cluster's nodes: a model actor without a GPU takes half a CPU, a decode task one
  CPU, but on nodes of one or two CPUs both shrink (with captioner and scorer a quarter of the smallest node for
  each CPU-only actor, a sixth with a third role such as the audio captioner; half of it for a decode task), so a
  decode task still fits on a node that holds one actor of every model role;
- before any model loads, the smallest plan that must run at once (each pool's minimum actors and a decode task)
  is packed onto the nodes; when it cannot be placed the run is refused in one line saying what was
  asked and what the cluster has.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from avt_core.errors import UsageError
from avt_triplets.options import GenerationOptions

CPU_ACTOR_CPUS = 0.5  # a model actor without a GPU share, on nodes of two CPUs or more
DECODE_CPUS = 1.0  # a decode task (decoding, JPEG/WAV encoding, the models' preprocessing), same nodes
LIGHT_CPUS = 0.25  # a part-writing or packing task: mostly waiting on storage
EPS = 1e-9


@dataclass(frozen=True)
class Node:
    """The logical resources of one alive Ray node."""

    cpus: float
    gpus: float


def alive_nodes(ray) -> list[Node]:
    """The cluster's alive nodes, as ``ray.nodes()`` reports them."""
    return [
        Node(float(node["Resources"].get("CPU", 0.0)), float(node["Resources"].get("GPU", 0.0)))
        for node in ray.nodes()
        if node.get("Alive")
    ]


@dataclass(frozen=True)
class PoolPlan:
    """GPU share, CPUs and pool bounds of one model actor pool."""

    gpus: float
    cpus: float
    min_size: int
    max_size: int

    def strategy(self):
        import ray.data

        if self.min_size == self.max_size:
            return ray.data.ActorPoolStrategy(size=self.max_size)
        return ray.data.ActorPoolStrategy(min_size=self.min_size, max_size=self.max_size)


@dataclass(frozen=True)
class ResourcePlan:
    """What each stage of the pipeline asks for."""

    caption: PoolPlan
    score: PoolPlan
    decode_cpus: float
    light_cpus: float = LIGHT_CPUS
    extra: Mapping[str, PoolPlan] = field(default_factory=dict)  # the other roles' pools, by role name

    def pool(self, role: str) -> PoolPlan:
        """The actor pool of a model role (:data:`avt_triplets.model_host.ROLES`)."""
        return {"captioner": self.caption, "scorer": self.score, **self.extra}[role]

    @property
    def commit_cpus(self) -> float:
        """A shard commit task (reads the parts, writes the shard): placed where a decode task fits."""
        return min(0.5, self.decode_cpus)

    def at_once(self, captioned: bool) -> list[tuple[str, float, float]]:
        """(what, CPUs, GPUs) of what must be placed together for a chunk to finish: the actors stay, and
        beside them one task at a time (a decode task is the largest; write and commit tasks ask less)."""
        needed = []
        if captioned:
            needed += [("captioner actor", self.caption.cpus, self.caption.gpus)] * self.caption.min_size
            needed += [("scorer actor", self.score.cpus, self.score.gpus)] * self.score.min_size
            for role, pool in self.extra.items():
                needed += [(f"{role.replace('_', ' ')} actor", pool.cpus, pool.gpus)] * pool.min_size
        return needed + [("decode task", self.decode_cpus, 0.0)]


def _fits(gpus_in_cluster: float, share: float) -> int:
    """How many actors of ``share`` GPU each the cluster's GPUs hold (fractions do not span GPUs)."""
    if share <= 0:
        return 1
    if share <= 1:
        return int(gpus_in_cluster) * int(1 / share + 1e-9)
    return int(gpus_in_cluster // share)


def _cpu_actor_cpus(nodes: Sequence[Node], model_roles: int) -> float:
    """CPUs of a model actor without a GPU share: half a CPU, less on small nodes so that one actor of each of the
    run's ``model_roles`` and a decode task fit on the smallest node together (two roles: a quarter of it each)."""
    return min(CPU_ACTOR_CPUS, _smallest_cpus(nodes) / (2 * model_roles))


def plan_pools(
    options: GenerationOptions, nodes: Sequence[Node], model_roles: int = 2
) -> tuple[PoolPlan, PoolPlan]:
    """The captioner and scorer pools: the options, else 0.75 + 0.25 of each GPU (0 without GPUs)."""
    cluster_gpus = sum(node.gpus for node in nodes)
    caption_gpus = (
        options.captioner_gpus if options.captioner_gpus is not None else (0.75 if cluster_gpus else 0)
    )
    score_gpus = options.scorer_gpus if options.scorer_gpus is not None else (0.25 if cluster_gpus else 0)
    caption_max = options.captioner_replicas or max(1, _fits(cluster_gpus, caption_gpus))
    score_max = options.scorer_replicas or max(
        1, min(_fits(cluster_gpus, score_gpus), math.ceil(caption_max / 4))
    )
    actor_cpus = _cpu_actor_cpus(nodes, model_roles)

    def pool(gpus: float, given: int | None, largest: int) -> PoolPlan:
        return PoolPlan(gpus, 1.0 if gpus > 0 else actor_cpus, given or 1, given or largest)

    return (
        pool(caption_gpus, options.captioner_replicas, caption_max),
        pool(score_gpus, options.scorer_replicas, score_max),
    )


def _smallest_cpus(nodes: Sequence[Node]) -> float:
    """CPUs of the smallest node that has any (a head started with ``--num-cpus 0`` runs no tasks)."""
    return min((node.cpus for node in nodes if node.cpus > 0), default=0.0)


def plan_extra_pool(
    options: GenerationOptions, nodes: Sequence[Node], spec: Any, model_roles: int = 3
) -> PoolPlan:
    """The pool of a role beyond captioner and scorer (``spec``: its :class:`~avt_triplets.model_host.Pool`):
    its GPU share option, else its default share on a cluster with GPUs (0 without); from 1 replica up to what
    the GPUs hold, or its replicas option."""
    cluster_gpus = sum(node.gpus for node in nodes)
    given = getattr(options, spec.gpus_option)
    gpus = given if given is not None else (spec.default_gpus if cluster_gpus else 0)
    replicas = getattr(options, spec.replicas_option) if spec.replicas_option else None
    cpus = 1.0 if gpus > 0 else _cpu_actor_cpus(nodes, model_roles)
    return PoolPlan(gpus, cpus, replicas or 1, replicas or max(1, _fits(cluster_gpus, gpus)))


def plan_resources(
    options: GenerationOptions, nodes: Sequence[Node], extra: Mapping[str, Any] | None = None
) -> ResourcePlan:
    """Every pool of the run: captioner and scorer, and ``extra`` (role name -> its ``Pool`` spec)."""
    extra = extra or {}
    roles = 2 + len(extra)
    caption, score = plan_pools(options, nodes, roles)
    pools = {role: plan_extra_pool(options, nodes, spec, roles) for role, spec in extra.items()}
    return ResourcePlan(caption, score, decode_cpus=min(DECODE_CPUS, _smallest_cpus(nodes) / 2), extra=pools)


def _place(node_cpus: list[float], node_gpus: list[list[float]], cpus: float, gpus: float) -> bool:
    """Take ``cpus`` and ``gpus`` from the first node that holds them (a GPU share up to 1 on one GPU, larger
    requests in whole GPUs); False when none does."""
    for index, free_gpus in enumerate(node_gpus):
        if node_cpus[index] + EPS < cpus:
            continue
        if gpus <= 0:
            node_cpus[index] -= cpus
            return True
        if gpus <= 1:
            slot = next((k for k, free in enumerate(free_gpus) if free + EPS >= gpus), None)
            if slot is None:
                continue
            free_gpus[slot] -= gpus
        else:
            whole = [k for k, free in enumerate(free_gpus) if free + EPS >= 1][: math.ceil(gpus)]
            if len(whole) < math.ceil(gpus):
                continue
            for k in whole:
                free_gpus[k] = 0.0
        node_cpus[index] -= cpus
        return True
    return False


def unplaceable(plan: ResourcePlan, nodes: Sequence[Node], captioned: bool) -> bool:
    """True when the requests that must run together cannot be packed onto ``nodes`` in any order tried
    (largest first, each on the first node that holds it)."""
    if not any(node.cpus > 0 for node in nodes):
        return True  # every task asks for some CPU
    node_cpus = [node.cpus for node in nodes]
    node_gpus = [[1.0] * int(node.gpus) + ([node.gpus % 1] if node.gpus % 1 > EPS else []) for node in nodes]
    needed = sorted(plan.at_once(captioned), key=lambda item: (item[2], item[1]), reverse=True)
    return not all(_place(node_cpus, node_gpus, cpus, gpus) for _, cpus, gpus in needed)


def _amount(value: float, unit: str) -> str:
    return f"{value:g} {unit}"


def describe_requests(plan: ResourcePlan, captioned: bool) -> str:
    """``2 captioner actors (0.5 GPU + 1 CPU each), a decode task (1 CPU), ...``"""
    counts = Counter(plan.at_once(captioned))
    parts = []
    for (what, cpus, gpus), count in counts.items():
        each = " each" if count > 1 else ""
        needs = f"{_amount(gpus, 'GPU')} + {_amount(cpus, 'CPU')}" if gpus else _amount(cpus, "CPU")
        parts.append(f"{count} {what}{'s' if count > 1 else ''} ({needs}{each})")
    return ", ".join(parts)


def describe_nodes(nodes: Sequence[Node]) -> str:
    """``2 nodes: 2 x (1 CPU, 0 GPU)``"""
    shapes = Counter((node.cpus, node.gpus) for node in nodes)
    listed = ", ".join(f"{count} x ({cpus:g} CPU, {gpus:g} GPU)" for (cpus, gpus), count in shapes.items())
    return f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}: {listed or 'none alive'}"


def check_placeable(plan: ResourcePlan, nodes: Sequence[Node], captioned: bool, address: str) -> None:
    """Refuse in one line a plan that Ray could never start (it would wait forever at 0 clips)."""
    if unplaceable(plan, nodes, captioned):
        shares = " / ".join(
            f"--{role.replace('_', '-')}-gpus" for role in ("captioner", "scorer", *plan.extra)
        )
        raise UsageError(
            f"the Ray cluster at {address} cannot run this plan: it needs at once "
            f"{describe_requests(plan, captioned)}, but the cluster has {describe_nodes(nodes)}. Lower "
            f"{shares} (0 on a cluster without GPUs) or --captioner-replicas / --scorer-replicas, or add nodes"
        )


__all__ = [
    "Node",
    "PoolPlan",
    "ResourcePlan",
    "alive_nodes",
    "check_placeable",
    "describe_nodes",
    "plan_extra_pool",
    "plan_pools",
    "plan_resources",
]
