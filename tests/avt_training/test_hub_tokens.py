"""`--hub-token` reaches the Hub and never a file: every file `avt finetune` / `avt pretrain` write (checkpoints
included) is searched for it, with HF_TOKEN unset so the pushes can only succeed with the token given."""

from __future__ import annotations

from pathlib import Path

import pytest

from avt.cli import main


def _files_holding(root: Path, secret: str) -> list[str]:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    return [str(p.relative_to(root)) for p in files if secret.encode() in p.read_bytes()]


def _finetune(model, dataset, output):
    return [
        "finetune", "--model", str(model), "--dataset", str(dataset), "--eval-split", "none", "--output-dir",
        str(output), "--save-strategy", "epoch", "--freq-mask", "0",
    ]  # fmt: skip


def _pretrain(model, dataset, output):
    return [
        "pretrain", "--model-name-or-path", str(model), "--dataset", str(dataset), "--output-dir", str(output),
        "--save-steps", "1",
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "build, pickled, uploaded",
    [
        # Trainer pickles its TrainingArguments into every training_args.bin: the token must not be among them.
        (_finetune, "checkpoint-2/training_args.bin", "checkpoints/checkpoint-2/optimizer.pt"),
        (
            _pretrain,
            "checkpoints/step-00000001/optimizer.bin",
            "checkpoints/step-00000001/training_state.json",
        ),
    ],
)
def test_hub_token_is_in_no_file(
    build, pickled, uploaded, tmp_path, monkeypatch, local_hub, fast_tiny_model, synthetic_train
):
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_TOKEN")
    repo_id = local_hub.repo_id(f"token-test-{build.__name__[1:]}")
    output = tmp_path / "out"
    argv = build(fast_tiny_model, synthetic_train, output)
    argv += [
        "--per-device-batch-size",
        "16",
        "--max-steps",
        "2",
        "--num-workers",
        "0",
        "--report-to",
        "tensorboard",
    ]
    argv += ["--push-to-hub", repo_id, "--hub-strategy", "every_save", "--hub-token", local_hub.token]
    assert main(argv) == 0
    assert (output / pickled).exists()
    assert not _files_holding(output, local_hub.token)
    files = set(HfApi(token=local_hub.token).list_repo_files(repo_id))
    assert "model.safetensors" in files and uploaded in files
    assert not any(f.startswith(("checkpoint-", "runs/")) for f in files)
    assert (output / "avt_config.yaml").is_file() and "avt_config.yaml" not in files  # it names local paths
