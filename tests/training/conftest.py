"""Fixtures of the training tests: a small-and-fast tiny LG-CAV-MAE and class-correlated synthetic triplets."""

from __future__ import annotations

from pathlib import Path

import pytest

# Smaller than the shared tiny config so a few hundred CPU steps take seconds: 4 x 8 audio patches
# (1.28 s of audio), 3 x 3 visual patches.
FAST_TINY = {"audio_length": 128, "num_mel_bins": 64, "image_size": 48}
SYNTHETIC = {"seconds": 1.3, "frame_size": 48, "num_classes": 8}


@pytest.fixture
def single_thread():
    """One intra-op thread: on 2 shared cores, 2 threads per process thrash (10x slower steps)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def fast_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avt_triplets.tiny import make_tiny_lgcavmae

    return make_tiny_lgcavmae(tmp_path_factory.mktemp("fast_tiny_lgcavmae"), **FAST_TINY)


@pytest.fixture(scope="session")
def synthetic_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """128 clips, 8 classes."""
    from training.synthetic import make_synthetic_triplets

    return make_synthetic_triplets(
        tmp_path_factory.mktemp("triplets_train"), clips_per_class=16, seed=1, **SYNTHETIC
    )


@pytest.fixture(scope="session")
def synthetic_heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 other clips of the same 8 classes."""
    from training.synthetic import make_synthetic_triplets

    return make_synthetic_triplets(
        tmp_path_factory.mktemp("triplets_heldout"), clips_per_class=6, seed=2, **SYNTHETIC
    )
