"""SLAVA feature cache: what an epoch costs with the frozen towers run every epoch vs read from the cache.

Towers are paper-sized with random weights (no download): CLIP ViT-B/32 (vision 768-d, text 512-d, 12 layers each,
`CLIPConfig()` defaults) and LAION CLAP's HTSAT (`ClapConfig()` defaults, 768-d, 10 s windows at 48 kHz); clips are
paper-sized too (10 s of 16 kHz audio, 10 JPEG frames of 224x224). `--size tiny` uses the test towers instead.

Run 1 fills the cache (decode + towers once per clip) and trains; run 2 reuses the cache (one torch thread: its
epochs are small matrix products). Without a cache every epoch would run the towers over every clip again, so an
epoch costs extraction + training instead of training alone.

    .venv/bin/python bench/bench_slava_cache.py [--clips 32] [--epochs 3] [--size base|tiny] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path


def make_base_towers(root: Path) -> tuple[Path, Path]:
    """Random-weight CLIP ViT-B/32 and LAION-CLAP-sized towers with their real processors, saved like the Hub ones."""
    import torch
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        PreTrainedTokenizerFast,
    )

    from avt_triplets.tiny._text import train_word_tokenizer
    from avt_triplets.tiny.clip import SYNTHETIC_CAPTION_CORPUS

    raw = train_word_tokenizer(
        ["<|startoftext|>", "<|endoftext|>", "<unk>"],
        corpus=SYNTHETIC_CAPTION_CORPUS,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
        pad_token="<|endoftext|>", unk_token="<unk>", model_max_length=77,
    )  # fmt: skip
    torch.manual_seed(0)
    clip_config = CLIPConfig()
    clip_config.text_config.eos_token_id = tokenizer.eos_token_id
    CLIPModel(clip_config).save_pretrained(root / "clip")
    image_processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(root / "clip")
    ClapModel(ClapConfig()).save_pretrained(root / "clap")
    unfused = ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad")  # laion/clap-htsat-unfused
    ClapProcessor(feature_extractor=unfused, tokenizer=tokenizer).save_pretrained(root / "clap")
    return root / "clip", root / "clap"


def run(options: dict, name: str) -> tuple[dict, float]:
    from avt_training.slava.train import pretrain_slava

    started = time.perf_counter()
    output = pretrain_slava({**options, "output_dir": str(Path(options["feature_cache_dir"]).parent / name)})
    wall = time.perf_counter() - started
    return json.loads((output / "train_summary.json").read_text()), wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clips", type=int, default=32, help="clips in the synthetic dataset (multiple of 8)"
    )
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per step")
    parser.add_argument("--size", choices=("base", "tiny"), default="base", help="paper-sized or test towers")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--workers", type=int, default=1, help="decode workers during extraction")
    args = parser.parse_args()

    import torch

    from avt_training.synthetic import make_synthetic_triplets
    from avt_triplets.tiny import make_tiny_clap, make_tiny_clip

    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    base = args.size == "base"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        clip, clap = (
            make_base_towers(root) if base else (make_tiny_clip(root / "clip"), make_tiny_clap(root / "clap"))
        )
        build_s = time.perf_counter() - started
        data = make_synthetic_triplets(
            root / "triplets", num_classes=8, clips_per_class=max(args.clips // 8, 1),
            seconds=10.0 if base else 1.3, frames_per_clip=10 if base else 3, frame_size=224 if base else 48,
        )  # fmt: skip
        options = {
            "datasets": [str(data)], "vision_model": str(clip), "audio_model": str(clap),
            "feature_cache_dir": str(root / "runs" / "cache"), "num_epochs": args.epochs,
            "per_device_batch_size": args.batch_size, "num_workers": args.workers, "report_to": [],
            "progress": False, "projection_dim": 512 if base else 16,
        }  # fmt: skip
        first, first_wall = run(options, "first")
        # the cached epochs are a few small matrix products: one thread (more only spin on a shared CPU)
        torch.set_num_threads(1)
        second, second_wall = run(options, "second")

    clips = first["clips"]
    extraction = first["extraction_seconds"]
    epoch = second["seconds_per_epoch"]
    result = {
        "benchmark": "SLAVA feature cache",
        "towers": "CLIP ViT-B/32 + LAION CLAP HTSAT (random weights)" if base else "tiny test towers",
        "clip": "10 s audio @16 kHz, 10 JPEG frames 224x224" if base else "1.3 s audio, 3 frames 48x48",
        "clips": clips,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "tower_build_and_save_s": round(build_s, 2),
        "first_run": {
            "wall_s": round(first_wall, 2),
            "extraction_s": extraction,
            "training_s": first["training_seconds"],
        },
        "rerun_with_cache": {
            "wall_s": round(second_wall, 2),
            "reused": sum(s["reused"] for s in second["feature_cache"]),
            "extracted": sum(s["extracted"] for s in second["feature_cache"]),
            "training_s": second["training_seconds"],
        },
        "tower_features_ms_per_clip": round(1000 * extraction / clips, 2),
        "cached_epoch_ms_per_clip": round(1000 * epoch / clips, 4),
        "epoch_speedup_from_cache": round((extraction + epoch) / epoch, 1),
        "thirty_epochs_s": {
            "towers_every_epoch": round(30 * (extraction + epoch), 1),
            "cache": round(extraction + 30 * epoch, 1),
        },
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": {"extraction": args.threads, "cached_training": 1},
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
