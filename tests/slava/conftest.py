"""Fixtures of the SLAVA tests: tiny CLIP, one shared feature cache and training options over the shared synthetic
triplets (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avt_triplets.tiny import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def slava_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A feature cache folder shared by the tests that train on the same towers and triplets."""
    return tmp_path_factory.mktemp("slava_feature_cache")


@pytest.fixture
def train_options(tiny_clip, tiny_clap, synthetic_train, synthetic_heldout, slava_cache) -> dict:
    return {
        "datasets": [str(synthetic_train)],
        "eval_datasets": [str(synthetic_heldout)],
        "vision_model": str(tiny_clip),
        "audio_model": str(tiny_clap),
        "feature_cache_dir": str(slava_cache),
        **TRAIN_OPTIONS,
    }
