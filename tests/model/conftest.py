"""Fixtures for the model tests: the independent official-forward reference and tiny configs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_HERE = Path(__file__).resolve().parent


def _load(name: str) -> ModuleType:
    """Import a helper module of this folder by path (pytest runs with --import-mode=importlib)."""
    qualified = f"avt_tests_model_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, _HERE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


@pytest.fixture(scope="session")
def official() -> ModuleType:
    """tests/model/official_reference.py: the official CAV-MAE forward re-implemented on official key names."""
    return _load("official_reference")


@pytest.fixture(scope="session")
def tiny_dims(official):
    """Official constructor dims for a tiny model (2 modality-specific layers so layer order matters)."""
    return official.OfficialDims(
        embed_dim=32,
        num_heads=2,
        modality_specific_depth=2,
        shared_depth=1,
        decoder_embed_dim=16,
        decoder_depth=2,
        decoder_num_heads=2,
        audio_length=128,
        img_size=48,
    )


def lgcavmae_overrides(dims) -> dict:
    """LGCavMaeConfig fields for the same dims (head counts are not in the shapes, so pass them)."""
    return {"num_attention_heads": dims.num_heads, "decoder_num_attention_heads": dims.decoder_num_heads}


@pytest.fixture(scope="session")
def tiny_overrides(tiny_dims) -> dict:
    return {**lgcavmae_overrides(tiny_dims), "text_embed_dim": 8}


@pytest.fixture(autouse=True)
def single_torch_thread():
    """The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
