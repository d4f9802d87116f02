"""One evaluation of one model on one dataset, as a report entry (see ``eval/reports.py``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avt_core.errors import UsageError
from avt_data.rows import frame_counts, has_text_embeddings
from avt_triplets.labels import ClassTable
from eval.classify import encode_targets, evaluate_predictions, predict_frames, problem_type_of
from eval.distributed import eval_processes
from eval.features import extract_retrieval_features, supports_text_retrieval
from eval.protocol import per_class_subset
from eval.retrieval import DEFAULT_KS, paired_ranks, ranking_metrics, recall_curve, retrieval_ranks

logger = logging.getLogger(__name__)
MAX_SKIPPED_LISTED = 50


@dataclass
class RetrievalOptions:
    protocol: str = "cavmae"  # "cavmae": per-class subset + middle frame; "full": every clip
    per_class: int = 5
    seed: int = 0
    frame_index: int | None = None  # None = middle frame
    max_clips: int | None = None
    text: bool = True
    batch_size: int = 32
    device: str = "cpu"
    precision: str = "fp32"
    num_workers: int = 0
    chunk_size: int = 4096
    max_k: int = 50
    ks: tuple[int, ...] = DEFAULT_KS
    progress: bool = True


def select_clips(dataset, options: RetrievalOptions) -> tuple[Any, dict[str, Any]]:
    """Apply the protocol's clip selection; returns the subset and a description for the report."""
    info: dict[str, Any] = {"protocol": options.protocol, "dataset_size": len(dataset)}
    if options.protocol == "cavmae":
        labels = list(dataset["labels"]) if "labels" in dataset.column_names else None
        if labels is not None and any(labels):
            indices = per_class_subset(labels, options.per_class, options.seed)
            dataset = dataset.select(indices)
            info.update(per_class=options.per_class, seed=options.seed, subset="per_class")
        else:
            logger.warning("no labels: the cavmae protocol evaluates every clip (no per-class subset)")
            info["subset"] = "all (no labels)"
    elif options.protocol == "full":
        info["subset"] = "all"
    else:
        raise ValueError(f"unknown protocol {options.protocol!r}")
    if options.max_clips is not None and len(dataset) > options.max_clips:
        dataset = dataset.select(range(options.max_clips))
        info["max_clips"] = options.max_clips
    info["frame"] = "middle" if options.frame_index is None else options.frame_index
    return dataset, info


def meaningful_ks(ks: tuple[int, ...], num_clips: int) -> tuple[int, ...]:
    """The K of recall@K that say something about N clips: K < N (recall@K is 100 % for every K >= N)."""
    if num_clips < 2:
        raise UsageError(
            f"retrieval over {num_clips} clip(s) is meaningless (every recall@K is 100 %): evaluate at least 2 clips"
        )
    kept = tuple(k for k in ks if k < num_clips)
    if len(kept) < len(ks):
        logger.warning(
            "only %d clips: recall@K is reported for K < %d only (omitted: %s)",
            num_clips,
            num_clips,
            ", ".join(f"R@{k}" for k in ks if k >= num_clips),
        )
    return kept


def _direction_result(
    ranks: np.ndarray, ks: tuple[int, ...], max_k: int
) -> tuple[dict[str, float], list[float]]:
    curve = recall_curve(ranks, min(max_k, len(ranks) - 1))
    return ranking_metrics(ranks, ks), [float(v) for v in curve]


def text_retrieval_note(model, subset) -> str | None:
    """Why text->audio / text->visual retrieval cannot run on ``subset`` (None: it can)."""
    if not has_text_embeddings(subset.column_names):
        return (
            "no text retrieval: the dataset has no text_embedding column (a labelled-only output of "
            "`avt generate --captioner none`, or not made by avt generate); audio<->visual retrieval only"
        )
    if not supports_text_retrieval(model):
        return "no text retrieval: the model has no text projection heads"
    dims = {len(v) for v in subset.select(range(min(len(subset), 8)))["text_embedding"]}
    if dims != {model.config.text_embed_dim}:
        return (
            f"no text retrieval: the dataset's text embeddings have {sorted(dims)} values, the model's "
            f"text_embed_dim is {model.config.text_embed_dim} (a different CLAP text tower)"
        )
    return None


# A caption kind's stored CLAP embedding column -> its retrieval directions (text->audio, text->visual), in the
# names of SLAVA's Table II (`--report avcaps`); `text_embedding` (the chosen caption) gives text_to_audio/visual.
CAPTION_TEXT_DIRECTIONS = {
    "audio_text_embedding": ("audio_caption_to_audio", "audio_caption_to_visual"),
    "visual_text_embedding": ("visual_caption_to_audio", "visual_caption_to_visual"),
}


def caption_text_columns(model, subset) -> tuple[str, ...]:
    """The audio / visual caption embedding columns of ``subset`` the model can query with (its text size)."""
    present = [c for c in CAPTION_TEXT_DIRECTIONS if c in subset.column_names]
    head = subset.select(range(min(len(subset), 8)))
    return tuple(c for c in present if {len(v) for v in head[c]} == {model.config.text_embed_dim})


