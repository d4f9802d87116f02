"""The models of a generation run, hosted one way whichever distributor places the work.

A distributor (:mod:`avt_triplets.distributors`) decides where work runs, with which resources and in which order;
everything about the models is here, so a new distributor (Dask, a Slurm array) reuses it instead of copying it:

- **roles** (:data:`ROLES`): the models of the worker stage in the order it runs them (captioner, the optional
  ones such as the audio captioner, then scorer), each with how it loads, what identifies it in the manifest,
  its pre-run check, which per-clip input preparation it hands the decoders, its step over a chunk, whether the
  options ask for it and its Ray actor pool. A run's roles are :func:`roles_for` its options: a role not asked
  for is absent (not loaded, probed or recorded; its columns absent); ``--captioner none`` has none at all.
  Distributors place roles, they never name them.

How to add a model (an audio-visual captioner, a caption merger), as ``audio_captioner`` was added:

1. a backend module with a loader and a model object that has ``identity()`` (a frozen dataclass whose every
   field the manifest requires; see :mod:`avt_triplets.audio_caption_contract` + :mod:`avt_triplets.audio_captioners`)
   and its call on ready inputs; a ``models.load_<role>_from(options, device)``;
2. options: the model in :class:`ModelOptions` (``None``: not asked for; ``--captioner none`` refuses it), its
   batch size in :class:`GenerationOptions` and its GPU share (``<role>_gpus``, listed in ``RAY_OPTIONS``);
3. one :class:`Role` entry in :data:`ROLES`, between captioner and scorer: ``wanted`` (does the options' model
   exist), ``check`` (synthetic input -> :class:`RunAborted` for a broken model; a ``preflight`` function),
   ``step`` (``(chunk, CaptionedChunk) -> CaptionedChunk`` adding ``extra[kind]``: per clip its candidates, as
   :class:`~avt_triplets.stages.audio_captions.AudioCaptionStep` does) and :class:`Pool` (its GPU share option);
4. the manifest: its identity keys in ``manifest.IDENTITY_KEYS`` (and the ones known before loading in
   ``PLANNED_MODEL_KEYS`` / ``planned_models``), its record in ``manifest.MODEL_RECORDS``, and in
   ``schema.CAPTION_KIND_RECORDS`` the caption kind whose column group (``schema.modality_caption_features``) its
   record brings. The scorer scores each kind's candidates against the clip audio and writes the group's columns
   (``{kind}_captions``, ``{kind}_caption_scores``, ``{kind}_caption``, ... as far as the group has them).
- **hosts**: where a run's models come from. :class:`LoadedHost` holds them in this process (given, or loaded
  from the options on this process's device: the ``local`` and ``accelerate`` distributors);
  :class:`DeferredHost` loads them only where each role's replicas run (the ``ray`` distributor's actors; the
  first replica of each role probes the model it loaded and reports to the run's
  :class:`~avt_triplets.probe_board.ProbeBoard`, or a probe runs through :meth:`Placement.run_where`); :class:`LabelsOnlyHost` (``--captioner none``)
  has none and runs the model-free worker stage.

Every host answers the same questions: the models' manifest records, the pre-run check, the caption batch size
(``auto`` resolved, then agreed between processes by the placement), the decode settings (the models' per-clip
input preparation), the worker stage for one process, and one :class:`Replica` per role for pools of replicas.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

from avt_core.errors import RunAborted, UsageError
from avt_triplets import devices, manifest, models, preflight, schema
from avt_triplets.auto_batch_size import resolve_caption_batch_size
from avt_triplets.decoding import DecodeSettings
from avt_triplets.media import usable_hwaccel
from avt_triplets.model_inputs import InputPreparer, audio_preprocessor_of, image_preprocessor_of
from avt_triplets.options import GenerationOptions, ModelOptions
from avt_triplets.probe_board import ProbeBoard, Verdict
from avt_triplets.stages.audio_captions import AudioCaptionStep
from avt_triplets.stages.av_captions import AvCaptionStep
from avt_triplets.stages.caption_merge import CaptionMergeStep
from avt_triplets.stages.reader import Chunk
from avt_triplets.stages.visual_choice import VisualChoiceStep
from avt_triplets.stages.worker import CaptionStep, ChunkWorker, PackStep, ScoreStep

T = TypeVar("T")
ChunkStep = Callable[[Chunk, Any], Any]  # (chunk, what the previous role made of it) -> what this role makes


class Placement(Protocol):
    """What a host asks of the distributor that places it (every :class:`~avt_triplets.distributors.base.
    Distributor` is one)."""

    hosts_models_here: bool  # this process runs the models (else only the distributor's workers do)
    # the role's first replica probes the model it loaded, and the distributor settles the run with the reports
    # (``Distributor.run_probing``); else models not hosted here are probed through :meth:`run_where` first
    probes_in_replicas: bool

    def run_where(self, role: str, fn: Callable[[bool | None], T]) -> T:
        """``fn(granted_gpu)`` where ``role``'s replicas run, with their resources (a probe); ``granted_gpu``
        None: in this process (its device is :func:`~avt_triplets.devices.process_device`)."""
        ...

    def agree(self, value: Any) -> Any:
        """One ``value`` for every process of the run (the smallest), so they all cut the same batches."""
        ...


# ----------------------------------------------------------------------------------------------
# Roles: the models of the worker stage


@dataclass
class Probed:
    """What probing one role's model found: its manifest record (None: it failed, ``message`` says why), its
    per-clip preprocessing for the decoders, the caption batch size its resources hold (``auto``, captioner only)
    and what it hands on to the next role's probe (the captioner's caption of a synthetic frame)."""

    record: dict[str, Any] | None
    message: str = ""
    preprocess: Any = None
    caption_batch_size: int | None = None
    hands_on: dict[str, Any] = field(default_factory=dict)


def _check_captioner(captioner: Any, options: GenerationOptions, handed: dict[str, Any]) -> dict[str, Any]:
    return {"caption": preflight.check_captioner(captioner)}


def _check_audio_captioner(
    captioner: Any, options: GenerationOptions, handed: dict[str, Any]
) -> dict[str, Any]:
    return {"audio_caption": preflight.check_audio_captioner(captioner, options.clip_seconds)}


def _check_scorer(scorer: Any, options: GenerationOptions, handed: dict[str, Any]) -> dict[str, Any]:
    preflight.check_scorer(scorer, options.clip_seconds, handed.get("caption", "a test caption"))
    return {}


class _CaptionChunk:
    """The captioner's step for a replica: a chunk's decoded clips -> captions, pixels dropped (nothing after
    the captioner needs them: less to move to a scorer elsewhere)."""

    def __init__(self, captioner: Any, options: GenerationOptions):
        self.step = CaptionStep(captioner, options.caption_batch_size, options.seed, options.fps)

    def __call__(self, chunk: Chunk, items: Any) -> Any:
        return self.step(chunk, items).without_frames()


class _ScoreChunk:
    """The scorer's step for a replica: a captioned chunk -> rows or failures."""

    def __init__(self, scorer: Any, options: GenerationOptions):
        self.step = ScoreStep(scorer, options.score_batch_size)

    def __call__(self, chunk: Chunk, captioned: Any) -> Any:
        return self.step(captioned)


