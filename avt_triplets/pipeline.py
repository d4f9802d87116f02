"""``generate_triplets``: the switchboard of triplet generation (LG-CAV-MAE §2.3; see docs/architecture.md).

Videos become one row per clip: frames captioned, every caption scored against the clip's audio, the best
caption kept. The work is split the way video2dataset splits it, and this module only picks the parts and
calls them once:

- the **reader** (:mod:`avt_triplets.stages.reader`): INPUT -> clip specs -> shards -> chunks, and what is
  left to do in an existing output;
- the **worker** (:mod:`avt_triplets.stages.worker`): a chunk of decoded clips -> rows or failures;
- the **writer** (:mod:`avt_triplets.stages.writer`): shard files with the stats file last, manifest, card;
- a **distributor** (:mod:`avt_triplets.distributors`) that decides where decoding and the worker run:
  ``local`` (this process plus decode workers), ``accelerate`` (the processes of a launcher, shards
  ``rank::world``), ``ray`` (a Ray Data pipeline: decode tasks, captioner and scorer actor pools).

Whichever distributor runs, the output is the same contract (docs/architecture.md), a shard is done once its
stats file exists, and a rerun with any distributor skips finished shards. Before any model loads the inputs,
output folder and options are checked once, into a :class:`~avt_triplets.run_plan.RunPlan` the run works from;
before any clip is decoded the models run on a synthetic frame and clip (the model host's check,
:mod:`avt_triplets.model_host`).

``ModelOptions(captioner="none")`` (``avt generate --captioner none``) loads no model at all: the distributor
runs the model-free worker stage and the rows are labelled clips without caption columns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from avt_triplets import manifest
from avt_triplets.captioners import Captioner
from avt_triplets.distributors.base import Distributor, RunReport, Work
from avt_triplets.inputs import ClipSpec, InputSet
from avt_triplets.model_host import ModelHost, host_for, run_roles
from avt_triplets.models import labels_only
from avt_triplets.options import GenerationOptions, ModelOptions
from avt_triplets.output_lock import hold_output, launch_run_key
from avt_triplets.run_plan import RunPlan, plan_run
from avt_triplets.scorers import AudioTextScorer
from avt_triplets.stages.reader import pending_work
from avt_triplets.stages.writer import ProvisionalCard, prepare_output, write_final_card
from avt_triplets.summary import GenerationSummary, summarize


def pick_distributor(
    options: GenerationOptions, captioned: bool = True, roles: Sequence[str] = ()
) -> Distributor:
    """The distributor ``options.distributor`` names (``auto``: accelerate when launched with several
    processes, else local); ``captioned`` False (``--captioner none``): it has no model to place; ``roles``: the
    run's model roles (:func:`~avt_triplets.model_host.run_roles`), each an actor pool on ``ray``."""
    from avt_triplets.distributors.accelerate import AccelerateDistributor, launched_world_size
    from avt_triplets.distributors.local import LocalDistributor

    kind = options.distributor
    if kind == "auto":
        kind = "accelerate" if options.rank is None and launched_world_size() > 1 else "local"
    if kind == "ray":
        from avt_triplets.distributors.ray_data import RayDistributor

        return RayDistributor(options, captioned, roles)
    if options.rank is not None or options.world_size is not None:
        return LocalDistributor(rank=options.rank or 0, world_size=options.world_size or 1)
    if kind == "accelerate":
        return AccelerateDistributor()
    return LocalDistributor()


def _run(distributor: Distributor, host: ModelHost, plan: RunPlan) -> RunReport:
    """Output folder, manifest and card, then the pending shards of this distributor with the host's models.

    The output's manifest is read again here, under the lock: ``--overwrite`` cleared it, or another process of
    the same launch wrote it since the plan was made; the comparison now includes what loading the models
    recorded (dtype, Hub commits)."""
    root, options = plan.root, plan.options
    prepare_output(root, distributor.owns, distributor.rank == 0, options.overwrite)
    models = host.records(options)
    existing = (
        None
        if options.overwrite
        else manifest.check_manifest(root, manifest.with_models(plan.manifest, models))
    )
    shard_indices = distributor.shard_indices(plan.num_shards)
    plans = pending_work(root, plan.shards, shard_indices, options.retry_failed, options.verify)
    if plans:
        host.check(options)
    recorded = (existing or {}).get("caption_batch_size")
    plan = plan.with_caption_batch_size(host.caption_batch_size(options, recorded))
    if existing is None:
        manifest.check_or_write_manifest(root, manifest.with_models(plan.manifest, models), options.overwrite)
    card = (
        ProvisionalCard(root, options.card_license()) if options.write_card and distributor.is_main else None
    )
    if card is not None:
        card.refresh(force=True)
    return distributor.run(Work(root, plan.options, plans, plan.num_shards, card), host)


