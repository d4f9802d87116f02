"""Saved / pushed checkpoints carry their code: they load with trust_remote_code where our package is absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForAudioClassification, AutoModelForPreTraining

import modeling_lgcavmae  # noqa: F401  (registers the Auto classes)
from avt_triplets.tiny import make_tiny_lgcavmae

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")

MODEL_FILES = {
    "modeling_lgcavmae.py",
    "configuration_lgcavmae.py",
    "losses_lgcavmae.py",
    "text_encoder_lgcavmae.py",
}

# Runs in a fresh interpreter that cannot import our packages, so only the files saved with the checkpoint
# can provide the classes.
_REMOTE_LOADER = textwrap.dedent(
    """
    import sys

    class _Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("modeling_lgcavmae", "avt_core", "avt_triplets"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, _Blocked())
    import torch
    from transformers import AutoModel, AutoModelForAudioClassification, AutoModelForPreTraining

    inputs_path, output_path, *sources = sys.argv[1:]
    inputs = torch.load(inputs_path)
    results = {}
    for source in sources:
        pretraining = AutoModelForPreTraining.from_pretrained(source, trust_remote_code=True).eval()
        encoder = AutoModel.from_pretrained(source, trust_remote_code=True).eval()
        classifier = AutoModelForAudioClassification.from_pretrained(source, trust_remote_code=True, num_labels=3)
        assert type(pretraining).__module__.startswith("transformers_modules"), type(pretraining).__module__
        with torch.no_grad():
            results[source] = {
                "loss": pretraining(**inputs).loss,
                "audio_features": encoder.get_audio_features(inputs["audio_values"]),
                "classes": ",".join(type(m).__name__ for m in (pretraining, encoder, classifier)),
                "frozen": [n for n, p in pretraining.named_parameters() if not p.requires_grad],
            }
    torch.save(results, output_path)
    """
)


def _inputs(config) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "audio_values": torch.randn(2, config.audio_length, config.num_mel_bins, generator=generator),
        "pixel_values": torch.randn(2, 3, config.image_size, config.image_size, generator=generator),
        "text_embeds": torch.randn(2, config.text_embed_dim, generator=generator),
        "audio_noise": torch.rand(2, config.num_audio_patches, generator=generator),
        "visual_noise": torch.rand(2, config.num_visual_patches, generator=generator),
    }


def _load_without_our_package(sources: list[str], inputs: dict, tmp_path: Path) -> dict:
    """One fresh interpreter (imports are the slow part) loading every source; results by source."""
    torch.save(inputs, tmp_path / "inputs.pt")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "hf_modules"), "PYTHONPATH": ""}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _REMOTE_LOADER,
            str(tmp_path / "inputs.pt"),
            str(tmp_path / "out.pt"),
            *sources,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(tmp_path / "out.pt")


def test_tiny_builder_writes_a_self_contained_remote_code_folder(tmp_path):
    folder = make_tiny_lgcavmae(tmp_path / "tiny", text_embed_dim=16)
    saved = {path.name for path in folder.iterdir()}
    assert MODEL_FILES <= saved and "model.safetensors" in saved
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_lgcavmae.LGCavMaeConfig",
        "AutoModel": "modeling_lgcavmae.LGCavMaeModel",
        "AutoModelForPreTraining": "modeling_lgcavmae.LGCavMaeForPreTraining",
        "AutoModelForAudioClassification": "modeling_lgcavmae.LGCavMaeForAudioVisualClassification",
    }
    assert config["text_embed_dim"] == 16
    # the saved code only imports relatively (plus torch / transformers / huggingface_hub)
    for name in MODEL_FILES:
        text = (folder / name).read_text()
        assert "import modeling_lgcavmae" not in text and "avt_triplets" not in text
    assert type(AutoConfig.from_pretrained(folder)).__name__ == "LGCavMaeConfig"
    assert type(AutoModel.from_pretrained(folder)).__name__ == "LGCavMaeModel"
    assert type(AutoModelForAudioClassification.from_pretrained(folder, num_labels=2)).__name__ == (
        "LGCavMaeForAudioVisualClassification"
    )


def test_folder_and_hub_repo_load_with_trust_remote_code_without_our_package(local_hub, tmp_path):
    """push_to_hub uploads weights, code and our card; the folder and the repo id both load by remote code."""
    folder = make_tiny_lgcavmae(tmp_path / "tiny")
    model = AutoModelForPreTraining.from_pretrained(folder).eval()
    repo_id = local_hub.repo_id(f"tiny-lgcavmae-{uuid.uuid4().hex[:8]}")
    model.push_to_hub(repo_id, card_source="A tiny random-weight model for tests.")

    from huggingface_hub import HfApi, ModelCard

    files = set(HfApi().list_repo_files(repo_id))
    assert {"model.safetensors", "config.json", "README.md"} | MODEL_FILES <= files
    card = ModelCard.load(repo_id)
    assert "LG-CAV-MAE" in card.content and "tiny random-weight model" in card.content
    assert card.data.library_name == "transformers"

    inputs = _inputs(model.config)
    loaded = AutoModelForPreTraining.from_pretrained(repo_id).eval()
    with torch.no_grad():
        expected, reloaded = model(**inputs), loaded(**inputs)
        expected_features = model.get_audio_features(inputs["audio_values"])
    assert torch.equal(expected.loss, reloaded.loss)

    remote = _load_without_our_package([str(folder), repo_id], inputs, tmp_path)
    for source in (str(folder), repo_id):
        assert (
            remote[source]["classes"]
            == "LGCavMaeForPreTraining,LGCavMaeModel,LGCavMaeForAudioVisualClassification"
        )
        assert torch.equal(remote[source]["loss"], expected.loss)
        assert torch.equal(remote[source]["audio_features"], expected_features)
        assert len(remote[source]["frozen"]) == 4  # the fixed tables stay frozen under remote code too
