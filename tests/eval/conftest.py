"""A tiny labelled triplet dataset on disk (the layout of a generation output) for the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CLASSES = ("dog", "cat", "bird")
CLIPS_PER_CLASS = 4
NUM_FRAMES = 3
TEXT_DIM = 32  # TINY_LGCAVMAE_CONFIG["text_embed_dim"]


def _row(index: int, label: str | None, num_frames: int, rng: np.random.Generator) -> dict:
    from PIL import Image

    from avt_triplets.selection import sample_key

    klass = CLASSES.index(label) if label else 0
    t = np.arange(int(3.0 * 16000)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * (300 + 400 * klass + 37 * index) * t) + 0.02 * rng.standard_normal(
        t.shape
    )
    frames = []
    for f in range(num_frames):
        pixels = rng.integers(0, 60, (72, 96, 3)).astype(np.uint8)
        pixels[..., klass] += np.uint8(120 + 30 * f)  # frames differ, so the chosen frame matters
        frames.append(Image.fromarray(pixels))
    return {
        "clip_id": f"clip{index:03d}",
        "video_path": f"videos/clip{index:03d}.mp4",
        "start_s": 0.0,
        "end_s": 3.0,
        "audio": {"array": audio.astype(np.float32), "sampling_rate": 16000},
        "frames": frames,
        "frame_times_s": [float(f) for f in range(num_frames)],
        "captions": [f"a {label or 'thing'} {f}" for f in range(num_frames)],
        "caption_scores": [0.1] * num_frames,
        "caption": f"a {label or 'thing'}",
        "caption_index": 0,
        "clap_score": 0.1,
        "text_embedding": rng.standard_normal(TEXT_DIM).astype(np.float32).tolist(),
        "labels": [label] if label else [],
        "sample_key": sample_key(f"clip{index:03d}"),
    }


@pytest.fixture(scope="session")
def tiny_triplets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 labelled clips (3 classes x 4), one unlabelled clip, and one labelled clip without frames
    (which evaluation must skip and report), written as ``data/shard-00000.parquet``."""
    import datasets

    from avt_triplets.schema import data_path, triplet_features

    rng = np.random.default_rng(0)
    rows = [_row(i, CLASSES[i % 3], NUM_FRAMES, rng) for i in range(len(CLASSES) * CLIPS_PER_CLASS)]
    rows.append(_row(len(rows), None, NUM_FRAMES, rng))
    rows.append(_row(len(rows), "dog", 0, rng))
    columns = {key: [row[key] for row in rows] for key in triplet_features()}
    root = tmp_path_factory.mktemp("tiny_triplets")
    path = data_path(root, 0)
    path.parent.mkdir(parents=True)
    datasets.Dataset.from_dict(columns, features=triplet_features()).to_parquet(str(path))
    return root


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight LGCavMaeForAudioVisualClassification over CLASSES, saved with save_pretrained."""
    import torch

    from avt_triplets.tiny.lgcavmae import TINY_LGCAVMAE_CONFIG
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForAudioVisualClassification

    config = LGCavMaeConfig(
        **TINY_LGCAVMAE_CONFIG,
        num_labels=len(CLASSES),
        id2label=dict(enumerate(CLASSES)),
        label2id={name: i for i, name in enumerate(CLASSES)},
        problem_type="single_label_classification",
    )
    torch.manual_seed(0)
    model = LGCavMaeForAudioVisualClassification(config)
    folder = tmp_path_factory.mktemp("tiny_classifier")
    model.save_pretrained(folder)
    return folder
