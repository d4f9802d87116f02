"""The manifest of a generation output: everything a row depends on, so a rerun can never mix runs.

``manifest.json`` records the models (name, resolved Hub commit or a digest of the local weights, dtype,
prompt, msclap's text model), the options that decide a row (fps, clip length, shard size, seed, JPEG
quality) and a digest of the input list. Resuming into an output whose manifest differs on any of
:data:`IDENTITY_KEYS` is refused with the list of differences; package versions, batch sizes and worker
counts may differ between the runs that fill one output. The caption batch size the first run used is recorded
(``caption_batch_size``): ``--caption-batch-size auto`` in a resumed run takes it, so the batches, and with them
the last bits of the floats, stay those of an uninterrupted run.
"""

from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from avt_core.atomic import atomic_write_json
from avt_core.errors import UsageError
from avt_triplets import layout, schema
from avt_triplets.audio_caption_contract import IDENTITY_FIELDS as AUDIO_IDENTITY_FIELDS
from avt_triplets.audio_caption_contract import AudioCaptionerIdentity
from avt_triplets.caption_merge_prompt import merger_model
from avt_triplets.captioner_contract import GREEDY, Captioner, CaptionerIdentity
from avt_triplets.inputs import InputSet, inputs_digest
from avt_triplets.options import GenerationOptions, ModelOptions
from avt_triplets.revisions import local_digest
from avt_triplets.shards import read_json

_VERSIONED_PACKAGES = ("avt", "torch", "transformers", "datasets", "accelerate", "av", "msclap", "numpy")


class IncompatibleOutputError(UsageError, RuntimeError):
    """The output folder holds a run made with other options, models or another input list."""


# Keys (dotted paths into the manifest) whose values decide the rows; anything else (package
# versions, worker counts, batch sizes, dates) may differ between the runs that fill one output.
# The records of issue 21's other caption-kind models (avt_triplets.extra_models.ModelIdentity and what each adds);
# each is there only when its option is given.
CAPTION_KIND_MODEL_FIELDS = {
    "visual_scorer": ("name", "revision", "weights_digest", "dtype"),
    "av_captioner": (
        "name",
        "revision",
        "weights_digest",
        "dtype",
        "prompt",
        "generation",
        "sampling",
        "candidates",
    ),
    "caption_merger": ("name", "revision", "weights_digest", "dtype", "prompt", "generation"),
}
IDENTITY_KEYS = (
    "captioned",
    "captioner.name",
    "captioner.revision",
    "captioner.weights_digest",
    "captioner.dtype",
    "captioner.prompt",
    "captioner.max_new_tokens",
    "captioner.generation",
    "captioner.image_size",
    "captioner.caption_unit",
    "captioner.clip_prompts",
    "scorer.name",
    "scorer.revision",
    "scorer.weights_digest",
    "scorer.dtype",
    "scorer.text_model",
    "scorer.text_model_revision",
    "scorer.text_model_digest",
    *(f"audio_captioner.{name}" for name in AUDIO_IDENTITY_FIELDS),
    *(f"{record}.{name}" for record, names in CAPTION_KIND_MODEL_FIELDS.items() for name in names),
    "fps",
    "clip_seconds",
    "shard_size",
    "seed",
    "audio_sampling_rate",
    "frame_short_side",
    "jpeg_quality",
    "input.clips",
    "input.digest",
)
# The keys known before any model is loaded: checked first, so a wrong rerun fails in seconds.
# Every model role's record (avt_triplets.model_host.ROLES): a role the options do not ask for has none.
MODEL_RECORDS = ("captioner", "audio_captioner", "scorer", *CAPTION_KIND_MODEL_FIELDS)
# The records of roles a captioned run may or may not have: absent means "no such model" (None), so adding or
# dropping one on a resume is a difference, said as one, and known before any model loads.
OPTIONAL_RECORDS = ("audio_captioner", *CAPTION_KIND_MODEL_FIELDS)
RUN_IDENTITY_KEYS = tuple(k for k in IDENTITY_KEYS if k.split(".")[0] not in MODEL_RECORDS)
# Identity keys added after the first manifests, with the value every older manifest implies.
IMPLIED_BEFORE_RECORDED = {
    "captioned": True,  # `--captioner none` came later: older outputs are captioned
    "captioner.generation": dict(GREEDY),  # recorded since the captioner contract; always greedy before
    "captioner.image_size": schema.FRAME_SHORT_SIDE,  # --caption-image-size came later: frames were 224 px
    "captioner.caption_unit": "frame",  # --caption-unit came later: captions were per frame
    "captioner.clip_prompts": [],
}