def _audio_caption_chunk(captioner: Any, options: GenerationOptions) -> ChunkStep:
    return AudioCaptionStep(captioner, options.audio_caption_batch_size)


def _check_visual_scorer(scorer: Any, options: GenerationOptions, handed: dict[str, Any]) -> dict[str, Any]:
    from avt_triplets.visual_scorers import check_visual_scorer

    check_visual_scorer(scorer)
    return {}


def _check_av_captioner(captioner: Any, options: GenerationOptions, handed: dict[str, Any]) -> dict[str, Any]:
    from avt_triplets.av_captioners import check_av_captioner

    return {"av_caption": check_av_captioner(captioner, options.clip_seconds)}


def _check_caption_merger(merger: Any, options: GenerationOptions, handed: dict[str, Any]) -> dict[str, Any]:
    from avt_triplets.caption_mergers import check_caption_merger

    return {"av_caption": check_caption_merger(merger)}


def _visual_choice_chunk(scorer: Any, options: GenerationOptions) -> ChunkStep:
    return VisualChoiceStep(scorer, options.visual_score_batch_size)


def _av_caption_chunk(captioner: Any, options: GenerationOptions) -> ChunkStep:
    return AvCaptionStep(captioner, captioner.candidates, options.seed, options.fps)


def _caption_merge_chunk(merger: Any, options: GenerationOptions) -> ChunkStep:
    return CaptionMergeStep(merger, options.merge_batch_size)


