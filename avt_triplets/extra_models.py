"""Loading of the optional caption-kind models (visual scorer, omni AV captioner, caption-merging LLM), one way.

Each of them is a transformers checkpoint (Hub id or local folder) with a processor or tokenizer beside it. What
the captioner and the CLAP scorer already guarantee holds here too, so every option fails the same way:

- the source is checked before anything loads (:func:`~avt_triplets.model_sources.check_model_source`);
- the config's ``model_type`` must be one the backend drives (a model of another kind would load half-random);
- any library error (truncated weights, broken JSON) becomes one :class:`~avt_core.errors.UsageError` line;
- the manifest identity (:class:`ModelIdentity`: name, resolved Hub commit, local weights digest, dtype) is
  filled from what was actually loaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from avt_triplets.captioner_contract import ManifestIdentity
from avt_triplets.model_sources import check_model_source, loading_errors, require_model_type
from avt_triplets.revisions import local_digest, resolve_commit_hash

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelIdentity(ManifestIdentity):
    """What identifies one loaded model in the manifest (and what a resumed run must match); the backends add
    their prompt and generation settings to :meth:`record`."""

    what = "caption-kind model"

    name: str
    revision: str | None  # resolved Hub commit; None for a local folder
    weights_digest: str | None  # content of a local checkpoint; None for Hub models
    dtype: str


@dataclass(frozen=True)
class ModelSpec:
    """How one option's model is loaded: its option name (for messages), the model types it accepts (and how to
    say what those are), and the transformers loaders of the model and of its processor/tokenizer."""

    option: str
    model_types: Collection[str]
    kind: str
    load_model: Callable[..., Any]
    load_processor: Callable[..., Any]


def check_source_type(spec: ModelSpec, name_or_path: str | os.PathLike, revision: str | None = None) -> None:
    """The cheap checks, before a run starts: the source exists, and a local folder's config is of the right kind
    (:class:`UsageError` otherwise)."""
    check_model_source(name_or_path, spec.option)
    if os.path.isdir(os.path.expanduser(os.fspath(name_or_path))):
        with loading_errors(spec.option, name_or_path):
            _require_type(spec, name_or_path, revision)


def _require_type(spec: ModelSpec, name_or_path: str | os.PathLike, revision: str | None) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    require_model_type(spec.option, name_or_path, config, spec.model_types, spec.kind)


def load_checked(
    spec: ModelSpec,
    name_or_path: str | os.PathLike,
    *,
    device: torch.device,
    dtype: torch.dtype,
    revision: str | None = None,
) -> tuple[Any, Any, ModelIdentity]:
    """Load ``spec``'s model (eval mode, on ``device`` in ``dtype``) and its processor, with its identity; any
    failure the user can fix is one :class:`UsageError` line naming ``spec.option``."""
    check_model_source(name_or_path, spec.option)
    commit = resolve_commit_hash(name_or_path, revision)
    load_revision = commit or revision
    with loading_errors(spec.option, name_or_path):
        _require_type(spec, name_or_path, load_revision)
        processor = spec.load_processor(name_or_path, revision=load_revision)
        model = spec.load_model(name_or_path, revision=load_revision, dtype=dtype)
    model.to(device).eval()
    identity = ModelIdentity(
        name=str(name_or_path),
        revision=commit,
        weights_digest=local_digest(name_or_path),
        dtype=str(dtype).removeprefix("torch."),
    )
    return model, processor, identity


def clip_seed(seed: int, key: str, candidate: int) -> int:
    """A sampling seed for one candidate of one clip: the same clip gets the same candidates in every run, on every
    worker, in any order (a resumed run rewrites them bit for bit)."""
    digest = hashlib.sha256(f"{seed}\0{key}\0{candidate}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


__all__ = ["ModelIdentity", "ModelSpec", "check_source_type", "clip_seed", "load_checked"]