# A model's name (its path, for a local folder) is only a way to find its weights: when both runs recorded a digest of
# the weights and the digests are equal, the same bytes at another path are the same model.
NAME_DIGESTS = {
    "captioner.name": "captioner.weights_digest",
    "scorer.name": "scorer.weights_digest",
    "scorer.text_model": "scorer.text_model_digest",
    "audio_captioner.name": "audio_captioner.weights_digest",
    **{f"{record}.name": f"{record}.weights_digest" for record in CAPTION_KIND_MODEL_FIELDS},
}
# The model keys known before any model loads (from the options: name, local weights' digest, ...), so one refusal
# lists a model change together with an fps change instead of the second only after the models loaded.
PLANNED_MODEL_KEYS = (
    "captioner.name",
    "captioner.weights_digest",
    "captioner.prompt",
    "captioner.max_new_tokens",
    "captioner.caption_unit",
    "captioner.clip_prompts",
    "scorer.name",
    "scorer.weights_digest",
    "audio_captioner.name",
    "audio_captioner.weights_digest",
    "audio_captioner.prompt",
    "audio_captioner.max_new_tokens",
    "audio_captioner.windows",
    *(f"{record}.{key}" for record in CAPTION_KIND_MODEL_FIELDS for key in ("name", "weights_digest")),
)