def _record_of(model: Any) -> dict[str, Any]:
    """The record of a caption-kind model (``extra_models.ModelIdentity`` and what the model adds)."""
    return model.record()


def _always(models: ModelOptions) -> bool:
    return True


@dataclass(frozen=True)
class Pool:
    """A role's actor pool on the ``ray`` distributor: the :class:`GenerationOptions` field of its GPU share,
    the share it takes on a cluster with GPUs when that is unset, and the field of its replica count (None: Ray
    Data scales the pool from 1 up to what the GPUs hold)."""

    gpus_option: str
    default_gpus: float
    replicas_option: str | None = None


@dataclass(frozen=True)
class Role:
    """One model of the worker stage: how it loads, what identifies it, its pre-run check (``check``: the model on
    synthetic input, raising :class:`RunAborted`; returns what it hands on to the next role's check), which input
    preparation it gives the decoders (``prepares``: the :class:`InputPreparer` field, None: its inputs are made
    in the model process), its step over a chunk, whether the options ask for it, and its Ray actor pool."""

    name: str  # the manifest key, the name of its replica pool
    load: Callable[[ModelOptions, Any], Any]  # (options, device) -> model
    record: Callable[[Any], dict[str, Any]]
    check: Callable[[Any, GenerationOptions, dict[str, Any]], dict[str, Any]]
    step: Callable[[Any, GenerationOptions], ChunkStep]
    pool: Pool
    prepares: str | None = None
    preprocessor: Callable[[Any], Any] | None = None
    wanted: Callable[[ModelOptions], bool] = _always
    sizes_caption_batch: bool = False  # its probe resolves ``--caption-batch-size auto`` (the captioner)

    def probe(self, model: Any, options: GenerationOptions, handed: dict[str, Any]) -> Probed:
        """The check, then what the run needs from the model: its record, its preprocessing for the decoders and
        (captioner) the ``auto`` caption batch size its resources hold."""
        hands_on = self.check(model, options, handed)
        size = None
        if self.sizes_caption_batch and options.caption_batch_size == "auto":
            size = resolve_caption_batch_size(model, options, None)
        preprocess = None if self.preprocessor is None else self.preprocessor(model)
        return Probed(self.record(model), preprocess=preprocess, caption_batch_size=size, hands_on=hands_on)


# The roles in the order the worker stage runs them: the captioner first (it takes the decoded clips), then the
# scorer (it scores every kind's candidates and makes the rows); the ones between take and return the captioned
# chunk (``CaptionedChunk.extra``, one entry per caption kind; ``visual_choice``), the ones after it the rows
# (``ChunkResult``: the caption merger, which needs the audio caption the scorer chose). Adding a model is one entry here, one options field
# (ModelOptions; its batch size and GPU share in GenerationOptions), one backend module, its manifest record
# (manifest.IDENTITY_KEYS, schema.CAPTION_KIND_RECORDS for the columns it makes) and a check in preflight.
ROLES: tuple[Role, ...] = (
    Role(
        "captioner",
        lambda options, device: models.load_captioner_from(options, device),
        manifest.captioner_record,
        _check_captioner,
        _CaptionChunk,
        Pool("captioner_gpus", 0.75, "captioner_replicas"),
        prepares="image",
        preprocessor=image_preprocessor_of,
        sizes_caption_batch=True,
    ),
    Role(
        "visual_scorer",
        lambda options, device: models.load_visual_scorer_from(options, device),
        _record_of,
        _check_visual_scorer,
        _visual_choice_chunk,
        Pool("visual_scorer_gpus", 0.25),
        wanted=lambda options: options.visual_scorer is not None,
    ),
    Role(
        "audio_captioner",
        lambda options, device: models.load_audio_captioner_from(options, device),
        manifest.audio_captioner_record,
        _check_audio_captioner,
        _audio_caption_chunk,
        Pool("audio_captioner_gpus", 0.5),
        wanted=lambda options: options.audio_captioner is not None,
    ),
    Role(
        "av_captioner",
        lambda options, device: models.load_av_captioner_from(options, device),
        _record_of,
        _check_av_captioner,
        _av_caption_chunk,
        Pool("av_captioner_gpus", 0.5),
        wanted=lambda options: options.av_captioner is not None,
    ),
    Role(
        "scorer",
        lambda options, device: models.load_scorer_from(options, device),
        manifest.scorer_record,
        _check_scorer,
        _ScoreChunk,
        Pool("scorer_gpus", 0.25, "scorer_replicas"),
        prepares="audio",
        preprocessor=audio_preprocessor_of,
    ),
    # after the scorer: it merges the audio caption the scorer chose (takes and returns the ChunkResult)
    Role(
        "caption_merger",
        lambda options, device: models.load_caption_merger_from(options, device),
        _record_of,
        _check_caption_merger,
        _caption_merge_chunk,
        Pool("caption_merger_gpus", 0.25),
        wanted=lambda options: options.av_caption_from is not None,
    ),
)
CORE_ROLES = ("captioner", "scorer")  # every captioned run has them; the others are there when asked for


