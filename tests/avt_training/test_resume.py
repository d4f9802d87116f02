"""Exact resume: a run killed right after a mid-epoch checkpoint and resumed with `--resume latest` reaches
bit-identical weights to an uninterrupted run (data order, augmentation, masks, optimizer, schedule, RNG)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from avt_training import checkpoints


class Killed(RuntimeError):
    pass


def _config(dataset, model, output_dir, **overrides):
    from avt_training.pretrain import PretrainConfig

    values = dict(
        datasets=[str(dataset)],
        output_dir=str(output_dir),
        model_name_or_path=str(model),
        per_device_batch_size=8,  # 128 clips: 16 steps per epoch
        max_steps=20,  # crosses an epoch boundary after the kill point
        learning_rate=1e-3,
        lr_decay_start_epoch=1,  # the official per-epoch schedule changes the lr at the boundary
        lr_decay_step_epochs=1,
        save_steps=6,  # mid-epoch
        logging_steps=2,
        num_workers=0,
        report_to=[],
    )
    values.update(overrides)
    return PretrainConfig(**values)


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted(
    tmp_path, monkeypatch, fast_tiny_model, synthetic_train, single_thread
):
    from avt_training.pretrain import pretrain

    reference = pretrain(_config(synthetic_train, fast_tiny_model, tmp_path / "reference"))

    real_save = checkpoints.save_checkpoint

    def save_then_die(accelerator, output_dir, step, total_limit=None):
        path = real_save(accelerator, output_dir, step, total_limit)
        if step == 6:
            raise Killed(f"killed after saving {path}")
        return path

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_then_die)
    interrupted_dir = tmp_path / "interrupted"
    with pytest.raises(Killed):
        pretrain(_config(synthetic_train, fast_tiny_model, interrupted_dir))
    assert not (interrupted_dir / "model.safetensors").exists()
    # the checkpoint carries the model config: its loss settings are what --resume keeps unless options are given
    from avt_training.loss_options import loss_settings_of, saved_loss_settings
    from modeling_lgcavmae import LGCavMaeConfig

    saved = saved_loss_settings(checkpoints.list_checkpoints(interrupted_dir)[-1])
    assert saved and saved == loss_settings_of(LGCavMaeConfig.from_pretrained(fast_tiny_model))
    monkeypatch.setattr(checkpoints, "save_checkpoint", real_save)

    # Resumed with DataLoader workers: per-sample seeding makes augmentation independent of the worker layout.
    resumed = pretrain(
        _config(synthetic_train, fast_tiny_model, interrupted_dir, resume="latest", num_workers=2)
    )

    expected, actual = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert expected.keys() == actual.keys()
    different = [name for name in expected if not torch.equal(expected[name], actual[name])]
    assert not different, f"weights differ after resume: {different[:5]}"
    start = load_file(fast_tiny_model / "model.safetensors")
    assert not torch.equal(
        start["cav_mae.audio_layers.0.mlp.fc1.weight"], actual["cav_mae.audio_layers.0.mlp.fc1.weight"]
    )

    summary = json.loads((resumed / "train_summary.json").read_text())
    assert summary["steps"] == 20 and summary["steps_this_run"] == 14
    assert summary["resumed_from"].endswith("step-00000006")
    reference_log = [json.loads(x) for x in (reference / "metrics.jsonl").read_text().splitlines()]
    resumed_log = [json.loads(x) for x in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed_log] == [r["step"] for r in reference_log]
    assert [r["lr"] for r in resumed_log] == [r["lr"] for r in reference_log]
    # Per-step losses after the resume point are the same numbers (same batches, masks, weights).
    for before, after in zip(reference_log[3:], resumed_log[3:]):
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-6, abs=1e-7)
