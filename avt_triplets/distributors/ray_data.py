"""The ``ray`` distributor: generation as a streaming Ray Data pipeline over a cluster (``pip install avt[ray]``).

::

    chunks ─▶ decode (CPU tasks, any node) ─▶ CaptionStep (captioner actors, GPU share each)
           ─▶ ScoreStep (scorer actors, GPU share each) ─▶ chunk parts (CPU tasks) ─▶ shard commit (a task)

- **Unit of work**: a chunk (``--chunk-size`` clips of one shard, :mod:`avt_triplets.stages.reader`), one Ray
  Data row from decoding to its part file. The worker stage batches inside a chunk only and resets everything
  per chunk, so the rows equal the ``local`` distributor's whatever actor runs them.
- **Model inputs**: decode tasks also run the models' per-clip preprocessing, as the ``local`` decode workers do
  (:mod:`avt_triplets.model_inputs`: distinct frames through the captioner's image processor, the scorer's audio
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

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from avt_core import storage
from avt_core.errors import RunAborted, UsageError
from avt_triplets import manifest, preflight
from avt_triplets.auto_batch_size import resolve_caption_batch_size
from avt_triplets.batching import ModelFailure
from avt_triplets.decoding import DecodedItem, DecodeJob, DecodeSettings, iter_decoded
from avt_triplets.distributors.base import RunReport, Work, run_stopping_cause, stopped
from avt_triplets.distributors.local import decode_settings
from avt_triplets.distributors.ray_output import DriverOutputToLog, ray_log_folder
from avt_triplets.distributors.ray_resources import alive_nodes, check_placeable, plan_resources
from avt_triplets.distributors.ray_watch import PipelineWatch
from avt_triplets.model_inputs import (
    InputPreparer,
    audio_preprocessor_of,
    image_preprocessor_of,
    preparer_for,
)
from avt_triplets.models import labels_only, load_captioner_from, load_scorer_from
from avt_triplets.options import GenerationOptions, ModelOptions
from avt_triplets.stages.reader import Chunk
from avt_triplets.stages.worker import CaptionStep, PackStep, ScoreStep
from avt_triplets.stages.writer import (
    WriterIdentity,
    commit_from_parts,
    finished_chunk_keys,
    write_chunk_part,
)

logger = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise UsageError("--distributor ray needs Ray Data: pip install 'avt[ray]'") from error
    return ray


# ----------------------------------------------------------------------------------------------
# Models inside actors


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """A manifest record as JSON would store it (dtypes as strings), for comparisons."""
    return json.loads(json.dumps(record, default=str))


@dataclass
class ModelSource:
    """How actors get their models: loaded from ``options`` on the device Ray gave them, or (library use with
    models already built) fetched from the object store."""

    options: ModelOptions | None = None
    captioner_ref: Any = None
    scorer_ref: Any = None

    def device(self) -> str:
        import ray

        if self.options is not None and self.options.device:
            return self.options.device
        return "cuda" if ray.get_gpu_ids() else "cpu"

    def captioner(self):
        import ray

        if self.captioner_ref is not None:
            return ray.get(self.captioner_ref)
        return load_captioner_from(self.options, self.device())

    def scorer(self):
        import ray

        if self.scorer_ref is not None:
            return ray.get(self.scorer_ref)
        return load_scorer_from(self.options, self.device())


def _same_model(kind: str, loaded: dict[str, Any], expected: dict[str, Any]) -> None:
    """An actor must hold the model the manifest records (a node with other weights would write other rows)."""
    if _plain(loaded) != _plain(expected):
        raise RunAborted(f"a {kind} replica loaded {loaded}, but the run records {expected}; every node must see "
                         "the same model files")  # fmt: skip


@dataclass
class _Probed:
    """What a probe task reports: the model's manifest record (None: it failed, ``message`` says why), the
    caption of the synthetic frame, the per-clip preprocessing for the decode tasks and, for the captioner
    under ``--caption-batch-size auto``, the batch size its resources hold."""

    record: dict[str, Any] | None
    message: str = ""
    preprocess: Any = None
    caption_batch_size: int | None = None


def _failed_probe(error: Exception) -> _Probed:
    return _Probed(None, str(error) if isinstance(error, RunAborted) else f"{type(error).__name__}: {error}")


def _probe_captioner(source: ModelSource, options: GenerationOptions) -> _Probed:
    """In a task with the captioner's resources: its record, a caption of the synthetic frame, its image
    preprocessor and (``auto``) the caption batch size that fits there."""
    try:
        captioner = source.captioner()
        caption = preflight.check_captioner(captioner)
        size = None
        if options.caption_batch_size == "auto":
            size = resolve_caption_batch_size(captioner, options, None)
        return _Probed(manifest.captioner_record(captioner), caption, image_preprocessor_of(captioner), size)
    except Exception as error:  # noqa: BLE001 - reported to the driver as one line
        return _failed_probe(error)


def _probe_scorer(source: ModelSource, clip_seconds: float, caption: str) -> _Probed:
    try:
        scorer = source.scorer()
        preflight.check_scorer(scorer, clip_seconds, caption)
        return _Probed(manifest.scorer_record(scorer), preprocess=audio_preprocessor_of(scorer))
    except Exception as error:  # noqa: BLE001 - reported to the driver as one line
        return _failed_probe(error)


class CaptionActor:
    """A captioner replica: :class:`CaptionStep` over one chunk per call."""

    def __init__(self, source: ModelSource, expected: dict[str, Any], batch_size: int, seed: int):
        captioner = source.captioner()
        _same_model("captioner", manifest.captioner_record(captioner), expected)
        self.step = CaptionStep(captioner, batch_size, seed)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        captioned = self.step(row["chunk"], row["payload"])
        return {"chunk": row["chunk"], "payload": captioned.without_frames()}


class ScoreActor:
    """A scorer replica: :class:`ScoreStep` over one captioned chunk per call."""

    def __init__(self, source: ModelSource, expected: dict[str, Any], batch_size: int):
        scorer = source.scorer()
        _same_model("scorer", manifest.scorer_record(scorer), expected)
        self.step = ScoreStep(scorer, batch_size)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"chunk": row["chunk"], "payload": self.step(row["payload"])}


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

    def __init__(
        self,
        options: GenerationOptions,
        models: ModelOptions | None = None,
        captioner: Any = None,
        scorer: Any = None,
    ):
        ray = _ray()
        if models is None and (captioner is None or scorer is None):
            raise UsageError("the ray distributor needs ModelOptions, or a captioner and a scorer")
        self.options = options
        self.captioned = not labels_only(captioner, scorer, models)
        self.started_ray = not ray.is_initialized()
        self.output = DriverOutputToLog()
        if self.started_ray:
            self._connect(ray)
        # Ray Data logs every failed task with its traceback; the run ends with one line saying what failed
        # (the tracebacks stay in the session's logs under /tmp/ray).
        logging.getLogger("ray").setLevel(logging.ERROR)
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)
        try:
            self._plan(ray, captioner, scorer, models)
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

    def _plan(self, ray, captioner: Any, scorer: Any, models: ModelOptions | None) -> None:
        """Requests sized from the cluster's nodes, refused in one line if they can never be placed."""
        nodes = alive_nodes(ray)
        self.resources = plan_resources(self.options, nodes)
        where = self.options.ray_address or "this machine"
        check_placeable(self.resources, nodes, self.captioned, where)
        self.caption_pool, self.score_pool = self.resources.caption, self.resources.score
        self.local_models = (captioner, scorer) if captioner is not None and scorer is not None else None
        if self.local_models is not None:
            self.source = ModelSource(captioner_ref=ray.put(captioner), scorer_ref=ray.put(scorer))
        else:
            self.source = ModelSource(options=models)
        self.records: dict[str, dict[str, Any]] | None = None
        self.preparer: InputPreparer | None = None  # the models' per-clip preprocessing, for the decode tasks
        self.probed_batch_size: int | None = None  # ``auto`` resolved by the captioner's probe task

    def shard_indices(self, num_shards: int) -> range:
        return range(num_shards)

    def owns(self, index: int) -> bool:
        return True

    def close(self) -> None:
        self.output.stop()
        if self.started_ray:
            _ray().shutdown()

    def models_manifest(self) -> dict[str, Any]:
        """The models' records, from the models here or from a probe task with each pool's resources (which
        also runs the preflight check, before any clip is decoded)."""
        if self.records is None:
            if not self.captioned:
                self.records = manifest.models_manifest(None, None)
            elif self.local_models is not None:
                self.records = manifest.models_manifest(*self.local_models)
                self.preparer = preparer_for(*self.local_models)
            else:
                self.records = self._probe()
        return self.records

    def _probe(self) -> dict[str, dict[str, Any]]:
        ray = _ray()
        probe = ray.remote(_probe_captioner).options(
            num_gpus=self.caption_pool.gpus, num_cpus=self.caption_pool.cpus
        )
        captioner: _Probed = ray.get(probe.remote(self.source, self.options))
        if captioner.record is None:
            raise RunAborted(captioner.message)
        probe = ray.remote(_probe_scorer).options(
            num_gpus=self.score_pool.gpus, num_cpus=self.score_pool.cpus
        )
        scorer: _Probed = ray.get(probe.remote(self.source, self.options.clip_seconds, captioner.message))
        if scorer.record is None:
            raise RunAborted(scorer.message)
        self.preparer = InputPreparer(captioner.preprocess, scorer.preprocess, captioner.record["image_size"])
        self.probed_batch_size = captioner.caption_batch_size
        return {"captioner": captioner.record, "scorer": scorer.record}

    def caption_batch_size(self, options: GenerationOptions, recorded: int | None) -> int | str:
        """``auto`` is decided where the captioner runs: by the probe task (a captioner actor's resources), or
        by the models given here; the output's recorded size wins on a resume, as with ``local``."""
        if not self.captioned:
            return options.caption_batch_size
        if self.local_models is not None:
            return resolve_caption_batch_size(self.local_models[0], options, recorded)
        if options.caption_batch_size == "auto" and recorded is None:
            self.models_manifest()
            return self.probed_batch_size
        return resolve_caption_batch_size(None, options, recorded)

    def check_models(self, options: GenerationOptions) -> None:
        if self.captioned and self.local_models is not None:
            preflight.check_models(*self.local_models, options.clip_seconds)
        # else: the probe tasks of models_manifest ran the same checks on the pools' resources

    def run(self, work: Work) -> RunReport:
        from tqdm.auto import tqdm

        work = _with_driver_credentials(work)
        todo, missing = _chunks_to_run(work)
        commits = _Commits(work, WriterIdentity(self.name), self.captioned, self.resources.commit_cpus)
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
                for row in self._pipeline(work, todo).iter_rows() if todo else ():
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

    def decode_settings(self, options: GenerationOptions) -> DecodeSettings:
        """What the decode tasks make of a clip: the stored media and, for the models, the inputs the local
        distributor's decode workers make (the models' own preprocessing)."""
        if not self.captioned:
            return decode_settings(options, None)
        records = self.models_manifest()
        return decode_settings(options, records["scorer"]["sampling_rate"], self.preparer)

    def _pipeline(self, work: Work, todo: list[Chunk]):
        """The Ray Data dataset whose rows are the finished chunks' part summaries."""
        ray = _ray()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        context.raise_original_map_exception = True  # a ModelFailure reaches the driver as itself
        records = self.models_manifest()
        settings = self.decode_settings(work.options)
        dataset = ray.data.from_items([{"chunk": chunk} for chunk in todo], override_num_blocks=len(todo))
        plan = self.resources
        dataset = dataset.map(decode_chunk, fn_kwargs={"settings": settings}, num_cpus=plan.decode_cpus)
        if self.captioned:
            dataset = self._model_stages(dataset, work.options, records)
        else:
            dataset = dataset.map(pack_chunk, num_cpus=plan.light_cpus)
        write_kwargs = {"root": work.root, "captioned": self.captioned}
        return dataset.map(write_part, fn_kwargs=write_kwargs, num_cpus=plan.light_cpus)

    def _model_stages(self, dataset, options: GenerationOptions, records: dict[str, Any]):
        """Captioner and scorer actor pools after decoding."""
        caption, score = self.caption_pool, self.score_pool
        dataset = dataset.map(
            CaptionActor,
            fn_constructor_args=(self.source, records["captioner"], options.caption_batch_size, options.seed),
            compute=caption.strategy(),
            num_gpus=caption.gpus,
            num_cpus=caption.cpus,
        )
        dataset = dataset.map(
            ScoreActor,
            fn_constructor_args=(self.source, records["scorer"], options.score_batch_size),
            compute=score.strategy(),
            num_gpus=score.gpus,
            num_cpus=score.cpus,
        )
        return dataset


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


__all__ = ["CaptionActor", "ModelSource", "RayDistributor", "ScoreActor"]