def roles_for(options: ModelOptions | None, given: Any = None) -> tuple[Role, ...]:
    """The roles of a run, in order: those whose models were ``given`` (names), else those ``options`` ask for."""
    if given is not None:
        return tuple(role for role in ROLES if role.name in given)
    return tuple(role for role in ROLES if options is not None and role.wanted(options))


def run_roles(captioner: Any, scorer: Any, options: ModelOptions | None) -> tuple[str, ...]:
    """The role names of a run (none for ``--captioner none``), before anything loads: what a distributor places."""
    if models.labels_only(captioner, scorer, options):
        return ()
    if captioner is not None and scorer is not None:
        return CORE_ROLES
    return tuple(role.name for role in roles_for(options))


def role_named(name: str) -> Role:
    return next(role for role in ROLES if role.name == name)


@dataclass
class ModelSource:
    """How a replica gets its model: loaded from ``options`` on its device, or one ``given`` (an object, or a
    reference into a store that ``fetch`` resolves: :meth:`shipped`). Picklable: it travels without weights
    unless models were given."""

    options: ModelOptions | None = None
    given: dict[str, Any] = field(default_factory=dict)
    fetch: Callable[[Any], Any] | None = None

    def load(self, role: Role, granted_gpu: bool | None = None) -> Any:
        if role.name in self.given:
            model = self.given[role.name]
            return model if self.fetch is None else self.fetch(model)
        return role.load(self.options, devices.model_device(self.options.device, granted_gpu))

    def shipped(self, put: Callable[[Any], Any], fetch: Callable[[Any], Any]) -> ModelSource:
        """This source with its given models ``put`` into a store once (Ray's object store) instead of copied
        into every replica."""
        return ModelSource(self.options, {name: put(model) for name, model in self.given.items()}, fetch)


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """A manifest record as JSON would store it (dtypes as strings), for comparisons."""
    return json.loads(json.dumps(record, default=str))


def check_same_model(role: str, loaded: dict[str, Any], expected: dict[str, Any]) -> None:
    """A replica must hold the model the manifest records (a node with other weights would write other rows)."""
    if _plain(loaded) != _plain(expected):
        raise RunAborted(f"a {role} replica loaded {loaded}, but the run records {expected}; every node must see "
                         "the same model files")  # fmt: skip


@dataclass
class Replica:
    """What a pool of one role's replicas needs (picklable): the role, where its model comes from, and the
    record every replica must match."""

    role: str
    source: ModelSource
    expected: dict[str, Any] | None  # None: not probed yet, the run's board will say (:meth:`start_probing`)

    def start(self, options: GenerationOptions, granted_gpu: bool | None = None) -> ChunkStep:
        """Load the model (on the GPU the scheduler granted, see :func:`~avt_triplets.devices.model_device`),
        check it is the recorded one, and return its step over a chunk."""
        role = role_named(self.role)
        model = self.source.load(role, granted_gpu)
        check_same_model(role.name, role.record(model), self.expected)
        return role.step(model, options)

    def start_probing(
        self, board: ProbeBoard, options: GenerationOptions, granted_gpu: bool | None = None
    ) -> ChunkStep:
        """Load the model; the role's first replica also probes it and reports to ``board`` (the model loads once
        per replica, no probe task loads it again). Then wait for the driver's verdict: the run's options and the
        record every replica must match, or why the run stops (:class:`RunAborted`, before any clip). ``options``:
        the run's before it settled (what the probe needs: clip length, the caption batch size asked for)."""
        role = role_named(self.role)
        if board.claim(role.name):
            model, probed = _load_and_probe(role, self.source, options, board, granted_gpu)
            board.report(role.name, probed)
        else:
            model = self._load_unless_stopped(role, board, granted_gpu)
        verdict = board.verdict()
        if verdict.stopped:
            raise RunAborted(verdict.stopped)
        check_same_model(role.name, role.record(model), verdict.records[role.name])
        return role.step(model, verdict.options)

    def _load_unless_stopped(self, role: Role, board: ProbeBoard, granted_gpu: bool | None) -> Any:
        """The model; if it fails to load, the run's stopping line when the probe failed too (the same model,
        broken everywhere: every replica says what the probe said), else the error itself (this node's)."""
        try:
            return self.source.load(role, granted_gpu)
        except Exception:
            stopped = board.verdict().stopped
            if stopped:
                raise RunAborted(stopped) from None
            raise


