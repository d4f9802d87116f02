"""The plan of one generation run, made once before any model loads and handed down to the run.

`avt generate` used to check the inputs and the output folder twice (in the command, then again in
:func:`~avt_triplets.pipeline.generate_triplets`) and build the manifest, which hashes every clip spec, up to four
times, with two options objects alive. Now :func:`plan_run` does the pre-flight checks once
(:mod:`avt_triplets.preflight`: the input, the videos a list names, the output folder, the output's manifest against
what the options already say about the models) and keeps what they found in a :class:`RunPlan`: the clips, the
checked output folder's path object, the shards and the manifest without its models. The switchboard takes the plan as it is; the only later change is the caption batch size once the host resolved it
(:meth:`RunPlan.with_caption_batch_size`), which replaces the plan's options instead of keeping a second copy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from avt_core import storage
from avt_triplets import manifest, output_folder, preflight
from avt_triplets.inputs import ClipSpec, InputSet
from avt_triplets.options import GenerationOptions
from avt_triplets.stages.reader import plan_shards


@dataclass(frozen=True)
class RunPlan:
    """What a generation run works from, decided once before any model loads."""

    inputs: InputSet
    root: Path  # the output as a path object (a store URL's path carries its storage options)
    options: GenerationOptions
    captioned: bool  # False: ``--captioner none``
    shards: list[tuple[ClipSpec, ...]]  # the run's shards (every process's), in order
    manifest: dict[str, Any]  # the manifest without its models (input digest included, computed once)
    output_state: str = "new"  # ``new``, ``empty`` or ``avt output`` (output_folder.generation_output_state)
    existing_manifest: dict[str, Any] | None = None  # the output's manifest when resuming

    @property
    def num_shards(self) -> int:
        return len(self.shards)

    def with_caption_batch_size(self, size: int | str) -> RunPlan:
        """The plan with the run's caption batch size (``auto`` resolved), in its options and its manifest."""
        options = replace(self.options, caption_batch_size=size)
        recorded = None if size == "auto" else int(size)
        return replace(self, options=options, manifest={**self.manifest, "caption_batch_size": recorded})


def plan_run(
    inputs: str | os.PathLike | Sequence[ClipSpec] | InputSet,
    output_dir: str | os.PathLike,
    options: GenerationOptions,
    *,
    captioned: bool = True,
    models: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> RunPlan:
    """Everything about a run that can be checked without its models, once; returns the plan the run works from.

    ``captioned`` is False for a ``--captioner none`` run (so resuming a captioned output with it, or the
    reverse, is refused here, before any model loads). ``models``: what the options already say about the models
    (:func:`~avt_triplets.manifest.planned_models`), compared with the output's manifest together with the run's
    options, so one refusal lists every difference. Creates ``output_dir`` when it does not exist (after checking
    it may write there). Problems are :class:`~avt_core.errors.UsageError`\\ s. ``dry_run`` writes nothing (the
    folder is neither created nor probed with a file: its permissions are judged instead), so ``avt generate
    --dry-run`` refuses exactly what a real run refuses, with the same line.
    """
    input_set = preflight.check_missing_videos(
        preflight.resolve_inputs(inputs, options), options.max_missing_fraction
    )
    with storage.access_refusals_as_usage_errors(output_dir):
        root = storage.as_path(output_dir, options.storage_options)
        state = output_folder.check_generation_output(root, dry_run)
    shards = plan_shards(input_set.clips, options.shard_size)
    run_manifest = manifest.run_manifest(options, input_set, len(shards), captioned=captioned)
    existing = None
    if not options.overwrite:
        models = models or {}
        planned = manifest.with_models(run_manifest, models)
        existing = manifest.check_manifest(root, planned, manifest.planned_keys(models))
    return RunPlan(input_set, root, options, captioned, shards, run_manifest, state, existing)


__all__ = ["RunPlan", "plan_run"]
