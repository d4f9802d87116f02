"""`--hub-token` reaches the Hub and never a file: every file `avt finetune` / `avt pretrain` write (checkpoints
included) is searched for it, with HF_TOKEN unset so the pushes can only succeed with the token given."""

from __future__ import annotations

from pathlib import Path

import pytest

from avt_triplets.cli import main


def _files_holding(root: Path, secret: str) -> list[str]:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    return [str(p.relative_to(root)) for p in files if secret.encode() in p.read_bytes()]


@pytest.mark.slow
def test_finetune_hub_token_is_in_no_file(tmp_path, monkeypatch, local_hub, fast_tiny_model, synthetic_train):
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_TOKEN")
    repo_id = local_hub.repo_id("finetune-token-test")
    output = tmp_path / "ft"
    code = main(
        [
            "finetune", "--model", str(fast_tiny_model), "--dataset", str(synthetic_train), "--eval-split", "none",
            "--output-dir", str(output), "--per-device-batch-size", "16", "--max-steps", "2",
            "--save-strategy", "epoch", "--num-workers", "0", "--report-to", "tensorboard", "--freq-mask", "0",
            "--push-to-hub", repo_id, "--hub-strategy", "every_save", "--hub-token", local_hub.token,
        ]
    )  # fmt: skip
    assert code == 0
    assert (output / "checkpoint-2" / "training_args.bin").exists()
    assert not _files_holding(output, local_hub.token)
    files = set(HfApi(token=local_hub.token).list_repo_files(repo_id))
    assert "model.safetensors" in files and "checkpoints/checkpoint-2/optimizer.pt" in files
    assert not any(f.startswith(("checkpoint-", "runs/")) for f in files)


@pytest.mark.slow
def test_pretrain_hub_token_is_in_no_file(tmp_path, monkeypatch, local_hub, fast_tiny_model, synthetic_train):
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_TOKEN")
    repo_id = local_hub.repo_id("pretrain-token-test")
    output = tmp_path / "pt"
    code = main(
        [
            "pretrain", "--dataset", str(synthetic_train), "--model-name-or-path", str(fast_tiny_model),
            "--output-dir", str(output), "--per-device-batch-size", "16", "--max-steps", "2",
            "--checkpoint-steps", "1", "--num-workers", "0", "--report-to", "tensorboard",
            "--push-to-hub", repo_id, "--hub-strategy", "every_save", "--hub-token", local_hub.token,
        ]
    )  # fmt: skip
    assert code == 0
    assert not _files_holding(output, local_hub.token)
    files = set(HfApi(token=local_hub.token).list_repo_files(repo_id))
    assert "model.safetensors" in files and "checkpoints/step-00000001/training_state.json" in files
