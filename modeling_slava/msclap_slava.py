"""Microsoft CLAP 2023 loaded through the ``msclap`` package with what transformers 5 and tiny test models need.

The one msclap loader of the project: SLAVA's msclap audio tower (:mod:`.towers_slava`) and avt's generation
scorer (``avt_triplets.msclap_scorer``) both load through :func:`load_msclap_wrapper`, so a checkpoint loads the
same weights whether or not avt is installed (this file travels with a SLAVA checkpoint as Hub remote code:
relative imports only, msclap imported inside ``try`` so that transformers' import check does not ask CLAP-backed
users for msclap). Loading goes through msclap's own ``CLAPWrapper(model_fp=...)``: its packaged
``config_2023.yml``, its ``CLAP`` module, ``torch.load`` + ``load_state_dict`` and its GPT-2 tokenizer set-up.
What we add, and why:

* **Key check.** msclap loads with ``strict=False``, so a wrong or corrupt file silently leaves random weights.
  After loading we compare the checkpoint's keys with the model's and raise :class:`MsclapWeightsError` on any
  missing or unexpected key. Only GPT-2's causal-mask buffers (``attn.bias``, ``attn.masked_bias``), which older
  transformers saved and transformers 5 no longer has, are allowed as unexpected.
* **Text model.** msclap branches on the substring "gpt" in the text-model path and pads with ``!``, which must be
  id 0 (the text embedding is read at the last non-zero token). A local text model is passed as a config override
  of ``text_model``; we check both conditions instead of failing later.
* **Import side effects.** Importing msclap switches off all Python warnings and transformers logging for the
  whole process; we import it inside ``warnings.catch_warnings()`` and restore transformers' verbosity.
* **Tiny/variant configs.** A ``msclap_config.yml`` next to the weights file overrides keys of the packaged
  ``config_2023.yml`` (e.g. ``d_proj``, ``transformer_embed_dim``) and may hold an ``htsat`` mapping of
  ``HTSAT_Swin_Transformer`` arguments (``embed_dim``, ``depths``, ``num_heads``, ``window_size``). msclap builds
  HTSAT with hard-coded defaults, so while msclap builds the model (only then) the ``HTSATWrapper`` name its
  audio module instantiates is rebound to a subclass that passes them. The real 2023 weights need no such file;
  the file is read next to the weights msclap actually loads, downloaded ones included.

Weights folder layout accepted (what ``avt_triplets.tiny.make_tiny_msclap`` writes)::

    DIR/CLAP_weights_2023.pth   # {"model": state_dict}, msclap's format
    DIR/gpt2/                   # optional: text model (config + tokenizer), used when text_model is not given
    DIR/msclap_config.yml       # optional: overrides of config_2023.yml (+ htsat architecture)
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "CONFIG_FILENAME",
    "HTSAT_ARCHITECTURE_KEYS",
    "TEXT_MODEL_DIRNAME",
    "WEIGHTS_FILENAME",
    "MsclapWeightsError",
    "htsat_architecture",
    "import_clap_wrapper",
    "load_msclap_wrapper",
    "msclap_config_overrides",
    "resolve_weights",
    "verify_loaded_keys",
]

WEIGHTS_FILENAME = "CLAP_weights_2023.pth"
CONFIG_FILENAME = "msclap_config.yml"
TEXT_MODEL_DIRNAME = "gpt2"
HTSAT_ARCHITECTURE_KEYS = frozenset({"embed_dim", "depths", "num_heads", "window_size", "num_classes"})

# Buffers older transformers saved in GPT-2 checkpoints (causal mask, masked bias); not weights, absent in v5.
_BENIGN_UNEXPECTED = re.compile(r"(^|\.)attn\.(bias|masked_bias)$")


class MsclapWeightsError(ValueError):
    """The weights file does not match the msclap model (msclap itself would silently load it partially)."""


def import_clap_wrapper() -> type:
    """msclap's ``CLAPWrapper`` class, imported without its process-wide warning/logging side effects."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    try:  # inside ``try``: transformers' remote-code import check skips it (CLAP-backed models need no msclap)
        with warnings.catch_warnings():
            from msclap.CLAPWrapper import CLAPWrapper
    except ImportError as error:
        raise ImportError(
            f"the msclap audio backend needs the msclap package (pip install msclap): {error}"
        ) from error
    finally:
        hf_logging.set_verbosity(verbosity)
    return CLAPWrapper


@contextlib.contextmanager
def htsat_architecture(arguments: dict[str, Any] | None) -> Iterator[None]:
    """While msclap builds its model, build HTSAT with ``arguments`` instead of its hard-coded defaults.

    msclap's ``HTSATWrapper`` ignores its arguments and calls ``HTSAT_Swin_Transformer(config=config)``; its audio
    module looks the wrapper class up by name, so we bind that name to a subclass for the duration.
    """
    if not arguments:
        yield
        return
    unknown = set(arguments) - HTSAT_ARCHITECTURE_KEYS
    if unknown:
        raise ValueError(f"unknown htsat keys in {CONFIG_FILENAME}: {sorted(unknown)}")
    from torch import nn

    try:  # see import_clap_wrapper
        from msclap.models import audio, htsat
    except ImportError as error:
        raise ImportError(f"the msclap audio backend needs the msclap package: {error}") from error

    original = audio.HTSATWrapper

    class ConfiguredHTSATWrapper(original):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            nn.Module.__init__(self)
            self.htsat = htsat.HTSAT_Swin_Transformer(config=htsat.config, **arguments)

    audio.HTSATWrapper = ConfiguredHTSATWrapper
    try:
        yield
    finally:
        audio.HTSATWrapper = original


