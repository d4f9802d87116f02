"""Side by side on the same synthetic triplets: LG-CAV-MAE pretraining vs the SLAVA variants.

Class-correlated synthetic triplets (tone, frame colour and caption tied to one of 8 classes; 128 training clips,
48 held-out clips of the same classes), the tiny test models (LG-CAV-MAE with the training tests' fast config; SLAVA on
the tiny CLIP + tiny CLAP towers, random weights). Every model is trained by its real command code and evaluated by
one `avt evaluate retrieval --protocol full` call on the held-out clips: A->V, V->A, T->A, T->V recall@1/5/10.
LG-CAV-MAE's text side is the dataset's stored caption embedding (here a noisy class vector standing in for CLAP's),
SLAVA's is its CLIP text tower on the caption string. Wall-clock times are per training run on one CPU thread; SLAVA's
tower-feature extraction runs once (first variant) and is shared by all variants through one feature cache.

Two caption groups (issue 21): `single` is the data above, one chosen caption per clip (every SLAVA caption kind
falls back to it); `modality` is data whose audio and frames show different classes by design, with audio, visual
and audio-visual caption columns and both CLAP-style text embeddings (`make_synthetic_triplets(...,
modality_captions=True)`): there LG-CAV-MAE trains with `--text-source caption` and `--text-source modality`, SLAVA's
variants read the real caption columns, and the table adds Ta→A (audio captions -> audio) and Tv→V (visual
captions -> visual). On that data T→A with the chosen (frame) caption is near chance by design.

    .venv/bin/python bench/bench_slava_vs_lgcavmae.py [--lgcavmae-steps 200] [--slava-epochs 60] [--groups ...]
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

VARIANTS = ("a&v", "av", "av+avloss", "audioclip", "wav2clip")
DIRECTIONS = (
    ("A→V", "audio_to_visual"),
    ("V→A", "visual_to_audio"),
    ("T→A", "text_to_audio"),
    ("T→V", "text_to_visual"),
    ("Ta→A", "audio_caption_to_audio"),
    ("Tv→V", "visual_caption_to_visual"),
)
GROUPS = ("single", "modality")


def train_lgcavmae(root: Path, train: Path, steps: int, name: str, text_source: str) -> tuple[Path, float]:
    from avt_training.pretrain import PretrainConfig, pretrain
    from avt_triplets.tiny import make_tiny_lgcavmae

    initial = make_tiny_lgcavmae(root / f"{name}-init", audio_length=128, num_mel_bins=64, image_size=48)
    started = time.perf_counter()
    output = pretrain(
        PretrainConfig(
            datasets=[str(train)], output_dir=str(root / name), model_name_or_path=str(initial),
            per_device_batch_size=16, learning_rate=1e-3, lr_scheduler="constant", max_steps=steps, num_workers=0,
            save_steps=None, logging_steps=max(steps // 4, 1), report_to=[], text_source=text_source,
        )
    )  # fmt: skip
    return output, time.perf_counter() - started


def train_slava(root: Path, train: Path, heldout: Path, towers: tuple[Path, Path], variant: str, epochs: int):
    from avt_training.slava.train import pretrain_slava

    started = time.perf_counter()
    output = pretrain_slava(
        {
            "datasets": [str(train)], "eval_datasets": [str(heldout)], "output_dir": str(root / f"slava-{variant}"),
            "variant": variant, "vision_model": str(towers[0]), "audio_model": str(towers[1]), "projection_dim": 16,
            "per_device_batch_size": 16, "learning_rate": 1e-2, "weight_decay": 0.0, "num_epochs": epochs,
            "num_workers": 0, "report_to": [], "progress": False, "feature_cache_dir": str(root / "feature_cache"),
        }
    )  # fmt: skip
    summary = json.loads((output / "train_summary.json").read_text())
    return output, time.perf_counter() - started, summary


def train_group(root: Path, group: str, data: tuple[Path, Path], towers, args) -> dict[str, dict]:
    """Every model of one caption group trained on its data: `single` (the chosen caption, as our triplets today)
    or `modality` (audio, visual and audio-visual caption columns; LG-CAV-MAE with both text sources)."""
    train, heldout = data
    runs: dict[str, dict] = {}
    sources = ("caption", "modality") if group == "modality" else ("caption",)
    for source in sources:
        name = "LG-CAV-MAE" if group == "single" else f"LG-CAV-MAE [modality data, --text-source {source}]"
        output, seconds = train_lgcavmae(
            root / group, train, args.lgcavmae_steps, f"lgcavmae-{source}", source
        )
        runs[name] = {"path": output, "train_wall_s": round(seconds, 2), "steps": args.lgcavmae_steps}
    for variant in args.variants:
        output, seconds, summary = train_slava(
            root / group, train, heldout, towers, variant, args.slava_epochs
        )
        name = f"SLAVA {variant}" if group == "single" else f"SLAVA {variant} [modality data]"
        runs[name] = {
            "path": output, "train_wall_s": round(seconds, 2), "steps": summary["steps"],
            "feature_extraction_s": summary["extraction_seconds"], "training_s": summary["training_seconds"],
        }  # fmt: skip
    return runs


def evaluate_group(root: Path, group: str, runs: dict[str, dict], heldout: Path) -> dict[str, dict]:
    """One `avt evaluate retrieval` call over the group's models on its held-out clips; recall in percent."""
    from avt.cli import main as avt

    out = root / group / "eval"
    models = [arg for name, run in runs.items() for arg in ("--model", f"{name}={run['path']}")]
    avt(["evaluate", "retrieval", *models, "--dataset", f"heldout={heldout}", "--protocol", "full",
         "--no-progress", "--output-dir", str(out)])  # fmt: skip
    entries = {e["model"]: e for e in json.loads((out / "retrieval.json").read_text())["entries"]}
    results = {}
    for name, run in runs.items():
        metrics = entries[name]["metrics"]
        recall = {
            label: [round(100 * metrics[d][f"R@{k}"], 1) for k in (1, 5, 10)]
            for label, d in DIRECTIONS
            if d in metrics
        }
        results[name] = {**{k: v for k, v in run.items() if k != "path"}, "recall_at_1_5_10_percent": recall}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--lgcavmae-steps", type=int, default=200, help="LG-CAV-MAE optimizer steps (batch 16)"
    )
    parser.add_argument(
        "--slava-epochs", type=int, default=60, help="SLAVA epochs (8 steps of 16 clips each)"
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="SLAVA variants to train")
    parser.add_argument(
        "--groups",
        nargs="+",
        default=list(GROUPS),
        choices=GROUPS,
        help="caption groups to train (see above)",
    )
    args = parser.parse_args()

    import torch

    from avt_training.synthetic import make_synthetic_triplets
    from avt_triplets.tiny import make_tiny_clap, make_tiny_clip

    logging.disable(logging.WARNING)
    torch.set_num_threads(1)
    synthetic = {"seconds": 1.3, "frame_size": 48, "num_classes": 8}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        towers = (make_tiny_clip(root / "clip"), make_tiny_clap(root / "clap"))
        for group in args.groups:
            modality = group == "modality"
            data = tuple(
                make_synthetic_triplets(root / group / name, clips_per_class=n, seed=seed, modality_captions=modality,
                                        **synthetic)
                for name, n, seed in (("train", 16, 1), ("heldout", 6, 2))
            )  # fmt: skip
            runs = train_group(root, group, data, towers, args)
            results.update(evaluate_group(root, group, runs, data[1]))
    result = {
        "benchmark": "LG-CAV-MAE vs SLAVA on the same synthetic triplets",
        "train_clips": 128,
        "heldout_clips": 48,
        "chance_recall_at_1_5_10_percent": [round(100 * k / 48, 1) for k in (1, 5, 10)],
        "results": results,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": 1,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    print(markdown(result))


def markdown(result: dict) -> str:
    header = (
        "| Model | train wall s | " + " | ".join(f"{label} R@1 / 5 / 10" for label, _ in DIRECTIONS) + " |"
    )
    lines = [header, "|---|---:|" + "---:|" * len(DIRECTIONS)]
    for name, run in result["results"].items():
        recall = run["recall_at_1_5_10_percent"]
        cells = [
            " / ".join(f"{v:.1f}" for v in recall[label]) if label in recall else "–"
            for label, _ in DIRECTIONS
        ]
        lines.append(f"| {name} | {run['train_wall_s']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
