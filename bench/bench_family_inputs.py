"""What each captioner family's inputs cost on the CPU: preprocessing per frame in the decode worker, bytes per
frame shipped to the model process, and collating a batch there.

For every family in :data:`published_processors.PUBLISHED` (its real processor class at the published image
settings, around a tiny tokenizer), frames of a ``--source`` video size (default 640x360) are brought to the
short side the captioner asks for (``--caption-image-size``: 224, the default, and ``native``, the model's own
input size as its adapter reads it; 0 means the frame's own size) and then:

* ``preprocess_ms_per_frame``: :class:`~avt_triplets.model_inputs.InputPreparer` on a clip of ``--frames``
  distinct frames, as the decode workers call it (the captioner's ``input_plan().preprocess``: one processor call
  for fixed-size families, one per frame with its metadata and prompt ids for variable-size ones);
* ``bytes_per_frame``: the arrays that cross to the model process (shared memory) per frame;
* ``stack_ms_per_frame``: the captioner's ``stack`` of a ``--batch`` of those rows (one pinned tensor, or the
  collation of patch rows / tiles and prompts), the part of the model process's work that is not the model
  (it runs in the stacking thread, beside the model).

Prints JSON with the machine's load average (the sandbox is shared: compare families within one run).

    python bench/bench_family_inputs.py --families qwen2_5_vl,idefics3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def frames_at(short_side: int, source: tuple[int, int], count: int, seed: int = 0) -> list:
    """``count`` distinct RGB frames of a ``source`` video as decoding brings them to ``short_side``."""
    import numpy as np

    from avt_triplets.media import resized_size

    width, height = source if short_side == 0 else resized_size(*source, short_side)
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def measure(captioner, frames: list, batch: int, repeats: int) -> dict:
    """Per-frame preprocessing (decode-worker side), bytes shipped and stacking (model-process side)."""
    import numpy as np

    from avt_triplets.model_inputs import InputPreparer

    preparer = InputPreparer(image=captioner.image_preprocessor())
    waveform = np.zeros(16_000, dtype=np.float32)
    preparer(frames[:1], waveform)  # first-call costs
    started = time.perf_counter()
    for _ in range(repeats):
        inputs = preparer(frames, waveform)
    preprocess = (time.perf_counter() - started) / (repeats * len(frames))
    shipped = inputs.frames.unique.nbytes + sum(value.nbytes for value in inputs.frames.extra.values())
    rows = [inputs.frames.row(k) for k in range(inputs.frames.num_unique)]
    rows = (rows * (batch // len(rows) + 1))[:batch]
    started = time.perf_counter()
    for _ in range(repeats):
        captioner.stack(rows, pin=False).__len__()
    stack = (time.perf_counter() - started) / (repeats * batch)
    first = rows[0] if isinstance(rows[0], dict) else {"pixel_values": rows[0]}
    return {
        "frame_size": list(frames[0].shape[1::-1]),
        "layout": captioner.input_plan().layout,
        "preprocess_ms_per_frame": round(preprocess * 1000, 2),
        "bytes_per_frame": int(shipped / len(frames)),
        "row_shapes": {key: list(value.shape) for key, value in first.items()},
        "stack_ms_per_frame": round(stack * 1000, 3),
    }


def main() -> None:
    from published_processors import PUBLISHED

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(PUBLISHED), help="Comma-separated model_types.")
    parser.add_argument("--sizes", default="224,native", help="Comma-separated --caption-image-size values.")
    parser.add_argument("--source", default="640x360", help="Source video frame size, WIDTHxHEIGHT.")
    parser.add_argument("--frames", type=int, default=10, help="Distinct frames per clip.")
    parser.add_argument("--batch", type=int, default=32, help="Rows per stacked batch.")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    from stand_in_models import stand_in_family_captioner

    torch.set_num_threads(1)
    source = tuple(int(side) for side in args.source.split("x"))
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            results[family] = {}
            for size in args.sizes.split(","):
                size = size if size == "native" else int(size)
                captioner = stand_in_family_captioner(family, 0.0, Path(tmp), size)
                frames = frames_at(captioner.image_short_side(), source, args.frames)
                results[family][str(size)] = measure(captioner, frames, args.batch, args.repeats)
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads 1",
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "source": list(source),
                "frames_per_clip": args.frames,
                "families": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
