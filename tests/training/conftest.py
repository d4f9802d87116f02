"""Fixtures of the training tests: a small-and-fast tiny LG-CAV-MAE (the synthetic triplets and `single_thread` are
shared by every area, in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Smaller than the shared tiny config so a few hundred CPU steps take seconds: 4 x 8 audio patches
# (1.28 s of audio), 3 x 3 visual patches.
FAST_TINY = {"audio_length": 128, "num_mel_bins": 64, "image_size": 48}


@pytest.fixture(scope="session")
def fast_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avt_triplets.tiny import make_tiny_lgcavmae

    return make_tiny_lgcavmae(tmp_path_factory.mktemp("fast_tiny_lgcavmae"), **FAST_TINY)
