"""Benchmark: cost of the offline test kit (what every test session pays once).

Times writing the synthetic videos (default: a dozen 5 s clips, the target is a few seconds on a
laptop core), building each tiny model, and one caption / CLAP embedding with them. Prints JSON.

    python bench/bench_test_kit.py --clips-per-class 3 --num-classes 4 --duration 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, round(time.perf_counter() - start, 3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num-classes", type=int, default=4, help="synthetic classes (at most 8)")
    parser.add_argument("--clips-per-class", type=int, default=3, help="clips written per class")
    parser.add_argument("--duration", type=float, default=5.0, help="length of every clip, seconds")
    args = parser.parse_args()

    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor, ClapModel

    from avt_triplets.tiny import make_synthetic_videos, make_tiny_blip2, make_tiny_clap, make_tiny_llava

    torch.set_num_threads(1)
    report: dict[str, object] = {"torch_threads": 1}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, seconds = _timed(
            make_synthetic_videos,
            root / "videos",
            num_classes=args.num_classes,
            clips_per_class=args.clips_per_class,
            durations_s=(args.duration,),
        )
        clips = args.num_classes * args.clips_per_class
        report["videos"] = {"clips": clips, "clip_seconds": args.duration, "write_s": seconds}

        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))
        for name, builder in (("blip2", make_tiny_blip2), ("llava", make_tiny_llava)):
            folder, build_s = _timed(builder, root / name)
            (processor, model), load_s = _timed(
                lambda f=folder: (
                    AutoProcessor.from_pretrained(f),
                    AutoModelForImageTextToText.from_pretrained(f),
                )
            )
            text = None
            if name == "llava":
                text = processor.apply_chat_template(
                    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}],
                    add_generation_prompt=True,
                )
            inputs = processor(images=[image], text=text, return_tensors="pt")
            _, caption_s = _timed(model.generate, **inputs, max_new_tokens=8)
            report[name] = {"build_s": build_s, "load_s": load_s, "caption_8_tokens_s": caption_s}

        folder, build_s = _timed(make_tiny_clap, root / "clap")
        processor, model = AutoProcessor.from_pretrained(folder), ClapModel.from_pretrained(folder)
        audio = np.random.default_rng(0).normal(0, 0.1, 10 * 48_000).astype(np.float32)
        features, extract_s = _timed(processor, audio=[audio], sampling_rate=48_000, return_tensors="pt")
        with torch.no_grad():
            _, embed_s = _timed(model.get_audio_features, **features)
        report["clap"] = {"build_s": build_s, "features_10s_s": extract_s, "audio_embedding_s": embed_s}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