def _get(data: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _recorded(data: dict, dotted: str) -> bool:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data.get(part) if isinstance(data, dict) else None
    return isinstance(data, dict) and last in data


def _parent_recorded(data: dict, dotted: str) -> bool:
    """The record ``dotted`` belongs to is there (a ``--captioner none`` output has no captioner record)."""
    parent = dotted.rpartition(".")[0]
    return not parent or isinstance(_get(data, parent), dict)


def _recorded_value(data: dict, dotted: str) -> Any:
    """The manifest's value of ``dotted``, or the one an older manifest that predates the key implies."""
    if not _recorded(data, dotted) and dotted in IMPLIED_BEFORE_RECORDED and _parent_recorded(data, dotted):
        return IMPLIED_BEFORE_RECORDED[dotted]
    return _get(data, dotted)


def _same_weights(old: dict, new: dict, name_key: str) -> bool:
    """Both runs recorded the same digest for the weights ``name_key`` names (so its path may differ)."""
    digest_key = NAME_DIGESTS.get(name_key)
    if digest_key is None:
        return False
    digest = _get(new, digest_key)
    return digest is not None and _get(old, digest_key) == digest


def manifest_differences(old: dict, new: dict, keys: Sequence[str] = IDENTITY_KEYS) -> list[str]:
    """One line per identity key whose value differs between an output's manifest and this run (all of them, so
    one refusal says everything to change); a model found at another path with the same weights digest is not a
    difference."""
    return [
        f"{key}: {_recorded_value(old, key)!r} (existing) != {_get(new, key)!r} (now)"
        if _recorded(old, key) or key in IMPLIED_BEFORE_RECORDED or key.split(".")[0] in OPTIONAL_RECORDS
        else f"{key}: not recorded by the avt that started this output, {_get(new, key)!r} now"
        for key in keys
        if _recorded_value(old, key) != _get(new, key) and not _same_weights(old, new, key)
    ]


def planned_keys(models: dict[str, Any]) -> tuple[str, ...]:
    """:data:`RUN_IDENTITY_KEYS` and the model keys :func:`planned_models` could know before loading."""
    known = tuple(k for k in PLANNED_MODEL_KEYS if _recorded(models, k))
    absent = tuple(f"{name}.name" for name in OPTIONAL_RECORDS if models and name not in models)
    return RUN_IDENTITY_KEYS + known + absent


def _captions_hint(old: dict) -> str:
    """Why a captioned output and a `--captioner none` run can't share a folder."""
    if _recorded_value(old, "captioned"):
        return " (this output holds captioned triplets; a --captioner none run writes labelled clips only)"
    return " (this output was made with --captioner none: labelled clips without captions)"


def check_manifest(root: Path, manifest: dict, keys: Sequence[str] = IDENTITY_KEYS) -> dict | None:
    """The existing manifest of ``root`` (None for a new output); raises when a row-deciding key differs."""
    path = root / layout.MANIFEST_FILE
    existing = read_json(path)
    if existing is not None:
        differences = manifest_differences(existing, manifest, keys)
        if differences:
            hint = _captions_hint(existing) if any(d.startswith("captioned:") for d in differences) else ""
            raise IncompatibleOutputError(
                f"{root} holds a generation run whose rows would differ from this run's{hint}: "
                + "; ".join(differences)
                + ". Use --overwrite to start over in this folder, or choose another --output-dir."
            )
    return existing


def check_or_write_manifest(root: Path, manifest: dict, overwrite: bool) -> dict:
    """Write ``manifest`` for a new output, or check that an existing output was made the same way."""
    existing = None if overwrite else check_manifest(root, manifest)
    if existing is not None:
        return existing
    atomic_write_json(root / layout.MANIFEST_FILE, manifest)
    return manifest


# ----------------------------------------------------------------------------------------------
# Building


def _package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_manifest(
    options: GenerationOptions, inputs: InputSet, num_shards: int, captioned: bool = True
) -> dict[str, Any]:
    """The part of the manifest known before any model is loaded; ``captioned`` False for ``--captioner none``
    (the rows then have no caption columns, and ``captioner`` / ``scorer`` are recorded as null)."""
    from avt_triplets import __version__

    return {
        "format": layout.MANIFEST_FORMAT,
        "avt_version": __version__,
        "captioned": bool(captioned),
        "row_layout": schema.ROW_LAYOUT,
        "fps": float(options.fps),
        "clip_seconds": float(options.clip_seconds),
        "shard_size": int(options.shard_size),
        "seed": int(options.seed),
        "audio_sampling_rate": schema.AUDIO_SAMPLING_RATE,
        "frame_short_side": schema.FRAME_SHORT_SIDE,
        "jpeg_quality": int(options.jpeg_quality),
        "caption_batch_size": None
        if options.caption_batch_size == "auto"
        else int(options.caption_batch_size),
        "input": {
            "source": inputs.source,
            "root": str(inputs.root),  # local only: a published manifest drops it (avt_triplets.public)
            "clips": len(inputs.clips),
            "digest": inputs_digest(inputs.clips),
            "limit": options.limit,
            "split": options.split,
            "label_csv": Path(options.label_csv).name if options.label_csv else None,
        },
        "classes": classes_record(options, inputs),
        "num_shards": num_shards,
        "package_versions": _package_versions(),
        "created_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def classes_record(options: GenerationOptions, inputs: InputSet) -> dict[str, Any] | None:
    """The class list the labels index into (the card makes ``labels`` a ``Sequence(ClassLabel)`` of it), named
    by file name only: the manifest is published with the data."""
    if inputs.classes is None:
        return None
    if options.label_csv:
        return inputs.classes.record(f"{Path(options.label_csv).name} (--label-csv)")
    return inputs.classes.record(inputs.classes.source)


def captioner_record(captioner: Captioner) -> dict[str, Any]:
    """What identifies a loaded captioner: its :class:`~avt_triplets.captioner_contract.CaptionerIdentity`, every
    field of it."""
    record = captioner.identity().record()
    CaptionerIdentity.require_fields(record)
    return record


def audio_captioner_record(captioner: Any) -> dict[str, Any]:
    """What identifies a loaded audio captioner: its
    :class:`~avt_triplets.audio_caption_contract.AudioCaptionerIdentity`, every field of it."""
    record = captioner.identity().record()
    AudioCaptionerIdentity.require_fields(record)
    return record


def scorer_record(scorer: Any) -> dict[str, Any]:
    """What identifies a loaded scorer; attributes it does not have are recorded as None."""
    return {
        "name": getattr(scorer, "name", type(scorer).__name__),
        "revision": getattr(scorer, "revision", None),
        "weights_digest": getattr(scorer, "weights_digest", None),
        "dtype": getattr(scorer, "dtype", None),
        "text_model": getattr(scorer, "text_model", None),
        "text_model_revision": getattr(scorer, "text_model_revision", None),
        "text_model_digest": getattr(scorer, "text_model_digest", None),
        "sampling_rate": int(scorer.sampling_rate),
        "embed_dim": int(getattr(scorer, "embed_dim", 0) or 0),
    }


def planned_models(models: ModelOptions | None, remember: bool = True) -> dict[str, Any]:
    """What :func:`models_manifest` will record that the options already say, before any model loads: the names,
    a digest of local transformers weights (the same one loading records, cached by file stamp; ``remember`` False:
    the cache is not updated, for a dry run), the prompt when given and the caption length. msclap's weights and
    anything decided by loading (dtype, Hub commits, a chat model's default prompt) are compared once the models are
    loaded."""
    if models is None or models.labels_only:
        return {}
    captioner: dict[str, Any] = {
        "name": str(models.captioner),
        "weights_digest": local_digest(models.captioner, remember),
        "max_new_tokens": models.max_new_tokens,
        "caption_unit": models.caption_unit,
        "clip_prompts": list(models.clip_prompts),
    }
    if models.caption_prompt is not None:
        captioner["prompt"] = models.caption_prompt
    scorer: dict[str, Any] = {}
    if not models.scorer.startswith("msclap"):  # msclap's name and digest come from its weights file
        scorer = {"name": str(models.scorer), "weights_digest": local_digest(models.scorer, remember)}
    planned = {"captioner": captioner, "scorer": scorer}
    if models.audio_captioner is not None:
        planned["audio_captioner"] = {
            "name": str(models.audio_captioner),
            "weights_digest": local_digest(models.audio_captioner, remember),
            "max_new_tokens": models.max_new_tokens,
            "windows": models.audio_caption_windows,
            **({"prompt": models.audio_caption_prompt} if models.audio_caption_prompt is not None else {}),
        }
    for record, name in _caption_kind_models(models).items():
        planned[record] = {"name": name, "weights_digest": local_digest(name, remember)}
    return planned


def _caption_kind_models(models: ModelOptions) -> dict[str, str]:
    """The model names of the caption-kind options given (record -> name; the merger's without ``llm:``)."""
    named = {"visual_scorer": models.visual_scorer, "av_captioner": models.av_captioner}
    if models.av_caption_from is not None:
        named["caption_merger"] = merger_model(models.av_caption_from)
    return {record: str(name) for record, name in named.items() if name is not None}


def models_manifest(captioner: Any, scorer: Any) -> dict[str, Any]:
    """What identifies the loaded models (the manifest's ``captioner`` and ``scorer`` records); a run without
    models (``--captioner none``) records both as None."""
    if captioner is None and scorer is None:
        return {"captioner": None, "scorer": None}
    return {"captioner": captioner_record(captioner), "scorer": scorer_record(scorer)}


def with_models(run: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
    """A run's manifest (:func:`run_manifest`) with its models' records (:func:`models_manifest`), wherever
    those were loaded (in this process, or in the actors of the ``ray`` distributor)."""
    return {**{k: run[k] for k in ("format", "avt_version")}, **models, **run}
