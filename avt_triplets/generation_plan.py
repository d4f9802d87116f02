"""``avt generate --dry-run``: what a run would do, found by the run's own checks, with nothing loaded or written.

The plan is made of the pieces a real run uses, called read-only: :func:`~avt_triplets.run_plan.plan_run`
(inputs, missing videos, the output folder rule and its manifest, with the refusal a real run would give),
:func:`~avt_triplets.output_lock.check_not_held` (another command writing the output), the resume scan
(:func:`~avt_triplets.stages.reader.scan_done_shards` + :func:`~avt_triplets.stages.reader.plan_pending`: done,
damaged and pending shards) and :func:`~avt_triplets.manifest.planned_models` (model names and local weights
digests). Hub models are named by the commit their revision resolves to (from the Hub, else the local cache), local
ones by the content digest a run records; no weights are loaded and no video is decoded. The GPU-hour figure is
``avt_core.cost_model``'s, the one the paper's recipes use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from avt_core.cost_model import CLIPS_PER_GPU_HOUR, gpu_hours
from avt_triplets.manifest import planned_models
from avt_triplets.missing_videos import MissingVideos
from avt_triplets.models import check_model_options
from avt_triplets.options import GenerationOptions, ModelOptions
from avt_triplets.output_lock import check_not_held
from avt_triplets.revisions import ModelSource, model_source
from avt_triplets.run_plan import plan_run
from avt_triplets.stages.reader import plan_pending, scan_done_shards

OUTPUT_STATES = {
    "new": "new folder (a run creates it)",
    "empty": "empty folder",
    "avt output": "an earlier avt generate output: a run resumes it",
    "overwrite": "an earlier avt generate output: --overwrite starts it over (its shards deleted)",
}


def model_sources(models: ModelOptions, planned: dict[str, Any]) -> list[ModelSource]:
    """The captioner, the audio captioner if asked for, and the scorer (and msclap's weights and text model) a run
    would load; none for
    ``--captioner none``."""
    if models.labels_only:
        return []
    digest = planned.get("captioner", {}).get("weights_digest")
    found = [model_source("captioner", models.captioner, models.captioner_revision, digest)]
    if models.audio_captioner is not None:
        digest = planned.get("audio_captioner", {}).get("weights_digest")
        audio = model_source(
            "audio captioner", models.audio_captioner, models.audio_captioner_revision, digest
        )
        found.append(audio)
    for record, revision in (
        ("visual_scorer", models.visual_scorer_revision),
        ("av_captioner", models.av_captioner_revision),
        ("caption_merger", models.av_caption_from_revision),
    ):
        if record in planned:  # the option was given (manifest.planned_models)
            name, digest = planned[record]["name"], planned[record]["weights_digest"]
            found.append(model_source(record.replace("_", " "), name, revision, digest))
    if not models.scorer.startswith("msclap"):
        digest = planned.get("scorer", {}).get("weights_digest")
        return [*found, model_source("scorer", models.scorer, models.scorer_revision, digest)]
    found.append(ModelSource("scorer", models.scorer, "msclap", None))
    if models.scorer_weights:
        found.append(model_source("scorer weights", str(models.scorer_weights)))
    if models.scorer_text_model:
        found.append(model_source("scorer text model", str(models.scorer_text_model)))
    return found


def cost_kind(models: ModelOptions, sources: list[ModelSource]) -> str:
    """The cost model's kind of step: labelled clips only, LLaVA captions, else BLIP-2-class captions."""
    if models.labels_only:
        return "generate:none"
    captioner = sources[0]
    looks_llava = "llava" in f"{captioner.name} {captioner.model_type or ''}".lower()
    return "generate:llava" if looks_llava else "generate:blip2"


@dataclass
class GenerationPlan:
    """What ``avt generate`` would do with these options: printed as a summary and as one JSON line."""

    input: str
    clips: int
    files_skipped: int
    output: str
    output_state: str
    shard_size: int
    shards_total: int
    shards_done: int
    shards_damaged: dict[int, str]
    shards_pending: int
    clips_pending: int
    clips_again: int  # failed (or once missing) clips of done shards a run redoes
    models: list[ModelSource]
    cost_kind: str
    gpu_hours: float
    missing: MissingVideos | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["shards_damaged"] = {str(k): v for k, v in self.shards_damaged.items()}
        return data

    def format(self) -> str:
        """The readable summary (the JSON line follows it)."""
        lines = [
            "avt generate --dry-run: nothing was loaded, decoded or written",
            f"input: {self.input}: {self.clips} clips",
        ]
        if self.files_skipped:
            lines[-1] += f" ({self.files_skipped} files skipped: not videos)"
        if self.missing is not None and self.missing.missing:
            lines.append(f"  {self.missing.count_line()}")
        elif self.missing is not None:
            lines.append(f"  all {self.missing.total} listed videos found")
        lines.append(f"output: {self.output}: {OUTPUT_STATES[self.output_state]}")
        damaged = f", {len(self.shards_damaged)} of them damaged (redone)" if self.shards_damaged else ""
        lines.append(
            f"shards: {self.shards_total} planned ({self.shard_size} clips each), {self.shards_done} done{damaged}, "
            f"{self.shards_pending} pending ({self.clips_pending} clips to process"
            + (f", {self.clips_again} of them again in done shards" if self.clips_again else "")
            + ")"
        )
        for index, problem in sorted(self.shards_damaged.items()):
            lines.append(f"  shard {index} is damaged: {problem}")
        lines.append("models:" + ("" if self.models else " none (--captioner none)"))
        lines += [f"  {source.describe()}" for source in self.models]
        rate = CLIPS_PER_GPU_HOUR[self.cost_kind]
        lines.append(
            f"estimate: {self.gpu_hours:.3g} GPU-hours for {self.clips_pending} clips (H100-class, {rate:,} clips "
            f"per GPU-hour for {self.cost_kind}; docs/reproduce.md)"
        )
        lines += [f"note: {note}" for note in self.notes]
        lines.append("a real run would start: the same command without --dry-run")
        return "\n".join(lines)


def plan_generation(
    input: str, output: str, options: GenerationOptions, models: ModelOptions
) -> GenerationPlan:
    """The plan of ``avt generate INPUT --output OUTPUT``; raises the :class:`~avt_core.errors.UsageError` a real
    run would raise before loading its models."""
    if not models.labels_only:
        check_model_options(models)
    planned = planned_models(models, remember=False)
    checked = plan_run(input, output, options, captioned=not models.labels_only, models=planned, dry_run=True)
    check_not_held(checked.root)
    shards = checked.shards
    # the shards this process takes: all of them, or its share when the options name its rank and world size (as the
    # local distributor deals them out)
    mine = range(options.rank or 0, len(shards), options.world_size or 1)
    resumed = checked.output_state == "avt output" and not options.overwrite
    done, scan = scan_done_shards(checked.root, mine, options.verify) if resumed else (set(), None)
    damaged = dict(scan.damaged) if scan is not None else {}
    plans = plan_pending(checked.root, shards, mine, done - set(damaged), options.retry_failed)
    sources = model_sources(models, planned)
    kind = cost_kind(models, sources)
    pending = sum(len(plan.clips) for plan in plans)
    plan = GenerationPlan(
        input=str(input),
        clips=len(checked.inputs.clips),
        files_skipped=len(checked.inputs.skipped),
        output=str(output),
        output_state="overwrite"
        if options.overwrite and checked.output_state == "avt output"
        else checked.output_state,
        shard_size=options.shard_size,
        shards_total=len(shards),
        shards_done=len(done),
        shards_damaged=damaged,
        shards_pending=sum(1 for p in plans if not p.retry),
        clips_pending=pending,
        clips_again=sum(len(p.clips) for p in plans if p.retry),
        models=sources,
        cost_kind=kind,
        gpu_hours=gpu_hours(kind, pending),
        missing=checked.inputs.missing,
    )
    if len(mine) < len(shards):
        plan.notes.append(
            f"shards done and pending are this process's: rank {mine.start} of world size {mine.step}"
        )
    missing = checked.inputs.missing
    if missing is not None and missing.exceeds(options.max_missing_fraction):
        plan.notes.append(
            f"the run would end with exit 1: {missing.error_line(options.max_missing_fraction)}"
        )
    return plan


__all__ = ["GenerationPlan", "model_sources", "plan_generation"]
