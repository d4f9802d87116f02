"""Loading what an evaluation needs: named model / dataset arguments, the model, its processor, the data.

``--model`` and ``--dataset`` accept an optional display name, ``NAME=PATH_OR_ID`` (``vggsound=out/vgg:top30``),
used in the report tables; without one the name is the path's last component (plus the config).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avt_core.errors import UsageError
from avt_data.rows import DatasetSpec, missing_columns_hint
from avt_triplets.model_sources import check_model_source, loading_errors, require_model_type

logger = logging.getLogger(__name__)
CLASSIFIER = "LGCavMaeForAudioVisualClassification"
MODEL_TYPES = ("lg_cav_mae", "slava")  # what `avt evaluate` can load


@dataclass(frozen=True)
class Named:
    """A ``[NAME=]VALUE`` command-line argument."""

    name: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Named:
        head, sep, tail = text.partition("=")
        if sep and head and tail and "/" not in head and "\\" not in head:
            return cls(name=head, value=tail)
        spec = DatasetSpec.parse(text)
        default = Path(spec.path.rstrip("/\\")).name or spec.path
        return cls(name=f"{default}:{spec.config}" if spec.config else default, value=text)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; a device this machine lacks is a :class:`UsageError`."""
    import torch

    from avt_triplets.devices import check_device

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_device(device)
    return device


def load_eval_dataset(spec_text: str, split: str):
    """A triplet dataset: a generation output, a ``save_to_disk`` folder, a Hub repo id or an fsspec URL, with an
    optional config. Parquet is read in place (``avt_data.parquet_rows``), never copied into the datasets cache."""
    import datasets

    from avt_data.parquet_rows import load_triplets

    spec = DatasetSpec.parse(spec_text)
    path = Path(spec.path)
    if path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise UsageError(f"{spec}: no split {split!r} (has {sorted(loaded)})")
            loaded = loaded[split]
        return loaded
    return load_triplets([spec_text], columns=None, split=split)


def require_columns(dataset, columns: list[str], what: str, spec: str) -> None:
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        hint = missing_columns_hint(missing, dataset.column_names)
        raise UsageError(f"{what} needs column(s) {missing} that dataset {spec} lacks{hint}")


def load_model(path: str, task: str, device: str, revision: str | None = None) -> Any:
    """The checkpoint's own class for retrieval (so a pretraining checkpoint keeps its text projections),
    the classification class for classification; in eval mode on ``device``."""
    from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForPreTraining

    import modeling_lgcavmae  # noqa: F401 - registers the Auto classes
    import modeling_slava  # noqa: F401

    check_model_source(path, "--model")
    with loading_errors("--model", path):
        config = AutoConfig.from_pretrained(path, revision=revision)
    require_model_type(
        "--model", path, config, MODEL_TYPES, "an LG-CAV-MAE ('lg_cav_mae') or SLAVA ('slava') checkpoint"
    )
    architectures = list(getattr(config, "architectures", None) or [])
    if config.model_type == "slava" and task != "retrieval":
        raise UsageError(f"{path} is a SLAVA checkpoint: it supports `avt evaluate retrieval` only")
    if task == "classification":
        if architectures and CLASSIFIER not in architectures:
            raise UsageError(
                f"--model {path} is a {', '.join(architectures)} checkpoint: it has no classifier head to evaluate; "
                "fine-tune it first (avt finetune) or evaluate it with `avt evaluate retrieval`"
            )
        auto_class = AutoModelForAudioClassification
    elif "LGCavMaeForPreTraining" in architectures:
        auto_class = AutoModelForPreTraining
    elif CLASSIFIER in architectures:
        auto_class = AutoModelForAudioClassification
    else:
        auto_class = AutoModel
    with loading_errors("--model", path):
        model = auto_class.from_pretrained(path, revision=revision)
    logger.info("loaded %s from %s", type(model).__name__, path)
    return model.to(device).eval()


def load_processor(path: str, config: Any, revision: str | None = None):
    """The processor saved with the model, or one built from its config (same audio length / image size)."""
    from modeling_lgcavmae import LGCavMaeProcessor

    if config.model_type == "slava":  # the towers' own processors, named by the checkpoint
        from modeling_slava import SlavaProcessor

        return SlavaProcessor.from_config(config)
    try:
        processor = LGCavMaeProcessor.from_pretrained(path, revision=revision)
    except OSError:  # no processor saved with the checkpoint
        return LGCavMaeProcessor.from_config(config)
    if processor.audio_length != config.audio_length:
        raise UsageError(
            f"processor at {path} makes {processor.audio_length} fbank frames but the model expects {config.audio_length}"
        )
    return processor
