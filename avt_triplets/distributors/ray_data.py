"""The ``ray`` distributor: generation as a streaming Ray Data pipeline over a cluster (``pip install avt[ray]``).

::

    chunks ─▶ decode (CPU tasks, any node) ─▶ CaptionStep (captioner actors, GPU share each)
           [─▶ AudioCaptionStep (audio captioner actors, --audio-captioner-gpus each), one pool per further role]
           ─▶ ScoreStep (scorer actors, GPU share each) ─▶ chunk parts (CPU tasks) ─▶ shard commit (a task)

- **Unit of work**: a chunk (``--chunk-size`` clips of one shard, :mod:`avt_triplets.stages.reader`), one Ray
  Data row from decoding to its part file. The worker stage batches inside a chunk only and resets everything
  per chunk, so the rows equal the ``local`` distributor's whatever actor runs them.
- **Models**: hosted by the run's :class:`~avt_triplets.model_host.ModelHost` (loading, probes, batch size, input
  preparation, each role's step); this module only places them: one actor pool per model role
  (:class:`ModelActor` over the host's :class:`~avt_triplets.model_host.Replica` per role), the probes in tasks with
  that pool's resources (:meth:`RayDistributor.run_where`).
- **Model inputs**: decode tasks also run the models' per-clip preprocessing, as the ``local`` decode workers do
  (the host's decode settings: distinct frames through the captioner's image processor, the scorer's audio
  windows), so the actors on GPUs only stack batches and run the models. The preprocessors come from the models
  (here, or the probe tasks that load them) and travel to the tasks without the weights.
- **Memory**: Ray Data streams and applies backpressure, so no stage holds more than its share of the object
  store; a chunk's frame inputs are dropped once captioned; decode runs in a child process of the task (a
  crashing decoder becomes an ``undecodable`` clip, as with ``local``).
- **Exactly once**: a chunk's part is its rows, then a record written last; a retried task writes the same files
  again. When all chunks of a shard have parts, the driver starts one commit task (data, failures, then the stats
  file) that deletes the parts; a shard with a stats file is never committed again. A killed driver loses only
  unfinished chunks: the rerun commits complete shards and runs the missing chunks.
- **Faults**: Ray retries tasks and restarts actors whose process or node died; the models are checked on a
  synthetic input before any clip is decoded, every actor checks it loaded the models the manifest records, and a
  model failing on a single item (:class:`~avt_triplets.batching.ModelFailure`) stops the run
  (:class:`~avt_core.errors.RunAborted`), keeping finished shards and chunks.

The output must be reachable from every node: a shared filesystem or an object store URL (the output's path object,
storage options included, travels to the tasks in memory; nothing writes the options to a file).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from avt_core import storage
from avt_core.errors import RunAborted, UsageError
from avt_triplets.batching import ModelFailure
from avt_triplets.decoding import DecodedItem, DecodeJob, DecodeSettings, iter_decoded
from avt_triplets.distributors.base import RunReport, Work, run_stopping_cause, stopped
from avt_triplets.distributors.ray_output import DriverOutputToLog, ray_log_folder
from avt_triplets.distributors.ray_resources import alive_nodes, check_placeable, plan_resources
from avt_triplets.distributors.ray_watch import PipelineWatch
from avt_triplets.model_host import CORE_ROLES, ModelHost, Replica, role_named
from avt_triplets.options import GenerationOptions
from avt_triplets.stages.reader import Chunk
from avt_triplets.stages.worker import PackStep
from avt_triplets.stages.writer import (
    WriterIdentity,
    commit_from_parts,
    finished_chunk_keys,
    write_chunk_part,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise UsageError("--distributor ray needs Ray Data: pip install 'avt[ray]'") from error
    return ray


# ----------------------------------------------------------------------------------------------
# Replicas and tasks


def _granted(fn: Callable[[bool | None], T]) -> T:
    """``fn`` in a task or actor Ray placed: told whether Ray granted it a GPU."""
    import ray

    return fn(bool(ray.get_gpu_ids()))


class ModelActor:
    """One replica of a model role (:class:`~avt_triplets.model_host.Replica`): its step over one chunk per
    call, loaded on the GPU share Ray gave the actor."""

    def __init__(self, replica: Replica, options: GenerationOptions):
        self.step = _granted(partial(replica.start, options))

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"chunk": row["chunk"], "payload": self.step(row["chunk"], row["payload"])}


def decode_chunk(row: dict[str, Any], settings: DecodeSettings) -> dict[str, Any]:
    """The chunk's clips decoded in a child process (one clip that crashes FFmpeg is recorded, not fatal)."""
    chunk: Chunk = row["chunk"]
    jobs = [DecodeJob(i, chunk.shard, clip) for i, clip in enumerate(chunk.clips)]
    items: list[DecodedItem] = list(iter_decoded(jobs, settings, num_workers=1, prefetch=len(jobs)))
    return {"chunk": chunk, "payload": items}


def pack_chunk(row: dict[str, Any]) -> dict[str, Any]:
    """``--captioner none``: the decoded chunk as labelled rows (no model, so no actor)."""
    return {"chunk": row["chunk"], "payload": PackStep()(row["chunk"], row["payload"])}


