"""Per-epoch validation of pretraining, as the official CAV-MAE loop does it.

The eval set is read with the middle frame and no fbank noise, but the model is STILL masked at 75% (the
losses are those of the MAE objective). Masks are seeded per sample index (key ``(index, 0)``), so two
evaluations of the same weights give identical numbers, and the global RNG states are saved and restored
around an evaluation, so evaluating never changes the training trajectory.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from avt_training.losses import ContrastiveScope, PretrainingLoss

EVAL_PREFIX = "eval_"
EVAL_EPOCH = 0  # every evaluation draws the masks of this pseudo-epoch: the same masks each time


class FixedKeySampler(Sampler):
    """``(index, EVAL_EPOCH)`` keys in order, with no ``set_epoch``: accelerate's prepared loader calls
    ``set_epoch(iteration)`` on each pass, which would give every evaluation different masks."""

    def __init__(self, num_samples: int):
        self.num_samples = num_samples

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((index, EVAL_EPOCH) for index in range(self.num_samples))


def build_eval_loader(
    hf_dataset,
    model_config,
    processor,
    batch_size: int,
    seed: int,
    num_workers: int = 0,
    text_source: str = "caption",
):
    """Loader over the eval set: in order, middle frame, no audio noise, masks seeded by (seed, index)."""
    from torch.utils.data import DataLoader

    from avt_training.collators import PretrainingCollator
    from avt_training.data import ClipDataset

    dataset = ClipDataset(
        hf_dataset, frame_selection="middle", seed=seed, with_text=True, text_source=text_source
    )
    if len(dataset) == 0:
        raise ValueError("the eval dataset is empty")
    sampler = FixedKeySampler(len(dataset))
    collator = PretrainingCollator(
        processor,
        audio_noise_augment=False,
        num_audio_patches=model_config.num_audio_patches,
        num_visual_patches=model_config.num_visual_patches,
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collator,
        num_workers=num_workers,
        drop_last=False,  # every eval clip counts; accelerate pads the last batch and gather_for_metrics drops it
        pin_memory=torch.cuda.is_available(),
    )


@contextlib.contextmanager
def preserved_rng_states() -> Iterator[None]:
    """Restore Python, NumPy and torch (CPU + CUDA) RNG states on exit: iterating a DataLoader draws a base
    seed from torch's global generator, which would otherwise shift the training run's random stream."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def evaluate_pretraining(
    model,
    loader,
    accelerator,
    scope: ContrastiveScope = "per-process",
    prefix: str = EVAL_PREFIX,
) -> dict[str, float]:
    """Every loss term of pretraining (``loss``, reconstruction audio/visual, contrastive + accuracy,
    audio-text, visual-text) averaged over the eval clips and over processes, keys prefixed with ``prefix``.

    Each term is a per-batch mean (as in training); batches are weighted by their number of real clips:
    every clip carries its batch's values into ``gather_for_metrics``, which drops the padding accelerate
    adds to the last batch, and the mean over the gathered clips is the eval-set mean.

    Contrastive negatives are the clips of one eval batch (``per-process``, as the official per-GPU eval).
    accelerate hands whole batches to processes, so the eval batches, and the numbers, are the same on any
    number of processes when the eval set is a multiple of the eval batch size; ``global`` would mix in the padding
    clips of another process's last batch. Otherwise accelerate completes the short last batch with repeated clips:
    their rows are dropped, but they sit in that one batch's means (a small, deterministic difference).
    """
    unwrapped = accelerator.unwrap_model(model)
    loss_fn = PretrainingLoss(unwrapped.config, scope)
    was_training = model.training
    model.eval()
    rows: dict[str, list[torch.Tensor]] = {}
    try:
        with preserved_rng_states(), torch.inference_mode():
            for batch in loader:
                batch.pop("decode_failed", None)
                size = batch["audio_values"].shape[0]
                output = model(**batch, return_contrastive_loss=False)
                _, logs = loss_fn(output, batch.get("text_embeds"), unwrapped.text_temperature)
                for key, value in logs.items():
                    per_clip = value.float().reshape(()).expand(size).to(accelerator.device)
                    rows.setdefault(key, []).append(accelerator.gather_for_metrics(per_clip))
    finally:
        model.train(was_training)
    return {
        f"{prefix}{key}": torch.cat(values).double().mean().item() for key, values in sorted(rows.items())
    }
