"""``--caption-batch-size auto``: the largest caption batch the device's free memory holds, decided once per run.

Greedy decoding of a caption costs about the same for one frame as for a few hundred (it is bound by reading the
weights), so on a GPU the batch should be as large as memory allows. The probe captions synthetic frames through
the same path as the run (``caption_pixels`` of preprocessed frames), every caption forced to ``max_new_tokens``
(the most memory a batch can take), starting at a chunk's frames (no batch is ever larger) and halving on
out-of-memory until a batch fits.

Bit-exact rows need fixed batches (:mod:`avt_triplets.stages.worker`), so the size is decided once, before the
first chunk, and recorded in the output's manifest (``caption_batch_size``); a resumed run takes the recorded
size instead of probing again, so its rows equal an uninterrupted run's whatever the free memory is then. On the
CPU there is nothing to probe (memory is not what limits a batch there): auto means
:data:`DEFAULT_CAPTION_BATCH_SIZE`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from avt_core.errors import RunAborted
from avt_triplets.batching import is_out_of_memory, release_accelerator_memory
from avt_triplets.model_inputs import caption_rows, frame_inputs, image_preprocessor_of
from avt_triplets.options import GenerationOptions

logger = logging.getLogger(__name__)

DEFAULT_CAPTION_BATCH_SIZE = 32


def frames_per_chunk(options: GenerationOptions) -> int:
    """The most frames a chunk can hold: its clips times the frames sampled from one clip."""
    clips = min(options.chunk_size, options.shard_size)
    return max(1, clips * math.ceil(options.clip_seconds * options.fps))


def _caption_full_length(captioner: Any, size: int) -> None:
    """Caption ``size`` copies of the synthetic frame, the way the run's frames arrive."""
    from avt_triplets.preflight import synthetic_frame

    frames = frame_inputs([np.asarray(synthetic_frame())], image_preprocessor_of(captioner))
    caption_rows(captioner, [frames.row(0)] * size, frames.preprocessed)


def probe_caption_batch_size(captioner: Any, start: int) -> int:
    """The largest batch from ``start`` down, halving on out-of-memory, that captions full-length captions.

    Raises :class:`RunAborted` when the captioner fails for another reason (a broken model), or even one frame
    does not fit.
    """
    kwargs = captioner.generate_kwargs
    saved = None if kwargs is None else kwargs.get("min_new_tokens")
    if kwargs is not None:
        kwargs["min_new_tokens"] = captioner.max_new_tokens
    size = max(1, int(start))
    try:
        while True:
            try:
                _caption_full_length(captioner, size)
                return size
            except Exception as error:  # noqa: BLE001 - only out-of-memory halves; anything else stops the run
                release_accelerator_memory()
                if not is_out_of_memory(error) or size == 1:
                    raise RunAborted(
                        f"--caption-batch-size auto: the captioner fails on a batch of {size} synthetic frames: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                logger.info("caption batch of %d frames does not fit; trying %d", size, size // 2)
                size //= 2
    finally:
        if kwargs is not None:
            if saved is None:
                kwargs.pop("min_new_tokens", None)
            else:
                kwargs["min_new_tokens"] = saved
        release_accelerator_memory()


def resolve_caption_batch_size(captioner: Any, options: GenerationOptions, recorded: int | None) -> int:
    """The caption batch size of this run: the one given; for ``auto`` the output's ``recorded`` one, else a
    probe on a GPU, else :data:`DEFAULT_CAPTION_BATCH_SIZE`."""
    given = options.caption_batch_size
    if given != "auto":
        if recorded is not None and recorded != given:
            logger.warning(
                "--caption-batch-size %d differs from the %d this output was started with: the shards this run "
                "writes may differ in the last bits from an uninterrupted run (use 'auto' to reuse %d)",
                given,
                recorded,
                recorded,
            )
        return int(given)
    if recorded is not None:
        logger.info("caption batch size %d, as recorded in the output's manifest", recorded)
        return int(recorded)
    if captioner.caption_unit == "clip":
        return 1  # --caption-unit clip: one video per model call, whatever the batch size
    device = captioner.device
    if device is None or getattr(device, "type", str(device)) in ("cpu", "meta"):
        return DEFAULT_CAPTION_BATCH_SIZE
    size = probe_caption_batch_size(captioner, frames_per_chunk(options))
    logger.info("caption batch size: %d frames fit on %s (auto)", size, device)
    return size


__all__ = [
    "DEFAULT_CAPTION_BATCH_SIZE",
    "frames_per_chunk",
    "probe_caption_batch_size",
    "resolve_caption_batch_size",
]
