"""SLAVA's view of triplet clips: every frame, the whole audio, every caption of each kind, through a model's frozen
towers. Shared by the training feature cache (`avt_training/slava/`) and evaluation (`eval/slava_retrieval.py`); the
model is only called (`get_*_tower_features`), never imported.

Rows are decoded and turned into tower inputs by `SlavaProcessor` inside DataLoader workers; the towers run in the
calling process under `torch.inference_mode`. A clip whose audio or frames cannot be decoded is yielded with its
`error` and no features: it is recorded, never substituted. A clip without captions (a labelled-only output has no
caption column) has audio and visual features and no text: evaluation retrieves audio<->visual with it, training
leaves it out of every caption kind it lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avt_data.captions import CAPTION_KINDS, present_caption_columns, row_captions
from avt_data.rows import decode_audio, decode_frame, undecoded_media

logger = logging.getLogger(__name__)


class ClipMediaDataset(Dataset):
    """Row `indices[i]` -> 16 kHz waveform, its frames (all, or the one at `frame_index`), captions per kind."""

    def __init__(
        self,
        hf_dataset,
        indices: Sequence[int],
        sources: dict[str, Sequence[str]],
        frame_index: int | None = None,
    ):
        columns = ["clip_id", "audio", "frames", *present_caption_columns(hf_dataset.column_names)]
        self.data = undecoded_media(
            hf_dataset.select_columns([c for c in columns if c in hf_dataset.column_names])
        )
        self.indices = list(indices)
        self.sources = sources
        self.frame_index = frame_index

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = self.indices[int(position)]
        row = self.data[index]
        example: dict[str, Any] = {"index": index, "clip_id": row.get("clip_id") or str(index), "error": None}
        example["captions"] = row_captions(row, self.sources)
        try:
            example["waveform"] = decode_audio(row["audio"])
            frames = row["frames"] or []
            if not frames:
                raise ValueError("clip has no frames")
            if self.frame_index is not None:
                frames = [frames[min(self.frame_index, len(frames) - 1)]]
            example["images"] = [decode_frame(frame) for frame in frames]
        except Exception as error:  # noqa: BLE001 - one bad clip must not stop a long extraction
            example["error"] = f"{type(error).__name__}: {error}"
        return example


class TowerInputCollator:
    """Good clips of a batch -> processor outputs; captions deduplicated (greedy captions repeat a lot)."""

    def __init__(self, processor):
        self.processor = processor

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        good = [e for e in examples if e["error"] is None]
        batch: dict[str, Any] = {"examples": examples, "good": [e["index"] for e in good]}
        if not good:
            return batch
        texts = list(dict.fromkeys(t for e in good for kind in CAPTION_KINDS for t in e["captions"][kind]))
        position = {text: i for i, text in enumerate(texts)}
        batch["text_rows"] = [
            {k: [position[t] for t in e["captions"][k]] for k in CAPTION_KINDS} for e in good
        ]
        batch["inputs"] = self.processor(
            audio=[e["waveform"] for e in good],
            images=[e["images"] for e in good],
            text=texts or None,  # no caption in the batch: no text inputs
            sampling_rate=16_000,
        )
        return batch


def make_loader(dataset: ClipMediaDataset, processor, batch_size: int, num_workers: int) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=TowerInputCollator(processor),
        prefetch_factor=2 if num_workers else None,
    )


@torch.inference_mode()
def tower_features_of_batch(model, inputs: dict[str, torch.Tensor], device) -> dict[str, np.ndarray]:
    """Clip-level tower features (frame / window means) and one row per unique caption (none without text)."""
    moved = {k: v.to(device) for k, v in inputs.items()}
    features = {
        "audio": model.get_audio_tower_features(moved["audio_values"], moved["windows_mask"]),
        "visual": model.get_visual_tower_features(moved["pixel_values"], moved["frames_mask"]),
    }
    if "input_ids" in moved:
        features["text"] = model.get_text_tower_features(moved["input_ids"], moved["attention_mask"])
    out = {name: value.float().cpu().numpy() for name, value in features.items()}
    out.setdefault("text", np.zeros((0, model.config.text_hidden_size), np.float32))
    return out


def iterate_tower_features(
    model,
    processor,
    hf_dataset,
    indices: Sequence[int],
    sources: dict[str, Sequence[str]],
    *,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    frame_index: int | None = None,
    progress: bool = True,
    desc: str = "tower features",
) -> Iterator[dict[str, Any]]:
    """Yield, per clip in `indices` order: `index`, `clip_id`, `error`, `captions` and (when it decoded) `audio`
    `[Da]`, `visual` `[Dv]` and `texts` `{kind: [n_kind, Dt]}` tower features (before the projections)."""
    from tqdm.auto import tqdm

    dataset = ClipMediaDataset(hf_dataset, indices, sources, frame_index=frame_index)
    loader = make_loader(dataset, processor, batch_size, num_workers)
    bar = tqdm(total=len(dataset), desc=desc, unit="clip", disable=not progress)
    for batch in loader:
        features = tower_features_of_batch(model, batch["inputs"], device) if batch["good"] else None
        good_row = {index: row for row, index in enumerate(batch["good"])}
        for example in batch["examples"]:
            record = {k: example[k] for k in ("index", "clip_id", "error", "captions")}
            row = good_row.get(example["index"])
            if row is not None:
                record["audio"] = features["audio"][row]
                record["visual"] = features["visual"][row]
                text_rows = batch["text_rows"][row]
                record["texts"] = {k: features["text"][text_rows[k]] for k in CAPTION_KINDS}
            yield record
        bar.update(len(batch["examples"]))
    bar.close()


__all__ = ["ClipMediaDataset", "TowerInputCollator", "iterate_tower_features", "tower_features_of_batch"]
