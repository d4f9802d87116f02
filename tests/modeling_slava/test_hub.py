"""`avt pretrain-slava --push-to-hub`: what LG-CAV-MAE's `avt pretrain` pushes, with SLAVA's own saves (best/), the
feature cache left out, the token in no file, and the pushed repo loading by remote code with identical embeddings."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avt.cli import main
from avt_core.errors import UsageError


def _files_holding(root: Path, secret: str) -> list[str]:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    return [str(p.relative_to(root)) for p in files if secret.encode() in p.read_bytes()]


def _inputs(processor) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(0)
    frames = [
        [Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for _ in range(n)] for n in (3, 1)
    ]
    waves = [rng.standard_normal(int(16_000 * s)).astype(np.float32) * 0.1 for s in (2.0, 12.0)]
    return processor(audio=waves, images=frames, text=["a circle of colour 3", "a dog barking in the yard"])


def _embeddings(model, inputs) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {
            "audio": model.get_audio_features(inputs["audio_values"], inputs["windows_mask"]),
            "visual": model.get_visual_features(inputs["pixel_values"], inputs["frames_mask"]),
            "text": model.get_text_features(inputs["input_ids"], inputs["attention_mask"]),
        }


@pytest.mark.slow
def test_push_to_hub_every_save_without_cache_or_token_loads_by_remote_code(
    tmp_path, monkeypatch, local_hub, train_options, single_thread, capsys, caplog, remote_code_embeddings
):
    from huggingface_hub import HfApi, ModelCard
    from transformers import AutoModel

    from modeling_slava import SlavaModel

    monkeypatch.delenv("HF_TOKEN")  # the pushes can only succeed with --hub-token
    repo_id = local_hub.repo_id(f"slava-{uuid.uuid4().hex[:8]}")
    output = tmp_path / "run"
    caplog.set_level(logging.INFO)
    code = main(
        ["pretrain-slava", "--dataset", train_options["datasets"][0], "--eval-dataset",
         train_options["eval_datasets"][0], "--vision-model", train_options["vision_model"], "--audio-model",
         train_options["audio_model"], "--projection-dim", "16", "--per-device-batch-size", "16",
         "--learning-rate", "1e-2", "--num-epochs", "3", "--num-workers", "0", "--no-progress",
         "--report-to", "tensorboard", "--output-dir", str(output),
         "--push-to-hub", repo_id, "--hub-strategy", "every_save", "--hub-token", local_hub.token]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr()
    assert list((output / "feature_cache").rglob("part-*.parquet")), "the default cache lies inside the run"
    assert list((output / "runs").rglob("events.out.tfevents.*"))
    assert not _files_holding(output, local_hub.token)
    assert local_hub.token not in printed.out + printed.err + caplog.text
    assert "loads only where they exist" in caplog.text  # the towers are local folders here

    api = HfApi(token=local_hub.token)
    files = set(api.list_repo_files(repo_id))
    assert {
        "config.json",
        "model.safetensors",
        "README.md",
        "modeling_slava.py",
        "train_summary.json",
        "metrics.jsonl",
    } <= files
    assert {"best/config.json", "best/model.safetensors", "best/eval_results.json"} <= files
    assert not [f for f in files if f.startswith(("feature_cache/", "runs/", "checkpoints/"))]
    titles = [c.title for c in api.list_repo_commits(repo_id)]
    assert any(t.startswith("SLAVA best model: step") for t in titles), titles  # every_save pushed best/
    assert titles[0] == "SLAVA pretraining: final model"
    card = ModelCard.load(repo_id)  # our card, with the run's facts, not transformers' template
    assert "# SLAVA (a&v)" in card.content and "best validation loss" in card.content
    assert "automatically generated" not in card.content and local_hub.token not in card.content
    assert card.content == ModelCard.load(output / "README.md").content

    local = SlavaModel.from_pretrained(output)
    inputs = _inputs(local.get_processor())
    expected = _embeddings(local, inputs)
    pushed = remote_code_embeddings(repo_id, inputs)
    assert set(pushed) == set(expected)
    for name in expected:
        assert torch.equal(pushed[name], expected[name]), name
    assert torch.equal(_embeddings(AutoModel.from_pretrained(repo_id), inputs)["text"], expected["text"])
    best = SlavaModel.from_pretrained(repo_id, subfolder="best", load_towers=False)
    local_best = SlavaModel.from_pretrained(output / "best", load_towers=False)
    assert torch.equal(best.audio_projection.weight, local_best.audio_projection.weight)


def test_hub_options_that_cannot_work_are_refused(train_options, tmp_path):
    from avt_training.slava.config import SlavaPretrainConfig

    base = {**train_options, "output_dir": str(tmp_path / "run"), "push_to_hub": "me/slava"}
    with pytest.raises(UsageError, match="every_save uploads best/ after each better validation"):
        SlavaPretrainConfig.from_any({**base, "eval_datasets": [], "hub_strategy": "every_save"})
    with pytest.raises(UsageError, match="must not be --output-dir itself"):
        SlavaPretrainConfig.from_any({**base, "feature_cache_dir": str(tmp_path / "run")})
    SlavaPretrainConfig.from_any({**base, "hub_strategy": "every_save"})  # with --eval-dataset it works
