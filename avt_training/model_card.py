"""The model card (``README.md``) `avt pretrain` and `avt finetune` write beside the model and push with it.

The body starts from ``modeling_lgcavmae``'s generated card (architecture, how to load and use, papers to cite) and
adds what only the run knows: the training data and options, the final metrics and, for fine-tuning, the class list.
The YAML says library, licence, datasets (Hub ids), base model (when initialised from a Hub model), tags, pipeline
tag and a ``model-index`` of the run's results, which ``huggingface_hub.ModelCard`` validates. The card is written
through :func:`avt_triplets.cards.carry_over`: one already in the folder (or, on push, in the repo) is updated in
place. Nothing in it names a local path: local datasets and models by folder name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avt_data.rows import DatasetSpec, recorded_caption_units
from avt_training.tracking import SECRET_OPTIONS
from avt_triplets.cards import AVT_TAG, EMPTY_CARD, carry_over, read_card_text
from avt_triplets.model_sources import looks_like_local_path
from avt_triplets.public import public_reference

CARD_FILE = "README.md"
TAGS = ["audio-visual", "cav-mae", "lg-cav-mae", "contrastive-learning", "masked-autoencoder", AVT_TAG]
PIPELINE_TAGS = {"pretrain": "feature-extraction", "finetune": "audio-classification"}
# metric keys of a run's results that go into the model-index (the others are counts and timings)
RESULT_METRICS = ("accuracy", "mAP", "mAUC", "eval_loss", "loss")


@dataclass
class Result:
    """One number of the model-index: a metric on a dataset split."""

    metric: str
    value: float
    dataset: str  # a --dataset / --eval-dataset argument
    split: str
    name: str | None = None  # e.g. "multi-frame accuracy"


@dataclass
class TrainingRun:
    """What a training run tells its card."""

    kind: str  # "pretrain" or "finetune"
    options: dict[str, Any]  # dataclasses.asdict of the command's config
    datasets: list[str]
    base_model: str | None = None  # --model-name-or-path / --model / --init-from-vitmae
    results: list[Result] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # steps, clips, ... (shown as given)
    classes: list[str] | None = None
    # dataset argument -> what one of its captions describes (its manifest's --caption-unit), where recorded
    caption_units: dict[str, str] = field(default_factory=dict)


def hub_id(name: str | None) -> str | None:
    """``name`` when it is a Hub id (not a local path or URL), else None."""
    if not name or "://" in name or looks_like_local_path(name) or os.path.exists(name):
        return None
    return name


def _dataset_name(argument: str) -> str:
    spec = DatasetSpec.parse(argument)
    return public_reference(spec.path) + (f" ({spec.config})" if spec.config else "")


def card_metadata(run: TrainingRun, model_name: str) -> dict[str, Any]:
    """The YAML keys of the card (``eval_results`` becomes the ``model-index``)."""
    from huggingface_hub import EvalResult

    task = PIPELINE_TAGS[run.kind]
    hub_datasets = [d for d in (hub_id(DatasetSpec.parse(a).path) for a in run.datasets) if d]
    results = [
        EvalResult(
            task_type=task,
            dataset_type=hub_id(DatasetSpec.parse(r.dataset).path)
            or public_reference(DatasetSpec.parse(r.dataset).path),
            dataset_name=_dataset_name(r.dataset),
            dataset_config=DatasetSpec.parse(r.dataset).config,
            dataset_split=r.split,
            metric_type=r.metric,
            metric_name=r.name or r.metric,
            metric_value=float(r.value),
        )
        for r in run.results
    ]
    return {
        "library_name": "transformers",
        "license": "other",
        "pipeline_tag": task,
        "tags": TAGS + [f"avt-{run.kind}"],
        "datasets": sorted(set(hub_datasets)) or None,
        "base_model": hub_id(run.base_model),
        "model_name": model_name,
        "eval_results": results or None,
    }


def _option_value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_option_value(v) for v in value) or "[]"
    text = public_reference(value) if isinstance(value, str) else str(value)
    return f"`{text}`".replace("|", "\\|")


def _captions_of(run: TrainingRun, argument: str) -> str:
    unit = run.caption_units.get(argument)
    return f": captions {unit}" if unit else ""


def training_sections(run: TrainingRun) -> str:
    """Training data, options, final metrics and classes, as Markdown."""
    lines = ["## Training data", ""]
    lines += [f"- `{_dataset_name(a)}`{_captions_of(run, a)}" for a in run.datasets]
    if run.base_model:
        lines += ["", f"Initialised from `{public_reference(run.base_model)}`."]
    if run.facts:
        lines += ["", "## Training", "", "| | |", "|---|---|"]
        lines += [f"| {k.replace('_', ' ')} | {_option_value(v)} |" for k, v in run.facts.items()]
    lines += ["", "## Results", ""]
    if run.results:
        lines += ["| metric | dataset | split | value |", "|---|---|---|---|"]
        lines += [
            f"| {r.name or r.metric} | `{_dataset_name(r.dataset)}` | {r.split} | {r.value:.4f} |"
            for r in run.results
        ]
    else:
        lines.append("The run recorded no metric.")
    if run.classes is not None:
        lines += ["", f"## Classes ({len(run.classes)})", "", ", ".join(f"`{c}`" for c in run.classes)]
    options = {k: v for k, v in sorted(run.options.items()) if k not in SECRET_OPTIONS}
    lines += ["", f"<details><summary>All options of `avt {run.kind}`</summary>", ""]
    lines += ["| option | value |", "|---|---|"]
    lines += [f"| `--{k.replace('_', '-')}` | {_option_value(v)} |" for k, v in options.items()]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def render_training_card(model, run: TrainingRun, repo_id: str = "") -> str:
    """The card's full text: ``modeling_lgcavmae``'s card with the run's metadata and sections."""
    from huggingface_hub import ModelCard

    from modeling_lgcavmae.model_card_lgcavmae import render_model_card

    source = f"Trained with `avt {run.kind}` (LG-CAV-MAE audio-visual-text toolkit)."
    base = render_model_card(model, source=source, repo_id=repo_id)
    head, marker, citation = base.text.partition("## Citation")
    card = ModelCard(f"{EMPTY_CARD}{head}{training_sections(run)}\n{marker}{citation}")
    for key, value in card_metadata(
        run, repo_id or Path(run.options.get("output_dir", "model")).name
    ).items():
        if value is not None:
            card.data[key] = value
    return str(card)


