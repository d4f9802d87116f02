"""Batched feature extraction from a triplet dataset: one frame per clip, audio once per clip.

Rows are decoded and turned into model inputs by ``LGCavMaeProcessor`` in DataLoader workers (only the chosen
frame's JPEG is decoded; the fbank and the image transform run there too, so ``--num-workers`` scales all the CPU
work); the main process only runs the model, under ``torch.inference_mode``. Under ``accelerate launch`` each
process runs its share of the batches and the per-clip records are gathered (``eval/distributed.py``). A clip
whose audio or frame cannot be decoded is skipped and recorded with its reason, never substituted: a constant
input would distort retrieval ranks.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avt_core.errors import UsageError
from avt_data.rows import decode_audio, decode_frame, undecoded_frames
from eval.distributed import eval_processes, in_dataset_order
from eval.protocol import middle_frame_index
from modeling_lgcavmae.processing_lgcavmae import MIN_AUDIO_SAMPLES

logger = logging.getLogger(__name__)


class ClipFrameDataset(Dataset):
    """Row ``i`` -> waveform, the frames at ``frame_indices`` (``None`` = middle frame), and extras."""

    def __init__(
        self, hf_dataset, frame_indices: list[int] | None = None, extra_columns: tuple[str, ...] = ()
    ):
        self.data = undecoded_frames(hf_dataset)
        self.frame_indices = frame_indices
        self.extra_columns = extra_columns

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.data[int(index)]
        example: dict[str, Any] = {
            "index": int(index),
            "clip_id": row.get("clip_id", str(index)),
            "error": None,
        }
        try:
            example["waveform"] = decode_audio(row["audio"])
            if example["waveform"].shape[0] < MIN_AUDIO_SAMPLES:
                raise ValueError(
                    f"audio has {example['waveform'].shape[0]} samples, less than one 25 ms window"
                )
            frames = row["frames"] or []
            if not frames:
                raise ValueError("clip has no frames")
            # Missing frame indices fall back to the last available frame, like the official loader's fallback.
            wanted = (
                self.frame_indices if self.frame_indices is not None else [middle_frame_index(len(frames))]
            )
            example["images"] = [decode_frame(frames[min(f, len(frames) - 1)]) for f in wanted]
            example["num_frames"] = len(frames)
        except Exception as error:  # noqa: BLE001 - one bad clip must not stop an evaluation
            example["error"] = f"{type(error).__name__}: {error}"
        for column in self.extra_columns:
            example[column] = row.get(column)
        return example


class ModelInputs:
    """The collate function, run in the DataLoader workers: decoded clips -> the model's inputs.

    Returns ``{"clips", "audio_values", "pixel_values"}``: ``clips`` holds every clip's ``index``, ``clip_id``,
    ``error``, ``num_frames`` and extra columns (not the decoded audio / frames, which need not travel back);
    ``audio_values`` ``[B, T, M]`` and ``pixel_values`` ``[P, B, 3, H, W]`` (one slice per frame position) cover
    the B clips that decoded, in batch order, or are None when none did.
    """

    def __init__(self, processor: Any, num_positions: int):
        self.processor = processor
        self.num_positions = num_positions

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        good = [e for e in examples if e["error"] is None]
        clips = [{k: v for k, v in e.items() if k not in ("waveform", "images")} for e in examples]
        batch: dict[str, Any] = {"clips": clips, "audio_values": None, "pixel_values": None}
        if good:
            audio = self.processor(audio=[e["waveform"] for e in good], sampling_rate=16_000)
            batch["audio_values"] = audio["audio_values"]
            batch["pixel_values"] = torch.stack(
                [
                    self.processor(images=[e["images"][p] for e in good])["pixel_values"]
                    for p in range(self.num_positions)
                ]
            )
        return batch


def make_loader(
    dataset: ClipFrameDataset, batch_size: int, num_workers: int, collate: ModelInputs
) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate
    )


def per_clip_records(
    loader: DataLoader, compute, *, desc: str, progress: bool
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Run ``compute(batch) -> {name: [B, ...] array}`` over this process's batches and gather every process's
    per-clip records; returns the decoded clips' records in dataset order (each with its rows of the arrays) and
    the skipped clips with their reasons."""
    from tqdm.auto import tqdm

    processes = eval_processes()
    records: list[dict[str, Any]] = []
    batches, own = processes.shard(loader), 0
    for batch in tqdm(batches, desc=desc, unit="batch", disable=not (progress and processes.is_main)):
        outputs = compute(batch) if batch["audio_values"] is not None else {}
        good = iter(range(len(batch["clips"])))
        local = []
        for clip in batch["clips"]:
            row = next(good) if clip["error"] is None else None
            local.append({**clip, **({k: v[row] for k, v in outputs.items()} if row is not None else {})})
        own += len(local)
        records += processes.gather(local)
    if processes.world_size > 1:
        logger.info("process %d of %d ran %d clip(s)", processes.rank, processes.world_size, own)
    ordered = in_dataset_order(records)
    skipped = [{"clip_id": r["clip_id"], "reason": r["error"]} for r in ordered if r["error"] is not None]
    decoded = [r for r in ordered if r["error"] is None]
    if not decoded:
        raise UsageError(f"no clip could be decoded ({len(skipped)} skipped; first: {skipped[:1]})")
    return decoded, skipped