def generate_triplets(
    inputs: str | os.PathLike | Sequence[ClipSpec] | InputSet | RunPlan,
    output_dir: str | os.PathLike | None = None,
    captioner: Captioner | None = None,
    scorer: AudioTextScorer | None = None,
    options: GenerationOptions | None = None,
    *,
    models: ModelOptions | None = None,
    **overrides: Any,
) -> GenerationSummary:
    """Generate (or resume) the triplet dataset of ``inputs`` into ``output_dir``.

    ``inputs`` is a folder of videos, a CSV/JSONL list (see :mod:`avt_triplets.inputs`), an :class:`InputSet`
    already loaded, or a list of :class:`ClipSpec`; or a :class:`~avt_triplets.run_plan.RunPlan` already made
    (what `avt generate` passes: it carries the output folder and the options, so the checks run once). The
    models are ``captioner`` and ``scorer`` when given,
    else loaded from ``models`` (after the inputs and output folder were checked); ``models.captioner`` "none"
    stores the clips with their labels and loads no model. ``options`` (or keyword
    overrides of its fields) set everything else. Returns the totals over all finished shards; the summary is
    complete (and the card written) when this process saw the last shard finish; ``summary.missing_videos`` says
    why when more listed videos were missing than ``options.max_missing_fraction`` allows. Raises
    :class:`~avt_core.errors.UsageError` for unusable inputs, output folders or options (before any work)
    and :class:`~avt_core.errors.RunAborted` when a model is broken or the disk is full.
    """
    wall_start = time.perf_counter()
    captioned = not labels_only(captioner, scorer, models)
    if isinstance(inputs, RunPlan):
        if output_dir is not None or options is not None or overrides:
            raise TypeError("a RunPlan carries its output folder and options; pass neither again")
        if inputs.captioned != captioned:
            raise TypeError("the RunPlan was made for other models (captioned or not) than these")
        plan = inputs
    else:
        if output_dir is None:
            raise TypeError("generate_triplets needs an output_dir")
        options = replace(options or GenerationOptions(), **overrides)
        given = captioner is not None and scorer is not None
        planned = manifest.models_manifest(captioner, scorer) if given else manifest.planned_models(models)
        plan = plan_run(inputs, output_dir, options, captioned=captioned, models=planned)
    run_key = launch_run_key(plan.options.world_size)
    with hold_output(plan.root, "avt generate", run=run_key):  # before models load
        return _generate(plan, wall_start, (captioner, scorer, models))


def _generate(
    plan: RunPlan,
    wall_start: float,
    models: tuple[Captioner | None, AudioTextScorer | None, ModelOptions | None],
) -> GenerationSummary:
    """The run itself, under the output's lock: distributor, shards, then the summary of what the output holds."""
    root, options, input_set = plan.root, plan.options, plan.inputs
    distributor = pick_distributor(options, plan.captioned, run_roles(*models))
    try:
        host = host_for(distributor, *models)  # loads the models here when the distributor runs them here
        report = _run(distributor, host, plan)
    finally:
        distributor.close()
    summary = summarize(root, plan.num_shards)
    summary.processed_this_run = report.processed
    summary.distributor = distributor.name
    summary.rank, summary.world_size = distributor.rank, distributor.world_size
    summary.wall_seconds = time.perf_counter() - wall_start
    summary.shard_errors = report.shard_errors
    summary.skipped_inputs = input_set.skipped
    if input_set.missing is not None and input_set.missing.exceeds(options.max_missing_fraction):
        summary.missing_videos = input_set.missing.error_line(options.max_missing_fraction)
    if options.write_card and summary.shards_done == summary.shards_total:
        summary.card_path, summary.card_error = write_final_card(root)
    return summary


__all__ = [
    "GenerationOptions",
    "GenerationSummary",
    "generate_triplets",
    "labels_only",
    "pick_distributor",
    "summarize",
]
