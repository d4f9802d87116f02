"""`--output-dir` of pretrain, finetune and pretrain-slava follows `avt generate`'s rule (issue 18, item 9): new or
empty, or this command's own output continued with `--resume` or started over with `--overwrite`; a folder avt did
not write is refused in one line, before any model loads, and left as it was."""

from __future__ import annotations

import json

import pytest

from avt.cli import main
from avt_core.errors import UsageError
from avt_training import output_dir as output_rules


def _one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def _users_folder(root):
    """What a user keeps in a folder: notes and a `data/` folder of another project."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.csv").write_text("path,label\na.mp4,dog\n")
    (root / "README.md").write_text("# my experiments\n")
    return root


def _argv(command: str, dataset, model, output) -> list[str]:
    if command == "finetune":
        return ["finetune", "--model", str(model), "--dataset", str(dataset), "--eval-split", "none",
                "--output-dir", str(output), "--report-to", "none", "--num-workers", "0"]  # fmt: skip
    model_flag = "--model-name-or-path" if command == "pretrain" else "--vision-model"
    return [command, "--dataset", str(dataset), model_flag, str(model), "--output-dir", str(output),
            "--report-to", "none"]  # fmt: skip


@pytest.fixture
def no_model_loads(monkeypatch):
    from avt_training.slava import train as slava_train
    from modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining

    def refused(*args, **kwargs):
        raise AssertionError("a model was loaded before the output folder was checked")

    for cls in (LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining):
        monkeypatch.setattr(cls, "from_pretrained", classmethod(refused))
    monkeypatch.setattr(slava_train, "prepare_features", refused)


@pytest.mark.parametrize("command", ["pretrain", "finetune", "pretrain-slava"])
def test_a_folder_avt_did_not_write_is_refused(
    command, tmp_path, capsys, no_model_loads, synthetic_train, fast_tiny_model
):
    output = _users_folder(tmp_path / "mine")
    before = sorted(p.relative_to(output) for p in output.rglob("*"))
    assert main(_argv(command, synthetic_train, fast_tiny_model, output)) == 2
    _one_error_line(
        capsys, f"--output-dir {output} is not empty", "README.md, data", f"not an avt {command} output"
    )
    assert sorted(p.relative_to(output) for p in output.rglob("*")) == before


@pytest.mark.parametrize("command", ["pretrain", "finetune", "pretrain-slava"])
def test_a_generation_output_is_refused(
    command, tmp_path, capsys, no_model_loads, synthetic_train, fast_tiny_model, small_output
):
    assert main(_argv(command, synthetic_train, fast_tiny_model, small_output.root)) == 2
    _one_error_line(capsys, "is an avt generate output", f"not an avt {command} one")


# Outputs of avt versions before the marker file, as they are on users' disks.
OLDER_OUTPUTS = {
    "pretrain": ("checkpoints/step-00000010/training_state.json", "metrics.jsonl"),
    "finetune": ("checkpoint-12/trainer_state.json", "runs/events.out"),
    "pretrain-slava": ("feature_cache/index.json", "train_summary.json"),
}


@pytest.mark.parametrize("command", sorted(OLDER_OUTPUTS))
def test_an_earlier_run_needs_resume_or_overwrite(command, tmp_path):
    output = tmp_path / "run"
    for name in OLDER_OUTPUTS[command]:
        (output / name).parent.mkdir(parents=True, exist_ok=True)
        (output / name).write_text("{}")
    resume_flag = None if command == "pretrain-slava" else "--resume latest"
    expected = "pass --resume latest to continue it or --overwrite" if resume_flag else "pass --overwrite"
    with pytest.raises(UsageError, match=f"holds an earlier avt {command} run: {expected}"):
        output_rules.check(output, command, resume=False, overwrite=False, resume_flag=resume_flag)
    assert (
        output_rules.check(output, command, resume=False, overwrite=True, resume_flag=resume_flag) == output
    )
    if resume_flag:
        output_rules.check(output, command, resume=True, overwrite=False, resume_flag=resume_flag)
    other = next(c for c in OLDER_OUTPUTS if c != command)
    with pytest.raises(UsageError, match=f"is an avt {command} output, not an avt {other} one"):
        output_rules.check(output, other, resume=True, overwrite=False, resume_flag="--resume latest")


def test_empty_or_missing_folders_are_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new" / "nested"):
        assert output_rules.check(folder, "pretrain", False, False, "--resume latest") == folder
    with pytest.raises(UsageError, match="pass only one of --resume latest and --overwrite"):
        output_rules.check(tmp_path / "empty", "pretrain", True, True, "--resume latest")


def test_pretrain_rerun_refused_then_overwritten(
    tmp_path, capsys, synthetic_train, fast_tiny_model, single_thread
):
    """A rerun without --resume used to start over silently beside the old checkpoints."""
    output = tmp_path / "pt"
    argv = _argv("pretrain", synthetic_train, fast_tiny_model, output)
    argv += [
        "--num-workers",
        "0",
        "--per-device-batch-size",
        "16",
        "--max-steps",
        "2",
        "--save-steps",
        "1",
    ]
    assert main(argv) == 0
    assert json.loads((output / output_rules.MARKER_FILE).read_text())["command"] == "pretrain"
    assert [p.name for p in sorted((output / "checkpoints").iterdir())] == ["step-00000001", "step-00000002"]
    capsys.readouterr()
    shorter = [*argv[:-4], "--max-steps", "1", "--save-steps", "1"]
    assert main(shorter) == 2
    _one_error_line(
        capsys, f"--output-dir {output} holds an earlier avt pretrain run", "--resume latest", "--overwrite"
    )
    assert main([*shorter, "--overwrite"]) == 0
    assert [p.name for p in (output / "checkpoints").iterdir()] == ["step-00000001"]
    assert json.loads((output / "train_summary.json").read_text())["steps"] == 1


def test_a_run_refused_before_writing_anything_leaves_a_folder_that_counts_as_empty(tmp_path):
    output = tmp_path / "run"
    output_rules.claim(output, "pretrain-slava", overwrite=False)
    (output / "feature_cache").mkdir()  # made, then the datasets were refused
    assert output_rules.check(output, "pretrain-slava", False, False, None) == output
    (output / "feature_cache" / "part-0.parquet").write_bytes(b"PAR1")
    with pytest.raises(UsageError, match="holds an earlier avt pretrain-slava run: pass --overwrite"):
        output_rules.check(output, "pretrain-slava", False, False, None)
    output_rules.claim(output, "pretrain-slava", overwrite=True, keep=("feature_cache",))
    assert sorted(p.name for p in output.iterdir()) == [output_rules.MARKER_FILE, "feature_cache"]