def probe_role(
    name: str,
    source: ModelSource,
    options: GenerationOptions,
    handed: dict[str, Any],
    granted_gpu: bool | None,
) -> Probed:
    """Load one role's model where its replicas run and probe it; a failure comes back as one line."""
    return _load_and_probe(role_named(name), source, options, handed, granted_gpu)[1]


def _load_and_probe(
    role: Role, source: ModelSource, options: GenerationOptions, handed: Any, granted_gpu: bool | None
) -> tuple[Any, Probed]:
    """The loaded model (None if loading failed) and its probe; ``handed``: what earlier roles hand on, or a
    board to ask for it once this model is loaded (the roles load side by side, then probe in order)."""
    model = None
    try:
        model = source.load(role, granted_gpu)
        if not isinstance(handed, dict):
            handed = handed.handed(role.name)
        return model, role.probe(model, options, handed)
    except Exception as error:  # noqa: BLE001 - reported to the driver as one line
        message = str(error) if isinstance(error, RunAborted) else f"{type(error).__name__}: {error}"
        return model, Probed(None, message)


# ----------------------------------------------------------------------------------------------
# Input preparation


def decode_settings(
    options: GenerationOptions, scorer_sampling_rate: int | None, prepare: InputPreparer | None = None
) -> DecodeSettings:
    """How every clip of a run is decoded (the same for every distributor); ``scorer_sampling_rate`` None: no
    model will see the clips, so only what the dataset stores is made. ``prepare`` (the roles' preprocessors)
    moves the models' per-clip preprocessing into decoding."""
    return DecodeSettings(
        storage_options=options.storage_options,
        fps=options.fps,
        clip_seconds=options.clip_seconds,
        scorer_sampling_rate=int(scorer_sampling_rate or schema.AUDIO_SAMPLING_RATE),
        model_inputs=scorer_sampling_rate is not None,
        jpeg_quality=options.jpeg_quality,
        decoder_threads=options.decoder_threads,
        video_hwaccel=usable_hwaccel(options.video_hwaccel),
        prepare=prepare,
    )


# ----------------------------------------------------------------------------------------------
# Hosts


class ModelHost(Protocol):
    """The models of a run, whoever places them."""

    captioned: bool  # False: ``--captioner none``, no model and no caption columns
    # True: the role's first replica probes where it runs (:meth:`Replica.start_probing`) and the driver settles
    # the run with the reports (:meth:`DeferredHost.accept`), instead of probing before the run
    probes_in_replicas: bool

    def records(self, options: GenerationOptions) -> dict[str, Any]:
        """The manifest's model records (``captioner``, ``scorer``)."""
        ...

    def check(self, options: GenerationOptions) -> None:
        """The pre-run check on synthetic inputs (:class:`RunAborted` for a broken model)."""
        ...

    def caption_batch_size(self, options: GenerationOptions, recorded: int | None) -> int | str:
        """The run's caption batch size (``auto`` resolved, see :mod:`avt_triplets.auto_batch_size`), the same
        in every process of the run."""
        ...

    def decode_settings(self, options: GenerationOptions) -> DecodeSettings: ...

    def worker(self, options: GenerationOptions) -> ChunkWorker | PackStep:
        """The whole worker stage in this process (every role, or the model-free one)."""
        ...

    def replicas(self, options: GenerationOptions) -> list[Replica]:
        """One replica description per role, in order, for pools (none without models)."""
        ...


