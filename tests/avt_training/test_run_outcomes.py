"""Training runs never report a success that is not one (issue 18, items 5-7): too little data for one batch, a
checkpoint of the wrong kind or architecture, and a resume with another batch size that stopped short."""

from __future__ import annotations

import json

import pytest

from avt.cli import main


def _one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


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


def _refuse_model_loading(monkeypatch) -> None:
    """The refusals come before any weights load: loading one is a test failure."""
    from modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining

    def refused(*args, **kwargs):
        raise AssertionError("a model was loaded before the user's mistake was reported")

    for cls in (LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining):
        monkeypatch.setattr(cls, "from_pretrained", classmethod(refused))


# -- item 5: too little data for one batch ------------------------------------------------------------------------


def test_finetune_with_fewer_clips_than_one_batch_is_one_error_line(
    tmp_path, capsys, monkeypatch, synthetic_train, fast_tiny_model
):
    """`--max-steps 1` with a batch larger than the data trained 0 steps and printed "fine-tuning done"."""
    _refuse_model_loading(monkeypatch)
    argv = _finetune(synthetic_train, fast_tiny_model, tmp_path / "ft", "--per-device-batch-size", "200")
    assert main([*argv, "--max-steps", "1"]) == 2
    _one_error_line(capsys, "128 clips", "fewer than one batch of 200", "--per-device-batch-size 200")
    assert not (tmp_path / "ft" / "model.safetensors").exists()


def test_finetune_without_an_optimiser_step_is_not_done():
    from avt_core.errors import RunAborted
    from avt_training.finetune import FinetuneConfig, require_trained

    config = FinetuneConfig(
        model_name_or_path="m", datasets=["d"], output_dir="o", gradient_accumulation_steps=4
    )
    with pytest.raises(RunAborted, match="no optimiser step.*--gradient-accumulation-steps 4"):
        require_trained(0, config)
    require_trained(1, config)


# -- item 6: a checkpoint of the wrong model type or architecture -------------------------------------------------


def test_finetune_refuses_a_blip2_folder_as_model(tmp_path, capsys, monkeypatch, synthetic_train, tiny_blip2):
    _refuse_model_loading(monkeypatch)
    assert main(_finetune(synthetic_train, tiny_blip2, tmp_path / "ft", "--max-steps", "1")) == 2
    _one_error_line(capsys, f"--model {tiny_blip2}", "blip-2", "not a lg_cav_mae")
    assert not (tmp_path / "ft" / "model.safetensors").exists()


@pytest.mark.parametrize("option", ["--model-name-or-path", "--config-name-or-path"])
def test_pretrain_refuses_a_blip2_folder(option, tmp_path, capsys, monkeypatch, synthetic_train, tiny_blip2):
    _refuse_model_loading(monkeypatch)
    argv = ["pretrain", "--dataset", str(synthetic_train), option, str(tiny_blip2)]
    argv += ["--output-dir", str(tmp_path / "pt"), "--report-to", "none", "--max-steps", "1"]
    assert main(argv) == 2
    _one_error_line(capsys, f"{option} {tiny_blip2}", "blip-2", "not a lg_cav_mae")
    assert not (tmp_path / "pt" / "model.safetensors").exists()


def test_pretrain_slava_refuses_an_lgcavmae_checkpoint(tmp_path, capsys, synthetic_train, fast_tiny_model):
    argv = ["pretrain-slava", "--dataset", str(synthetic_train), "--model-name-or-path", str(fast_tiny_model)]
    assert main([*argv, "--output-dir", str(tmp_path / "slava"), "--report-to", "none"]) == 2
    _one_error_line(capsys, f"--model-name-or-path {fast_tiny_model}", "lg_cav_mae", "not a slava")


def test_pretrain_resume_of_another_architecture_is_one_line(
    tmp_path, capsys, synthetic_train, fast_tiny_model, tiny_lgcavmae, single_thread
):
    output = tmp_path / "pt"
    common = ("--per-device-batch-size", "16", "--save-steps", "1")
    assert main(_pretrain(synthetic_train, fast_tiny_model, output, *common, "--max-steps", "1")) == 0
    capsys.readouterr()
    other = _pretrain(
        synthetic_train, tiny_lgcavmae, output, *common, "--max-steps", "2", "--resume", "latest"
    )
    assert main(other) == 2
    _one_error_line(capsys, "--resume checkpoint", "step-00000001", "another architecture", "another shape")


# -- item 7: resume with another per-device batch size ------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_batch", "first_steps", "batch", "epoch_at_10"),
    [
        # 128 clips. 32 -> 8: step 5 is 1 step into epoch 1 (32 clips), 4 steps of batch 8; the new layout's plan
        # (one epoch of 16 steps for 10) ended the resumed run at once: `5 steps (0 this run)`.
        (32, 5, 8, 1 + (4 + 5) / 16),
        # 8 -> 32: 4 steps of batch 8 are one step of batch 32; the epoch goes on from its second batch
        (8, 4, 32, 1 + 3 / 4),
    ],
)
def test_resume_with_another_batch_size_reaches_max_steps(
    first_batch,
    first_steps,
    batch,
    epoch_at_10,
    tmp_path,
    capsys,
    synthetic_train,
    fast_tiny_model,
    single_thread,
):
    output = tmp_path / "pt"
    first = _pretrain(synthetic_train, fast_tiny_model, output, "--per-device-batch-size", str(first_batch))
    assert main([*first, "--max-steps", str(first_steps), "--save-steps", str(first_steps)]) == 0
    second = _pretrain(synthetic_train, fast_tiny_model, output, "--per-device-batch-size", str(batch))
    assert main([*second, "--max-steps", "10", "--save-steps", "100", "--resume", "latest"]) == 0
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["steps"] == 10 and summary["steps_this_run"] == 10 - first_steps
    assert f"10 steps ({10 - first_steps} this run)" in capsys.readouterr().out
    metrics = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 10 and metrics[-1]["epoch"] == pytest.approx(epoch_at_10)


def test_finetune_resume_of_another_architecture_is_one_line(
    tmp_path, capsys, synthetic_train, fast_tiny_model, tiny_lgcavmae, single_thread
):
    output = tmp_path / "ft"
    common = ("--per-device-batch-size", "16", "--max-steps", "1", "--save-strategy", "steps")
    assert main(_finetune(synthetic_train, fast_tiny_model, output, *common)) == 0
    (checkpoint,) = output.glob("checkpoint-*")
    capsys.readouterr()
    assert main(_finetune(synthetic_train, tiny_lgcavmae, output, *common, "--resume", "latest")) == 2
    _one_error_line(capsys, "--resume checkpoint", str(checkpoint), "another architecture", "another shape")