def write_training_card(output_dir: str | Path, model, run: TrainingRun, repo_id: str = "") -> Path:
    """Write (or update in place) ``output_dir/README.md``; returns its path."""
    from huggingface_hub import ModelCard

    path = Path(output_dir) / CARD_FILE
    card = carry_over(read_card_text(path), render_training_card(model, run, repo_id), ModelCard)
    card.save(path)
    return path


# `avt pretrain --text-source` as the card states it: which caption each text term was contrasted with
TEXT_SOURCE_FACTS = {
    "caption": "caption: the chosen frame caption (text_embedding) for audio-text and visual-text (the paper)",
    "modality": "modality: audio captions (audio_text_embedding) for audio-text, visual captions "
    "(visual_text_embedding) for visual-text (not in the paper)",
}


def pretrain_run(config, summary: dict[str, Any]) -> TrainingRun:
    """A pretraining run's card facts: the last logged training loss, and the last evaluation's with
    ``--eval-dataset``."""
    import dataclasses

    results = []
    last, last_eval = summary.get("last_logged") or {}, summary.get("last_eval") or {}
    if "loss" in last:
        results.append(Result("loss", last["loss"], config.datasets[0], config.train_split, "training loss"))
    if "eval_loss" in last_eval and config.eval_datasets:
        dataset, split = config.eval_datasets[0], config.eval_split
        results.append(Result("loss", last_eval["eval_loss"], dataset, split, "eval loss"))
    facts = {
        k: summary[k] for k in ("steps", "epochs_completed", "samples_seen", "global_batch_size", "clips")
    }
    facts["text_source"] = TEXT_SOURCE_FACTS.get(getattr(config, "text_source", "caption"))
    return TrainingRun(
        "pretrain",
        dataclasses.asdict(config),
        list(config.datasets),
        base_model=config.model_name_or_path or config.init_from_vitmae,
        results=results,
        facts=facts,
        caption_units=recorded_caption_units(config.datasets),
    )


def finetune_run(config, results: dict[str, Any], classes: list[str]) -> TrainingRun:
    """A fine-tuning run's card facts: the evaluation's accuracy / mAP (middle frame and multi-frame)."""
    import dataclasses

    dataset = (config.eval_datasets or config.datasets)[0]
    found = [
        Result(metric, value, dataset, config.eval_split or "", f"{frames.replace('_', '-')} {metric}")
        for frames in ("single_frame", "multi_frame")
        for metric, value in (results.get(frames) or {}).items()
        if metric in RESULT_METRICS
    ]
    train = results.get("train") or {}
    facts = {"problem_type": results.get("problem_type"), "train_clips": results.get("train_clips")}
    facts.update({k: train[k] for k in ("train_loss", "epoch") if k in train})
    return TrainingRun(
        "finetune",
        dataclasses.asdict(config),
        list(config.datasets),
        base_model=config.model_name_or_path,
        results=found,
        facts=facts,
        classes=list(classes),
        caption_units=recorded_caption_units(config.datasets),
    )


__all__ = [
    "Result",
    "TrainingRun",
    "card_metadata",
    "finetune_run",
    "pretrain_run",
    "render_training_card",
    "write_training_card",
]
