"""Fixtures of the SLAVA tests: tiny CLIP, class-correlated synthetic triplets, and one shared feature cache."""

from __future__ import annotations

from pathlib import Path

import pytest

SYNTHETIC = {"seconds": 1.3, "frame_size": 48, "num_classes": 8}
# Small learning-rate-friendly settings: 16-d shared space, batches of 16 of the 128 training clips.
TRAIN_OPTIONS = {
    "projection_dim": 16,
    "per_device_batch_size": 16,
    "learning_rate": 1e-2,
    "weight_decay": 0.0,
    "num_workers": 0,
    "report_to": [],
    "progress": False,
}


@pytest.fixture
def single_thread():
    """One intra-op thread: on 2 shared cores, 2 threads per process thrash."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avt_triplets.tiny import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def slava_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """128 clips, 8 classes (tone, colour and caption tied to the class)."""
    from training.synthetic import make_synthetic_triplets

    return make_synthetic_triplets(
        tmp_path_factory.mktemp("slava_train"), clips_per_class=16, seed=1, **SYNTHETIC
    )


@pytest.fixture(scope="session")
def slava_heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 other clips of the same classes."""
    from training.synthetic import make_synthetic_triplets

    return make_synthetic_triplets(
        tmp_path_factory.mktemp("slava_heldout"), clips_per_class=6, seed=2, **SYNTHETIC
    )


@pytest.fixture(scope="session")
def slava_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A feature cache folder shared by the tests that train on the same towers and triplets."""
    return tmp_path_factory.mktemp("slava_feature_cache")


@pytest.fixture
def train_options(tiny_clip, tiny_clap, slava_train, slava_heldout, slava_cache) -> dict:
    return {
        "datasets": [str(slava_train)],
        "eval_datasets": [str(slava_heldout)],
        "vision_model": str(tiny_clip),
        "audio_model": str(tiny_clap),
        "feature_cache_dir": str(slava_cache),
        **TRAIN_OPTIONS,
    }