def autocast_context(device: str, precision: str):
    """fp16 / bf16 autocast (the official script uses fp16 autocast on GPU), or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def feature_encoder(model: Any) -> Any:
    """The object with ``get_audio_features`` / ``get_visual_features`` (a classifier keeps them in ``cav_mae``)."""
    if hasattr(model, "get_audio_features"):
        return model
    if hasattr(model, "cav_mae"):
        return model.cav_mae
    raise TypeError(f"{type(model).__name__} has no get_audio_features / get_visual_features")


def supports_text_retrieval(model: Any) -> bool:
    return hasattr(model, "get_text_aligned_audio_features") and hasattr(
        model, "get_text_aligned_visual_features"
    )


def text_aligned_features(
    model: Any,
    audio_values: torch.Tensor,
    pixel_values: torch.Tensor,
    audio: torch.Tensor,
    visual: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Audio / visual features in the text (CLAP) space.

    ``get_text_aligned_*_features`` is the projection head applied to ``get_*_features``; when the heads are
    reachable we project the features already computed instead of running the encoders a second time.
    """
    audio_head = getattr(model, "audio_text_projection", None)
    visual_head = getattr(model, "visual_text_projection", None)
    if audio_head is None or visual_head is None:
        return model.get_text_aligned_audio_features(audio_values), model.get_text_aligned_visual_features(
            pixel_values
        )
    return audio_head(audio), visual_head(visual)


@dataclass
class RetrievalFeatures:
    """Features of the clips that decoded, in dataset order; ``skipped`` lists the others with reasons.

    Shapes: N clips that decoded, D the encoder's hidden size, T the text (CLAP) embedding size. Every array is
    float32 and not normalised; the text-space ones are None unless text retrieval was asked for.

    Args:
        clip_ids (list of N str): the clips' ids.
        audio (``[N, D]``, float32): mean-pooled audio stream of the unmasked encoder.
        visual (``[N, D]``, float32): the visual counterpart (one frame per clip).
        text (``[N, T]``, float32): the stored caption embedding of each clip (``text_embedding`` column).
        audio_in_text_space (``[N, T]``, float32): ``audio`` through the model's audio-to-text projection.
        visual_in_text_space (``[N, T]``, float32): the visual counterpart.
        skipped (list of dict): ``{"clip_id", "reason"}`` of every clip that did not decode.
        caption_texts (column -> ``[N, T]``, float32): further stored caption embeddings asked for
            (``audio_text_embedding``, ``visual_text_embedding``: the audio and the visual captions').
    """

    clip_ids: list[str]
    audio: np.ndarray
    visual: np.ndarray
    text: np.ndarray | None = None
    audio_in_text_space: np.ndarray | None = None
    visual_in_text_space: np.ndarray | None = None
    skipped: list[dict[str, str]] = field(default_factory=list)
    caption_texts: dict[str, np.ndarray] = field(default_factory=dict)


@torch.inference_mode()
def extract_retrieval_features(
    model: Any,
    processor: Any,
    hf_dataset,
    *,
    batch_size: int = 32,
    device: str = "cpu",
    frame_index: int | None = None,
    with_text: bool = False,
    precision: str = "fp32",
    num_workers: int = 0,
    progress: bool = True,
    caption_text_columns: tuple[str, ...] = (),
) -> RetrievalFeatures:
    """Official retrieval features (unmasked modality streams, mean-pooled; not yet normalised) for every clip.

    ``frame_index`` None takes each clip's middle frame (the CAV-MAE protocol); ``with_text`` also returns
    the stored caption embeddings (``text_embedding`` and the ``caption_text_columns``) and the audio / visual
    features projected into that (CLAP) space.
    """
    encoder = feature_encoder(model)
    caption_text_columns = caption_text_columns if with_text else ()
    extra = ("text_embedding", *caption_text_columns) if with_text else ()
    frames = None if frame_index is None else [frame_index]
    dataset = ClipFrameDataset(hf_dataset, frames, extra)
    loader = make_loader(dataset, batch_size, num_workers, ModelInputs(processor, 1))

    def compute(batch: dict[str, Any]) -> dict[str, np.ndarray]:
        audio_values = batch["audio_values"].to(device)
        pixel_values = batch["pixel_values"][0].to(device)
        outputs = {}
        with autocast_context(device, precision):
            audio = encoder.get_audio_features(audio_values)
            visual = encoder.get_visual_features(pixel_values)
            if with_text:
                audio_t, visual_t = text_aligned_features(model, audio_values, pixel_values, audio, visual)
                outputs["audio_t"], outputs["visual_t"] = (
                    audio_t.float().cpu().numpy(),
                    visual_t.float().cpu().numpy(),
                )
        outputs["audio"], outputs["visual"] = audio.float().cpu().numpy(), visual.float().cpu().numpy()
        return outputs

    decoded, skipped = per_clip_records(loader, compute, desc="features", progress=progress)
    if skipped and eval_processes().is_main:  # every process holds the same gathered list
        logger.warning("%d clip(s) skipped, e.g. %s", len(skipped), skipped[0])

    def stacked(key: str) -> np.ndarray | None:
        return (
            np.stack([np.asarray(r[key], dtype=np.float32) for r in decoded]) if key in decoded[0] else None
        )

    return RetrievalFeatures(
        clip_ids=[r["clip_id"] for r in decoded],
        audio=stacked("audio"),
        visual=stacked("visual"),
        text=stacked("text_embedding"),
        audio_in_text_space=stacked("audio_t"),
        visual_in_text_space=stacked("visual_t"),
        skipped=skipped,
        caption_texts={column: stacked(column) for column in caption_text_columns},
    )
