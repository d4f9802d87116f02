"""`--tiny`: synthetic stand-ins for VGGSound, Kinetics and AudioSet, and tiny random-weight models, built locally.

The clips are real MP4s (avt_triplets/tiny/videos.py: a tone and a coloured shape per class) listed like the real
datasets (``video_path,start_s,labels``; AudioSet-style sets add two-class clips, and a class list in the official
``index,mid,display_name`` layout); Kinetics is a bare folder, as users have it. The models are the tiny BLIP-2,
LLaVA and msclap of avt_triplets/tiny, a tiny LG-CAV-MAE config and a tiny ImageNet-MAE-shaped ViTMAE for the
IN-initial start. Sizes: every test set has 5 clips per class (the retrieval protocol's 5 per class, so recall@10 is
defined), and Kinetics' top 10 % still fills one batch of 2.

Both builders are idempotent (a finished folder is reused), so recipes sharing a work directory build them once.
"""

from __future__ import annotations

import json
from pathlib import Path

from avt_recipes.inputs import DataInput, Models, Sources

NUM_CLASSES = 4
# (name, clips per class, two-class clips, seed); Kinetics' 20 clips -> top 10 % = 2 clips = one tiny batch.
_SETS = (
    ("vggsound-train", 4, 0, 11),
    ("vggsound-test", 5, 0, 12),
    ("kinetics", 5, 0, 13),
    ("audioset-20k", 3, 4, 14),
    ("audioset-eval", 5, 4, 15),
)
_VIDEO = {"durations_s": (2.0, 3.0), "sizes": ((96, 64), (64, 48)), "fps": 8, "sample_rate": 16_000}
_DONE = "tiny-done.json"


def make_tiny_sources(folder: Path) -> Sources:
    """Synthetic VGGSound (train/test), Kinetics (a folder), AudioSet-20K and AudioSet eval (multi-label)."""
    from avt_triplets.tiny import make_synthetic_videos

    folder.mkdir(parents=True, exist_ok=True)
    inputs = {}
    for name, per_class, mixed, seed in _SETS:
        target = folder / name
        if not (target / _DONE).exists():
            make_synthetic_videos(
                target,
                num_classes=NUM_CLASSES,
                clips_per_class=per_class,
                num_mixed=mixed,
                seed=seed,
                **_VIDEO,
            )
            (target / _DONE).write_text("{}\n")
        inputs[name] = (
            DataInput(target / "videos") if name == "kinetics" else DataInput(target / "labels.csv")
        )
    labels = folder / "class_labels_indices.csv"
    if not labels.exists():
        from avt_triplets.tiny.label_lists import write_class_labels_indices
        from avt_triplets.tiny.videos import SYNTHETIC_CLASSES

        classes = [(f"/m/tiny{index}", cls.name) for index, cls in enumerate(SYNTHETIC_CLASSES[:NUM_CLASSES])]
        write_class_labels_indices(labels, classes)
    return Sources(inputs=inputs, audioset_labels=labels)


def _tiny_vitmae(folder: Path) -> Path:
    """A random ViTMAE shaped like the tiny LG-CAV-MAE (2 encoder layers = 1 modality-specific + 1 shared)."""
    import torch
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG as micro

    torch.manual_seed(0)
    config = ViTMAEConfig(
        hidden_size=micro["hidden_size"],
        num_hidden_layers=2,
        num_attention_heads=micro["num_attention_heads"],
        intermediate_size=micro["intermediate_size"],
        decoder_hidden_size=micro["decoder_hidden_size"],
        decoder_num_hidden_layers=micro["decoder_num_hidden_layers"],
        decoder_num_attention_heads=micro["decoder_num_attention_heads"],
        decoder_intermediate_size=micro["decoder_intermediate_size"],
        image_size=micro["image_size"],
        patch_size=micro["patch_size"],
        layer_norm_eps=1e-5,
    )
    ViTMAEForPreTraining(config).save_pretrained(folder)
    return folder


def make_tiny_models(folder: Path) -> Models:
    """Tiny captioners, msclap, LG-CAV-MAE config and IN-initial ViTMAE under ``folder`` (built once)."""
    from avt_triplets import tiny
    from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG

    done = folder / _DONE
    if done.exists():
        return Models(**json.loads(done.read_text()))
    folder.mkdir(parents=True, exist_ok=True)
    models = Models(
        blip2=str(tiny.make_tiny_blip2(folder / "blip2")),
        llava=str(tiny.make_tiny_llava(folder / "llava")),
        scorer="msclap:2023",
        scorer_weights=str(tiny.make_tiny_msclap(folder / "msclap")),
        vitmae=str(_tiny_vitmae(folder / "vitmae")),
        lgcavmae_config=str(tiny.make_tiny_lgcavmae(folder / "lgcavmae", **MICRO_LGCAVMAE_CONFIG)),
    )
    done.write_text(json.dumps(models.__dict__, indent=2) + "\n")
    return models


__all__ = ["NUM_CLASSES", "make_tiny_models", "make_tiny_sources"]
