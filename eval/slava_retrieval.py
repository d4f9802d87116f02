"""Retrieval with a SLAVA checkpoint: the same clip selection, metrics and report entry as LG-CAV-MAE's.

SLAVA's visual embedding averages every frame of a clip (`--frame N` keeps one), its audio embedding every window of
the whole clip, and its text side embeds caption strings with its own CLIP text tower. Text queries: every caption of
the audio-visual kind (`av_caption`, else our triplets' `caption`) gives the standard text->audio / text->visual
directions; datasets with `audio_caption` / `visual_caption` columns add `audio_caption_to_{audio,visual}` and
`visual_caption_to_{audio,visual}` (SLAVA's Table II). A clip with several captions is the target of each; a clip
without captions is a target only. A dataset without caption columns (a labelled-only output of `avt generate
--captioner none`) gives audio<->visual retrieval and a note saying why there is no text retrieval.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from avt_core.errors import UsageError
from avt_data.captions import CAPTION_COLUMNS, caption_sources, present_caption_columns
from avt_data.slava_clips import iterate_tower_features
from eval.retrieval import paired_ranks, retrieval_ranks
from eval.runs import MAX_SKIPPED_LISTED, RetrievalOptions, _direction_result, meaningful_ks, select_clips

logger = logging.getLogger(__name__)

# caption kind -> the column that must exist for its own directions (the audio-visual kind always exists)
CAPTION_DIRECTIONS = {"av": ("text_to_audio", "text_to_visual")}
COLUMN_DIRECTIONS = {
    "audio": ("audio_caption", ("audio_caption_to_audio", "audio_caption_to_visual")),
    "visual": ("visual_caption", ("visual_caption_to_audio", "visual_caption_to_visual")),
}


def is_slava(model: Any) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == "slava"


def _caption_sources(subset, options: RetrievalOptions) -> tuple[dict[str, tuple[str, ...]], str | None]:
    """The caption columns read per kind (none without text retrieval) and the note when there is no text."""
    sources = caption_sources(subset.column_names)
    if not options.text:
        return {kind: () for kind in sources}, None
    if not present_caption_columns(subset.column_names):
        return sources, (
            f"no text retrieval: the dataset has none of the caption columns {list(CAPTION_COLUMNS)} (a "
            "labelled-only output of `avt generate --captioner none`); audio<->visual retrieval only"
        )
    return sources, None


def _collect(model, processor, subset, sources, options: RetrievalOptions):
    """Tower features of every clip that decodes, projected; captions per kind with their clip index."""
    audio, visual, clip_ids, skipped = [], [], [], []
    texts: dict[str, list[np.ndarray]] = {"av": [], "audio": [], "visual": []}
    owners: dict[str, list[int]] = {"av": [], "audio": [], "visual": []}
    for record in iterate_tower_features(
        model,
        processor,
        subset,
        range(len(subset)),
        sources,
        batch_size=options.batch_size,
        num_workers=options.num_workers,
        device=options.device,
        frame_index=options.frame_index,
        progress=options.progress,
        desc="SLAVA features",
    ):
        if record["error"] is not None:
            skipped.append({"clip_id": record["clip_id"], "reason": record["error"]})
            continue
        clip = len(clip_ids)
        clip_ids.append(record["clip_id"])
        audio.append(record["audio"])
        visual.append(record["visual"])
        for kind, features in record["texts"].items():
            texts[kind].append(features)
            owners[kind] += [clip] * len(features)
    if not clip_ids:
        raise UsageError(f"no clip could be decoded ({len(skipped)} skipped; first: {skipped[:1]})")

    def project(method: str, rows: list[np.ndarray]) -> torch.Tensor:
        stacked = torch.from_numpy(np.concatenate(rows) if rows[0].ndim == 2 else np.stack(rows))
        with torch.no_grad():
            return getattr(model, method)(stacked.to(options.device)).float()

    embeds = {"audio": project("project_audio", audio), "visual": project("project_visual", visual)}
    captions = {
        kind: (project("project_text", rows), np.asarray(owners[kind]))
        for kind, rows in texts.items()
        if owners[kind]
    }
    return clip_ids, skipped, embeds, captions


def evaluate_slava_retrieval(model, processor, dataset, options: RetrievalOptions) -> dict[str, Any]:
    """Audio<->visual and caption->audio / caption->visual retrieval entry for one SLAVA model on one dataset."""
    subset, info = select_clips(dataset, options)
    info["frame"] = "all frames averaged" if options.frame_index is None else options.frame_index
    sources, text_note = _caption_sources(subset, options)
    clip_ids, skipped, embeds, captions = _collect(model, processor, subset, sources, options)
    if options.text and text_note is None and not captions:
        text_note = "no text retrieval: none of the evaluated clips has a caption"
    if text_note is not None:
        logger.warning("%s", text_note)
    ranks = dict(
        zip(
            ("audio_to_visual", "visual_to_audio"),
            paired_ranks(
                embeds["audio"], embeds["visual"], chunk_size=options.chunk_size, device=options.device
            ),
        )
    )
    if options.text:
        directions = dict(CAPTION_DIRECTIONS)
        directions.update({k: v[1] for k, v in COLUMN_DIRECTIONS.items() if v[0] in subset.column_names})
        for kind, names in directions.items():
            if kind not in captions:
                continue
            queries, targets = captions[kind]
            for name, items in zip(names, (embeds["audio"], embeds["visual"])):
                ranks[name] = retrieval_ranks(
                    queries, items, targets, chunk_size=options.chunk_size, device=options.device
                )
    ks = meaningful_ks(options.ks, len(clip_ids))
    max_k = min(
        options.max_k, len(clip_ids) - 1
    )  # curves up to K = clips - 1, whatever the number of queries
    metrics, curves = {}, {}
    for direction, direction_ranks in ranks.items():
        metrics[direction], curves[direction] = _direction_result(direction_ranks, ks, max_k)
    return {
        "model_kind": "slava",
        "num_clips": len(clip_ids),
        "omitted_ks": [k for k in options.ks if k not in ks],
        "num_skipped": len(skipped),
        "skipped": skipped[:MAX_SKIPPED_LISTED],
        "selection": info,
        "notes": [text_note] if text_note else [],
        "metrics": metrics,
        "recall_curves": curves,
        "chance_R@1": 1.0 / len(clip_ids),
    }


__all__ = ["evaluate_slava_retrieval", "is_slava"]
