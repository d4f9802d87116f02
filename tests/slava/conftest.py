"""Fixtures of the SLAVA tests: tiny CLIP, one shared feature cache, training options over the shared synthetic
triplets (tests/conftest.py), and embeddings computed by a checkpoint's own remote code."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
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


# A fresh interpreter that cannot import our packages: only the code saved with the checkpoint provides the classes.
_REMOTE_LOADER = textwrap.dedent(
    """
    import sys

    class _Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("modeling_slava", "avt_triplets", "avt_data", "training", "eval"):
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, _Blocked())
    import torch
    from transformers import AutoModel

    source, inputs_path, output_path = sys.argv[1:]
    model = AutoModel.from_pretrained(source, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    inputs = torch.load(inputs_path)
    with torch.no_grad():
        torch.save(
            {
                "audio": model.get_audio_features(inputs["audio_values"], inputs["windows_mask"]),
                "visual": model.get_visual_features(inputs["pixel_values"], inputs["frames_mask"]),
                "text": model.get_text_features(inputs["input_ids"], inputs["attention_mask"]),
            },
            output_path,
        )
    """
)


@pytest.fixture
def remote_code_embeddings(tmp_path) -> Callable[[str, dict], dict]:
    """`embed(source, inputs)`: audio / visual / text embeddings of processor `inputs` by the SLAVA checkpoint at
    `source` (folder or Hub id), loaded with `trust_remote_code=True` where our packages cannot be imported."""
    import torch

    def embed(source: str, inputs: dict) -> dict:
        torch.save(dict(inputs), tmp_path / "remote_inputs.pt")
        env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "hf_modules"), "PYTHONPATH": ""}
        paths = [str(tmp_path / "remote_inputs.pt"), str(tmp_path / "remote_out.pt")]
        command = [sys.executable, "-c", _REMOTE_LOADER, source, *paths]
        result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return torch.load(tmp_path / "remote_out.pt")

    return embed
