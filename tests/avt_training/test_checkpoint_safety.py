"""`avt pretrain --resume` never runs code from a checkpoint folder: the loop's state is JSON, accelerate's pickles are
read with `torch.load(weights_only=True)`, and a planted pickle payload is refused without being executed."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from avt_core.errors import UsageError


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appears only if the pickle was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _config(dataset, model, output_dir, **overrides):
    from avt_training.pretrain import PretrainConfig

    values = dict(
        datasets=[str(dataset)],
        output_dir=str(output_dir),
        model_name_or_path=str(model),
        per_device_batch_size=16,
        max_steps=2,
        save_steps=2,
        num_workers=0,
        report_to=[],
    )
    values.update(overrides)
    return PretrainConfig(**values)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, fast_tiny_model, synthetic_train):
    from avt_training.pretrain import pretrain

    output = pretrain(_config(synthetic_train, fast_tiny_model, tmp_path_factory.mktemp("run")))
    return output / "checkpoints" / "step-00000002"


def test_checkpoint_keeps_the_loop_state_as_json_and_no_custom_pickle(checkpoint):
    assert not list(checkpoint.glob("custom_checkpoint_*"))
    state = json.loads((checkpoint / "training_state.json").read_text())
    assert state["train_state"]["global_step"] == 2 and state["train_state"]["per_device_batch_size"] == 16
    # the block-shuffled order of data read in place: its lanes come back on resume (avt_data/block_sampler.py)
    assert state["sampler"] == {
        "num_rows": 128,
        "seed": 0,
        "batch_size": 16,
        "window": 512,
        "lanes": 1,
        "epoch": 0,
    }
    assert state["scheduler"]["last_epoch"] == 0 and "__counter__" in state["scheduler"]["milestones"]


def test_the_payload_is_live(tmp_path):
    """The test payload really runs when something unpickles it without weights_only."""
    marker = tmp_path / "executed"
    torch.save({"state": Payload(marker)}, tmp_path / "payload.pkl")
    torch.load(tmp_path / "payload.pkl", weights_only=False)
    assert marker.exists()


def _plant(checkpoint, tmp_path, name, *, legacy=False):
    folder = tmp_path / "downloaded" / checkpoint.name
    shutil.copytree(checkpoint, folder)
    marker = tmp_path / "executed"
    if legacy:  # the layout of avt 0.1.0: scheduler and progress pickled by accelerate
        state = json.loads((folder / "training_state.json").read_text())
        (folder / "training_state.json").unlink()
        torch.save(state["train_state"], folder / "custom_checkpoint_1.pkl")
    torch.save({"state": Payload(marker)}, folder / name)
    return folder, marker


@pytest.mark.parametrize(
    "name, legacy",
    [
        ("custom_checkpoint_0.pkl", False),  # what accelerate would unpickle with weights_only=False
        ("optimizer.bin", False),
        ("random_states_0.pkl", False),  # accelerate alone would swallow this failure and resume differently
        ("custom_checkpoint_0.pkl", True),  # avt 0.1.0's layout is refused as well
    ],
)
def test_planted_pickle_is_refused_without_running(
    checkpoint, tmp_path, fast_tiny_model, synthetic_train, name, legacy, single_thread
):
    from avt_training.pretrain import pretrain

    folder, marker = _plant(checkpoint, tmp_path, name, legacy=legacy)
    config = _config(synthetic_train, fast_tiny_model, tmp_path / "out", max_steps=3, resume=str(folder))
    with pytest.raises(UsageError, match="refuse"):
        pretrain(config)
    assert not marker.exists(), "the checkpoint's pickle was executed"


def test_cli_reports_a_planted_pickle_in_one_line(
    checkpoint, tmp_path, fast_tiny_model, synthetic_train, capsys
):
    from avt.cli import main

    folder, marker = _plant(checkpoint, tmp_path, "custom_checkpoint_0.pkl")
    code = main(
        [
            "pretrain", "--dataset", str(synthetic_train), "--model-name-or-path", str(fast_tiny_model),
            "--output-dir", str(tmp_path / "out"), "--per-device-batch-size", "16", "--max-steps", "3",
            "--num-workers", "0", "--report-to", "none", "--resume", str(folder),
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert err.startswith("error: ") and err.count("\n") == 1 and "custom_checkpoint_0.pkl" in err