def evaluate_retrieval(model, processor, dataset, options: RetrievalOptions) -> dict[str, Any] | None:
    """Audio<->visual (and text->audio / text->visual) retrieval entry for one model on one dataset; a dataset with
    audio / visual caption embeddings also gives each caption kind's directions (SLAVA's Table II rows). Under
    ``accelerate launch`` every process extracts its share and only the main process returns the entry (None
    elsewhere)."""
    subset, info = select_clips(dataset, options)
    text_note = text_retrieval_note(model, subset) if options.text else None
    with_text = options.text and text_note is None
    if text_note is not None:
        logger.warning("%s", text_note)
    kinds = caption_text_columns(model, subset) if with_text else ()
    features = extract_retrieval_features(
        model,
        processor,
        subset,
        batch_size=options.batch_size,
        device=options.device,
        frame_index=options.frame_index,
        with_text=with_text,
        precision=options.precision,
        num_workers=options.num_workers,
        progress=options.progress,
        caption_text_columns=kinds,
    )
    if not eval_processes().is_main:  # every process holds the gathered features; the main one reports
        return None
    ranks = dict(
        zip(
            ("audio_to_visual", "visual_to_audio"),
            paired_ranks(
                features.audio, features.visual, chunk_size=options.chunk_size, device=options.device
            ),
        )
    )
    queries = {("text_to_audio", "text_to_visual"): features.text} if with_text else {}
    queries.update({CAPTION_TEXT_DIRECTIONS[c]: features.caption_texts[c] for c in kinds})
    for directions, texts in queries.items():
        for direction, items in zip(
            directions, (features.audio_in_text_space, features.visual_in_text_space)
        ):
            ranks[direction] = retrieval_ranks(
                texts, items, chunk_size=options.chunk_size, device=options.device
            )
    ks = meaningful_ks(options.ks, len(features.clip_ids))
    metrics, curves = {}, {}
    for direction, direction_ranks in ranks.items():
        metrics[direction], curves[direction] = _direction_result(direction_ranks, ks, options.max_k)
    return {
        "num_clips": len(features.clip_ids),
        "omitted_ks": [k for k in options.ks if k not in ks],
        "num_skipped": len(features.skipped),
        "skipped": features.skipped[:MAX_SKIPPED_LISTED],
        "selection": info,
        "notes": [text_note] if text_note else [],
        "metrics": metrics,
        "recall_curves": curves,
        "chance_R@1": 1.0 / len(features.clip_ids),
    }


@dataclass
class ClassificationOptions:
    num_frames: int | None = None  # None = the most frames any clip has
    max_clips: int | None = None
    batch_size: int = 16
    device: str = "cpu"
    precision: str = "fp32"
    num_workers: int = 0
    progress: bool = True


def max_frames_per_clip(dataset) -> int:
    """The most frames any clip has (list lengths read from Arrow, no image decoded)."""
    return max(max(frame_counts(dataset), default=1), 1)


def evaluate_classification(
    model, processor, dataset, options: ClassificationOptions, bridges: Sequence[ClassTable | None] = ()
) -> dict[str, Any] | None:
    """Accuracy (single-label) or mAP (multi-label), middle frame and multi-frame, for one dataset. Labels map
    onto the model's classes by id, display name or index; ``bridges`` (class lists with ids and names: the one
    the dataset records, ``--label-csv``) also take a display name to a model that knows the class by its id, or
    the reverse. Under ``accelerate launch`` only the main process returns the entry (None elsewhere)."""
    config = model.config
    problem_type = problem_type_of(config)
    multi_label = problem_type == "multi_label_classification"
    classes = ClassTable.from_model_config(config)
    if classes is None:
        raise UsageError("the model config has no id2label for its classes: cannot map dataset labels")
    for bridge in bridges:
        classes = classes.bridged(bridge)
    targets, kept, unknown = encode_targets(dataset["labels"], classes, multi_label)
    if unknown:
        logger.warning("%d label(s) unknown to the model, e.g. %s", len(unknown), unknown[:5])
    if not kept:
        raise UsageError(
            f"no clip has a label the model knows ({len(classes)} classes from {classes.source}; the data's "
            f"labels are e.g. {unknown[:3]}): is it this dataset's model? A model fine-tuned before avt recorded "
            "class ids (config class_mids) knows display names only: fine-tune it again with --label-csv"
        )
    subset = dataset.select(kept)
    if options.max_clips is not None and len(subset) > options.max_clips:
        subset, targets = subset.select(range(options.max_clips)), targets[: options.max_clips]
    num_frames = options.num_frames or max_frames_per_clip(subset)
    predictions = predict_frames(
        model,
        processor,
        subset,
        num_frames=num_frames,
        batch_size=options.batch_size,
        device=options.device,
        precision=options.precision,
        num_workers=options.num_workers,
        progress=options.progress,
    )
    if not eval_processes().is_main:  # every process holds the gathered logits; the main one reports
        return None
    result = evaluate_predictions(predictions, targets[predictions.rows], problem_type)
    return {
        "problem_type": problem_type,
        "metric": "mAP" if multi_label else "accuracy",
        "num_clips": len(predictions.clip_ids),
        "num_skipped": len(predictions.skipped),
        "num_without_known_label": len(dataset) - len(kept),
        "skipped": predictions.skipped[:MAX_SKIPPED_LISTED],
        "num_frames": int(predictions.logits.shape[0]),
        "classifier_mode": getattr(config, "classifier_mode", None),
        **result,
    }