class LabelsOnlyHost:
    """``--captioner none``: no model; decoded clips become labelled rows (:class:`PackStep`)."""

    captioned, probes_in_replicas = False, False

    def __init__(self, placement: Placement):
        self.placement = placement

    def records(self, options: GenerationOptions) -> dict[str, Any]:
        return manifest.models_manifest(None, None)

    def check(self, options: GenerationOptions) -> None:
        pass  # nothing to check

    def caption_batch_size(self, options: GenerationOptions, recorded: int | None) -> int | str:
        return self.placement.agree(options.caption_batch_size)  # nothing is captioned

    def decode_settings(self, options: GenerationOptions) -> DecodeSettings:
        return decode_settings(options, None)

    def worker(self, options: GenerationOptions) -> PackStep:
        return PackStep()

    def replicas(self, options: GenerationOptions) -> list[Replica]:
        return []


class LoadedHost:
    """Models held by this process: given by the caller, or loaded here from the options; ``extra``: the models
    of the roles between captioner and scorer (by role name)."""

    captioned, probes_in_replicas = True, False

    def __init__(
        self, placement: Placement, captioner: Any, scorer: Any, extra: dict[str, Any] | None = None
    ):
        self.placement = placement
        self.captioner, self.scorer = captioner, scorer
        self.models = {"captioner": captioner, **(extra or {}), "scorer": scorer}
        self.roles = roles_for(None, given=self.models)

    def records(self, options: GenerationOptions) -> dict[str, Any]:
        return {role.name: role.record(self.models[role.name]) for role in self.roles}

    def check(self, options: GenerationOptions) -> None:
        preflight.check_models(self.captioner, self.scorer, options.clip_seconds)
        for role in self.roles:
            if role.name not in CORE_ROLES:
                role.check(self.models[role.name], options, {})

    def caption_batch_size(self, options: GenerationOptions, recorded: int | None) -> int | str:
        return self.placement.agree(resolve_caption_batch_size(self.captioner, options, recorded))

    def decode_settings(self, options: GenerationOptions) -> DecodeSettings:
        prepare = InputPreparer(
            **{
                role.prepares: role.preprocessor(self.models[role.name])
                for role in self.roles
                if role.prepares is not None
            },
            image_short_side=self.captioner.image_short_side(),  # --caption-image-size
        )
        return decode_settings(options, self.scorer.sampling_rate, prepare)

    def worker(self, options: GenerationOptions) -> ChunkWorker:
        return _chunk_worker(self.roles, self.models, options)

    def replicas(self, options: GenerationOptions) -> list[Replica]:
        records = self.records(options)
        source = ModelSource(given=dict(self.models))
        return [Replica(role.name, source, records[role.name]) for role in self.roles]


def _chunk_worker(roles: tuple[Role, ...], loaded: dict[str, Any], options: GenerationOptions) -> ChunkWorker:
    """Every role's step in this process: captioner, the roles between, scorer, the roles after it."""
    scorer_at = [role.name for role in roles].index("scorer")
    steps = [role.step(loaded[role.name], options) if role.name not in CORE_ROLES else None for role in roles]
    middle = [step for step in steps[:scorer_at] if step is not None]
    after = [step for step in steps[scorer_at + 1 :] if step is not None]
    return ChunkWorker(loaded["captioner"], loaded["scorer"], options, middle, after)