def write_part(row: dict[str, Any], root: Path, captioned: bool = True) -> dict[str, Any]:
    """``root`` is the output's path object: a store path carries its storage options to the task."""
    result = row["payload"]
    write_chunk_part(root, result, captioned)
    return {"shard": result.chunk.shard, "key": result.chunk.key, "clips": result.clips}


# ----------------------------------------------------------------------------------------------
# The distributor


class RayDistributor:
    """All shards of the run, processed by a Ray Data pipeline; this process is the driver."""

    name = "ray"
    rank, world_size, is_main = 0, 1, True

    hosts_models_here = False  # the actors load them, each on its GPU share

    def __init__(self, options: GenerationOptions, captioned: bool = True, roles: Sequence[str] = ()):
        ray = _ray()
        self.options = options
        self.captioned = captioned
        self.roles = tuple(roles)  # the run's model roles (model_host.run_roles); captioner and scorer always
        self.started_ray = not ray.is_initialized()
        self.output = DriverOutputToLog()
        if self.started_ray:
            self._connect(ray)
        # Ray Data logs every failed task with its traceback; the run ends with one line saying what failed
        # (the tracebacks stay in the session's logs under /tmp/ray).
        logging.getLogger("ray").setLevel(logging.ERROR)
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        try:
            self._plan(ray)
        except BaseException:
            self.close()
            raise

    def _connect(self, ray) -> None:
        """Join (or start) Ray; Ray's own driver output goes to a log file from the first connection attempt
        (in Ray's session folder once connected)."""
        self.output.start(Path(tempfile.gettempdir()) / f"avt-ray-driver-{os.getpid()}.log")
        try:
            ray.init(
                address=self.options.ray_address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
            kept = f"; Ray's messages are in {self.output.path}" if self.output.path else ""
            self.output.stop()
            raise UsageError(
                f"cannot join the Ray cluster at {self.options.ray_address}: {_first_line(error)} (a cluster "
                f"with token authentication needs RAY_AUTH_MODE=token and its token here, see the README){kept}"
            ) from error
        self.output.move(ray_log_folder() / f"avt-driver-{os.getpid()}.log")

    def _plan(self, ray) -> None:
        """Requests sized from the cluster's nodes, refused in one line if they can never be placed."""
        nodes = alive_nodes(ray)
        extra = {name: role_named(name).pool for name in self.roles if name not in CORE_ROLES}
        self.resources = plan_resources(self.options, nodes, extra)
        where = self.options.ray_address or "this machine"
        check_placeable(self.resources, nodes, self.captioned, where)

    def shard_indices(self, num_shards: int) -> range:
        return range(num_shards)

    def owns(self, index: int) -> bool:
        return True

    def close(self) -> None:
        self.output.stop()
        if self.started_ray:
            _ray().shutdown()

    def run_where(self, role: str, fn: Callable[[bool | None], T]) -> T:
        """``fn`` in a task with the resources of ``role``'s actor pool (a probe sees what an actor will)."""
        ray = _ray()
        pool = self.resources.pool(role)
        return ray.get(ray.remote(_granted).options(num_gpus=pool.gpus, num_cpus=pool.cpus).remote(fn))

    def agree(self, value: Any) -> Any:
        return value  # one driver decides for every actor

    def run(self, work: Work, host: ModelHost) -> RunReport:
        from tqdm.auto import tqdm

        work = _with_driver_credentials(work)
        todo, missing = _chunks_to_run(work)
        commits = _Commits(work, WriterIdentity(self.name), host.captioned, self.resources.commit_cpus)
        for index, keys in missing.items():
            if not keys:  # every chunk finished before a driver was stopped: only the commit is left
                commits.launch(index)
        progress = tqdm(
            total=work.clips,
            initial=work.clips - sum(len(c.clips) for c in todo),
            unit="clip",
            desc="generate (ray)",
            disable=not work.options.progress,
            dynamic_ncols=True,
        )
        try:
            with PipelineWatch(_ray(), len(todo)) as watch:
                for row in self._pipeline(work, host, todo).iter_rows() if todo else ():
                    watch.progressed()
                    missing[row["shard"]].discard(row["key"])
                    progress.update(row["clips"])
                    if not missing[row["shard"]]:
                        commits.launch(row["shard"])
                    commits.collect(wait=False)
        except Exception as error:
            commits.collect(wait=True)
            raise _stopping_error(work, error) from error
        finally:
            progress.close()
        errors = commits.collect(wait=True)
        return RunReport(processed=sum(len(c.clips) for c in todo), shard_errors=errors)

    def _pipeline(self, work: Work, host: ModelHost, todo: list[Chunk]):
        """The Ray Data dataset whose rows are the finished chunks' part summaries."""
        ray = _ray()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        context.raise_original_map_exception = True  # a ModelFailure reaches the driver as itself
        settings = host.decode_settings(work.options)
        dataset = ray.data.from_items([{"chunk": chunk} for chunk in todo], override_num_blocks=len(todo))
        plan = self.resources
        dataset = dataset.map(decode_chunk, fn_kwargs={"settings": settings}, num_cpus=plan.decode_cpus)
        replicas = host.replicas(work.options)
        for replica in replicas:  # one actor pool per model role, in the host's order
            dataset = self._model_pool(dataset, replica, work.options)
        if not replicas:
            dataset = dataset.map(pack_chunk, num_cpus=plan.light_cpus)
        write_kwargs = {"root": work.root, "captioned": host.captioned}
        return dataset.map(write_part, fn_kwargs=write_kwargs, num_cpus=plan.light_cpus)

    def _model_pool(self, dataset, replica: Replica, options: GenerationOptions):
        """An actor pool of ``replica``'s role, sized by its resource plan; models the caller gave travel
        through the object store once."""
        ray = _ray()
        replica = replace(replica, source=replica.source.shipped(ray.put, ray.get))
        pool = self.resources.pool(replica.role)
        return dataset.map(
            ModelActor,
            fn_constructor_args=(replica, options),
            compute=pool.strategy(),
            num_gpus=pool.gpus,
            num_cpus=pool.cpus,
        )


def _with_driver_credentials(work: Work) -> Work:
    """``work`` whose output path and storage options carry the credentials this driver resolved for the
    stores it uses, so workers on other machines (without this environment) reach them too."""
    sources = [clip.source for plan in work.plans for clip in plan.clips]
    protocols = {storage.protocol_of(work.root)} | {
        storage.protocol_of(s) for s in sources if storage.is_url(s)
    }
    options = storage.with_driver_credentials(work.options.storage_options, protocols - {""})
    if options == work.options.storage_options:
        return work
    root = storage.as_path(str(work.root), options) if storage.is_remote(work.root) else work.root
    return replace(work, root=root, options=replace(work.options, storage_options=options))


def _chunks_to_run(work: Work) -> tuple[list[Chunk], dict[int, set[str]]]:
    """The chunks without a finished part, and per planned shard the keys still missing (one listing each)."""
    todo: list[Chunk] = []
    missing: dict[int, set[str]] = {}
    for plan in work.plans:
        have = finished_chunk_keys(work.root, plan.index)
        chunks = [c for c in plan.chunks(work.options.chunk_size) if c.key not in have]
        missing[plan.index] = {c.key for c in chunks}
        todo += chunks
    return todo, missing


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what caused it: Ray wraps a task's exception (``cause``) in its own (``__cause__``)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__


def _stopping_error(work: Work, error: BaseException) -> RunAborted:
    """What a failed pipeline means for the user: a broken model, a full disk, or another error; in every case
    the finished shards and chunks stay and a rerun resumes."""
    known = (RunAborted, ModelFailure, OSError)
    error = next((e for e in _causes(error) if isinstance(e, known) and not _is_ray_error(e)), error)
    if isinstance(error, RunAborted):
        return stopped(work, None, f"stopped: {error}")
    cause = run_stopping_cause(error, _first_line(error))
    if cause is None:
        cause = f"stopped: the Ray pipeline failed ({type(error).__name__}: {_first_line(error)})"
    return stopped(work, None, cause)


def _is_ray_error(error: BaseException) -> bool:
    return type(error).__module__.startswith("ray.")


def _first_line(error: BaseException) -> str:
    """The first line of an error's message (Ray Data appends its retry advice after it)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _Commits:
    """Commit tasks of the shards whose chunks are all finished; the card is refreshed as they land."""

    def __init__(self, work: Work, identity: WriterIdentity, captioned: bool, cpus: float):
        self.work, self.identity, self.captioned = work, identity, captioned
        self.task = _ray().remote(commit_from_parts).options(num_cpus=cpus, max_retries=3)
        self.plans = {plan.index: plan for plan in work.plans}
        self.running: dict[Any, int] = {}  # ObjectRef -> shard
        self.errors: list[str] = []

    def launch(self, index: int) -> None:
        plan, chunk_size = self.plans[index], self.work.options.chunk_size
        ref = self.task.remote(self.work.root, plan, chunk_size, self.identity, self.captioned)
        self.running[ref] = index

    def collect(self, wait: bool) -> list[str]:
        ray = _ray()
        while self.running:
            done, _ = ray.wait(
                list(self.running), num_returns=len(self.running) if wait else 1, timeout=None if wait else 0
            )
            if not done:
                break
            for ref in done:
                index = self.running.pop(ref)
                try:
                    ray.get(ref)
                except Exception as error:  # noqa: BLE001 - this shard stays unfinished; a rerun retries it
                    logger.error("committing shard %d failed; it stays unfinished", index, exc_info=error)
                    error = next((e for e in _causes(error) if not _is_ray_error(e)), error)
                    self.errors.append(f"shard {index}: {type(error).__name__}: {_first_line(error)}")
                else:
                    if self.work.card is not None:
                        self.work.card.refresh()
        return self.errors


__all__ = ["ModelActor", "RayDistributor", "decode_chunk", "pack_chunk", "write_part"]
