"""Backends loaded by Hub repo id (the local Hub stands in for huggingface.co) record the resolved commit."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avt_triplets.captioners import load_captioner
from avt_triplets.scorers import load_scorer
from modeling_slava.msclap_slava import CONFIG_FILENAME, WEIGHTS_FILENAME, import_clap_wrapper


@pytest.fixture(autouse=True)
def _hub_answered_everything(local_hub):
    """Fail when a client called a route the local Hub lacks, or the server itself crashed."""
    yield
    unhandled, errors = list(local_hub.server.unhandled), list(local_hub.server.errors)
    local_hub.server.unhandled.clear()
    local_hub.server.errors.clear()
    assert not unhandled and not errors, (unhandled, errors)


def _upload(local_hub, folder: Path, name: str, **kwargs) -> tuple[str, str]:
    from huggingface_hub import HfApi

    api = HfApi()
    repo_id = api.create_repo(local_hub.repo_id(f"{name}-{uuid.uuid4().hex[:8]}")).repo_id
    api.upload_folder(folder_path=folder, repo_id=repo_id, **kwargs)
    return repo_id, api.model_info(repo_id).sha


def test_captioner_by_repo_id_records_commit(local_hub, tiny_blip2: Path):
    repo_id, sha = _upload(local_hub, tiny_blip2, "tiny-blip2")
    from_hub = load_captioner(repo_id, device="cpu")
    assert from_hub.name == repo_id and from_hub.revision == sha
    frames = [Image.new("RGB", (40, 40), (10, 200, 90)), Image.new("RGB", (40, 40), (240, 240, 10))]
    assert from_hub.caption(frames) == load_captioner(str(tiny_blip2), device="cpu").caption(frames)


def test_msclap_download_path_records_commit(local_hub, tiny_msclap: Path, monkeypatch):
    """Without --scorer-weights msclap downloads CLAP_weights_2023.pth itself (hf_hub_download)."""
    from huggingface_hub import hf_hub_download

    repo_id, sha = _upload(
        local_hub, tiny_msclap, "msclap", allow_patterns=[WEIGHTS_FILENAME, CONFIG_FILENAME]
    )
    monkeypatch.setattr(import_clap_wrapper(), "model_repo", repo_id)  # microsoft/msclap → the local Hub
    hf_hub_download(
        repo_id, CONFIG_FILENAME
    )  # the tiny architecture file lands next to the weights in the cache
    scorer = load_scorer("msclap:2023", text_model=tiny_msclap / "gpt2", device="cpu")
    assert scorer.revision == sha
    assert Path(scorer.wrapper.model_fp).name == WEIGHTS_FILENAME and sha in scorer.wrapper.model_fp
    local = load_scorer("msclap:2023", weights=tiny_msclap, device="cpu")
    clip = np.sin(np.arange(3 * scorer.sampling_rate) / 20.0).astype(np.float32)
    np.testing.assert_array_equal(scorer.embed_audio([clip]), local.embed_audio([clip]))