class DeferredHost:
    """Models loaded only where each role's replicas run (none in this process): the records, the check and an
    ``auto`` caption batch size come from a probe of each role, in role order (the captioner's caption is the
    scorer's probe text): made by the first replica of the role when the placement ``probes_in_replicas``
    (:meth:`Replica.start_probing`, reports taken by :meth:`accept`), else run by the placement where that role's
    replicas run (with their resources, :meth:`Placement.run_where`)."""

    captioned = True

    def __init__(self, placement: Placement, models: ModelOptions):
        self.placement, self.source = placement, ModelSource(options=models)
        self.roles = roles_for(models)
        self.probed: dict[str, Probed] | None = None
        self.probes_in_replicas = placement.probes_in_replicas

    def accept(self, probed: dict[str, Probed]) -> None:
        """The reports of the replicas that probed each role (:meth:`Replica.start_probing`), in place of the
        probes through the placement; the first failed role (in role order) stops the run."""
        failed = [
            probed[role.name].message
            for role in self.roles
            if role.name in probed and probed[role.name].record is None
        ]
        missing = [role.name for role in self.roles if role.name not in probed]
        if failed or missing:
            raise RunAborted(failed[0] if failed else f"the {missing[0]} was not probed")
        self.probed = dict(probed)

    def unprobed_replicas(self) -> list[Replica]:
        """One replica per role, in order, each probing when it is its pool's first (no record to match yet)."""
        return [Replica(role.name, self.source, None) for role in self.roles]

    def verdict(self, options: GenerationOptions) -> Verdict:
        """What every replica and decode task waits for once the run is settled with ``options``."""
        return Verdict(options, self.records(options), self.decode_settings(options))

    def _probe(self, options: GenerationOptions) -> dict[str, Probed]:
        handed: dict[str, Any] = {}
        probed: dict[str, Probed] = {}
        for role in self.roles:
            result = self.placement.run_where(
                role.name, partial(probe_role, role.name, self.source, options, handed)
            )
            if result.record is None:
                raise RunAborted(result.message)
            probed[role.name] = result
            handed = {**handed, **result.hands_on}
        return probed

    def _probed(self, options: GenerationOptions) -> dict[str, Probed]:
        if self.probed is None:
            self.probed = self._probe(options)
        return self.probed

    def records(self, options: GenerationOptions) -> dict[str, Any]:
        return {name: probed.record for name, probed in self._probed(options).items()}

    def check(self, options: GenerationOptions) -> None:
        self._probed(options)  # the probes ran the same checks where the models run

    def caption_batch_size(self, options: GenerationOptions, recorded: int | None) -> int | str:
        """``auto`` is decided where the captioner runs (its probe); an output's recorded size wins on a resume."""
        if options.caption_batch_size == "auto" and recorded is None:
            size = self._probed(options)["captioner"].caption_batch_size
        else:
            size = resolve_caption_batch_size(None, options, recorded)
        return self.placement.agree(size)

    def decode_settings(self, options: GenerationOptions) -> DecodeSettings:
        probed = self._probed(options)
        prepare = InputPreparer(
            **{
                role.prepares: probed[role.name].preprocess
                for role in self.roles
                if role.prepares is not None
            },
            image_short_side=probed["captioner"].record["image_size"],  # --caption-image-size, as probed
        )
        return decode_settings(options, probed["scorer"].record["sampling_rate"], prepare)

    def worker(self, options: GenerationOptions) -> ChunkWorker:
        """The models loaded in this process (a worker process of a distributor that starts its own)."""
        return _chunk_worker(self.roles, {role.name: self.source.load(role) for role in self.roles}, options)

    def replicas(self, options: GenerationOptions) -> list[Replica]:
        records = self.records(options)
        return [Replica(role.name, self.source, records[role.name]) for role in self.roles]


def _load_here(model_options: ModelOptions) -> tuple[dict[str, Any], Any, Any]:
    """Every role's model loaded on this process's device (a placement that runs the models here): the roles
    between captioner and scorer by name, the captioner, the scorer."""
    device = devices.process_device(model_options.device)
    captioner, scorer = models.load_models(model_options, device)
    extra = {
        role.name: role.load(model_options, device)
        for role in roles_for(model_options)
        if role.name not in CORE_ROLES
    }
    return extra, captioner, scorer


def host_for(
    placement: Placement,
    captioner: Any = None,
    scorer: Any = None,
    model_options: ModelOptions | None = None,
) -> ModelHost:
    """The host of a run's models: none (``--captioner none``), the ones given, or loaded from
    ``model_options``: here when the placement runs them in this process, else where their replicas run."""
    if models.labels_only(captioner, scorer, model_options):
        return LabelsOnlyHost(placement)
    if captioner is not None and scorer is not None:
        return LoadedHost(placement, captioner, scorer)
    if model_options is None:
        raise UsageError("generate_triplets needs a captioner and a scorer, or ModelOptions to load them")
    if placement.hosts_models_here:
        extra, captioner, scorer = _load_here(model_options)
        return LoadedHost(placement, captioner, scorer, extra)
    return DeferredHost(placement, model_options)


__all__ = [
    "CORE_ROLES",
    "ROLES",
    "DeferredHost",
    "LabelsOnlyHost",
    "LoadedHost",
    "ModelHost",
    "ModelSource",
    "Placement",
    "Pool",
    "Probed",
    "Replica",
    "Role",
    "Verdict",
    "check_same_model",
    "decode_settings",
    "host_for",
    "probe_role",
    "role_named",
    "roles_for",
    "run_roles",
]
