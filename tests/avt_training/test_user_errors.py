"""Mistakes a user makes with `avt pretrain` / `avt finetune` end in one `error:` line and exit code 2, before any
model loads; `--resume latest` without a checkpoint says that it starts fresh."""

from __future__ import annotations

import logging

import pytest

from avt.cli import build_parser, main
from avt_core.errors import UsageError


def _one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err
    return err


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory, synthetic_train):
    """The training triplets with every `labels` list emptied (what a folder input without labels gives)."""
    import datasets

    from avt_triplets.layout import data_path

    rows = datasets.load_dataset(str(synthetic_train), split="train")
    rows = rows.map(lambda row: {"labels": []})
    root = tmp_path_factory.mktemp("unlabelled")
    data_path(root, 0).parent.mkdir(parents=True)
    rows.to_parquet(str(data_path(root, 0)))
    return root


def _pretrain(dataset, model, output, *extra: str) -> list[str]:
    return [
        "pretrain", "--dataset", str(dataset), "--model-name-or-path", str(model), "--output-dir", str(output),
        "--num-workers", "0", "--report-to", "none", *extra,
    ]  # fmt: skip


def _finetune(dataset, model, output, *extra: str) -> list[str]:
    return [
        "finetune", "--model", str(model), "--dataset", str(dataset), "--output-dir", str(output),
        "--eval-split", "none", "--num-workers", "0", "--report-to", "none", *extra,
    ]  # fmt: skip


def test_finetune_without_labels(tmp_path, capsys, unlabelled, fast_tiny_model):
    assert main(_finetune(unlabelled, fast_tiny_model, tmp_path / "ft")) == 2
    _one_error_line(capsys, "no labels")


def test_pretrain_batch_larger_than_the_dataset(tmp_path, capsys, synthetic_train, fast_tiny_model):
    code = main(
        _pretrain(synthetic_train, fast_tiny_model, tmp_path / "pt", "--per-device-batch-size", "200")
    )
    assert code == 2
    _one_error_line(capsys, "128 clips", "--per-device-batch-size 200")


@pytest.mark.parametrize("build", [_pretrain, _finetune])
def test_missing_resume_folder(build, tmp_path, capsys, synthetic_train, fast_tiny_model):
    missing = tmp_path / "no-such-checkpoint"
    assert main(build(synthetic_train, fast_tiny_model, tmp_path / "out", "--resume", str(missing))) == 2
    _one_error_line(capsys, f"--resume {missing}")


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
@pytest.mark.parametrize("option", ["--max-steps", "--per-device-batch-size"])
def test_zero_steps_or_batch_is_rejected(command, option, tmp_path):
    from avt_training.finetune import FinetuneConfig
    from avt_training.pretrain import PretrainConfig

    argv = [command, "--dataset", "d", "--output-dir", str(tmp_path), option, "0"]
    argv += ["--model", "m"] if command == "finetune" else []
    args = build_parser(only=command).parse_args(argv)
    config_class = PretrainConfig if command == "pretrain" else FinetuneConfig
    with pytest.raises(UsageError, match=f"{option} must be positive, got 0"):
        config_class.from_any(args)


def test_zero_batch_is_one_error_line(tmp_path, capsys, synthetic_train, fast_tiny_model):
    code = main(_pretrain(synthetic_train, fast_tiny_model, tmp_path / "pt", "--per-device-batch-size", "0"))
    assert code == 2
    _one_error_line(capsys, "--per-device-batch-size must be positive")


@pytest.mark.parametrize("build", [_pretrain, _finetune])
def test_resume_latest_without_checkpoint_says_it_starts_fresh(
    build, tmp_path, caplog, synthetic_train, fast_tiny_model, single_thread
):
    output = tmp_path / "out"
    argv = build(synthetic_train, fast_tiny_model, output, "--resume", "latest", "--max-steps", "1")
    argv += ["--per-device-batch-size", "16"]
    argv += ["--save-steps", "0"] if argv[0] == "pretrain" else ["--save-strategy", "no", "--freq-mask", "0"]
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0
    assert any("no checkpoint" in r.message and "starting fresh" in r.message for r in caplog.records)
    assert (output / "model.safetensors").exists()