def msclap_config_overrides(weights_file: Path) -> dict[str, Any]:
    """The overrides in ``msclap_config.yml`` next to ``weights_file`` (empty when there is none)."""
    config_file = weights_file.parent / CONFIG_FILENAME
    if not config_file.is_file():
        return {}
    import yaml

    overrides = yaml.safe_load(config_file.read_text()) or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"{config_file} must be a mapping of config_2023.yml keys")
    return overrides


def _build_wrapper(model_fp: str | None, text_model: str | None) -> Any:
    """Run msclap's own loading path (``CLAPWrapper(model_fp)``, which downloads when ``model_fp`` is None).

    Overrides are applied once msclap knows its weights file (after a download too): the ``msclap_config.yml``
    next to it, then ``text_model``.
    """
    clap_wrapper = import_clap_wrapper()

    class _ConfiguredCLAPWrapper(clap_wrapper):
        def load_clap(self):
            self.overrides = msclap_config_overrides(Path(self.model_fp))
            if text_model is not None:
                self.overrides["text_model"] = text_model
            with htsat_architecture(self.overrides.get("htsat")):
                return super().load_clap()

        def read_config_as_args(self, config_path, args=None, is_config_str=False):
            namespace = super().read_config_as_args(config_path, args, is_config_str)
            for key, value in self.overrides.items():
                if key != "htsat":
                    setattr(namespace, key, value)
            return namespace

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)  # in msclap's HTSAT
        return _ConfiguredCLAPWrapper(model_fp=model_fp, version="2023", use_cuda=False)


def _checkpoint_keys(weights_file: Path) -> set[str]:
    import torch

    try:
        checkpoint = torch.load(weights_file, map_location="cpu", mmap=True, weights_only=True)
    except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
        checkpoint = torch.load(weights_file, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise MsclapWeightsError(
            f"{weights_file} is not an msclap checkpoint (expected a dict with a 'model' key)"
        )
    return set(checkpoint["model"])


def verify_loaded_keys(model: torch.nn.Module, weights_file: Path) -> None:
    """Raise :class:`MsclapWeightsError` unless every model key came from ``weights_file`` and vice versa."""
    file_keys = _checkpoint_keys(weights_file)
    model_keys = set(model.state_dict())
    missing = sorted(model_keys - file_keys)
    unexpected = sorted(k for k in file_keys - model_keys if not _BENIGN_UNEXPECTED.search(k))
    if missing or unexpected:
        lines = [f"msclap weights {weights_file} do not match the model (msclap loads with strict=False):"]
        if missing:
            lines.append(f"  {len(missing)} missing key(s), e.g. {missing[:8]}")
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected key(s), e.g. {unexpected[:8]}")
        lines.append(
            "Check that the file is CLAP_weights_2023.pth (msclap:2023) and not truncated or edited."
        )
        raise MsclapWeightsError("\n".join(lines))


def resolve_weights(weights: str | os.PathLike | None) -> tuple[Path | None, Path | None]:
    """(weights file, default text-model folder) from a file, a folder, or None (download)."""
    if weights is None:
        return None, None
    path = Path(weights)
    if path.is_dir():
        weights_file = path / WEIGHTS_FILENAME
        if not weights_file.is_file():
            raise FileNotFoundError(f"{path} has no {WEIGHTS_FILENAME}")
    elif path.is_file():
        weights_file = path
    else:
        raise FileNotFoundError(f"msclap weights not found: {path}")
    text_dir = weights_file.parent / TEXT_MODEL_DIRNAME
    return weights_file, (text_dir if text_dir.is_dir() else None)


def load_msclap_wrapper(
    weights: str | os.PathLike | None = None, text_model: str | os.PathLike | None = None
) -> Any:
    """msclap's ``CLAPWrapper`` with every weight checked loaded (the CPU, fp32).

    ``weights``: ``CLAP_weights_2023.pth`` or a folder holding it (see the module docstring); ``None`` lets msclap
    download ``microsoft/msclap``. ``text_model``: a GPT-2 folder or Hub id whose name contains "gpt"; ``None``
    means the folder's ``gpt2/`` if present, else msclap's default ``gpt2`` from the Hub.
    """
    weights_file, bundled_text_model = resolve_weights(weights)
    text_model = text_model if text_model is not None else bundled_text_model
    if text_model is not None and "gpt" not in str(text_model):
        raise ValueError(
            f"msclap:2023 needs a GPT-2 text model whose path contains 'gpt' (msclap branches on it): "
            f"{text_model!s}; rename the folder, e.g. to .../gpt2"
        )
    wrapper = _build_wrapper(
        str(weights_file) if weights_file else None, str(text_model) if text_model is not None else None
    )
    verify_loaded_keys(wrapper.clap, Path(wrapper.model_fp))
    if wrapper.tokenizer.pad_token_id != 0:
        raise ValueError(
            f"msclap pads GPT-2 text with '!' and reads the embedding at the last non-zero id, so '!' must be "
            f"token 0; the tokenizer of {wrapper.args.text_model} maps it to {wrapper.tokenizer.pad_token_id}"
        )
    return wrapper
