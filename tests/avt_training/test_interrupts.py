"""Ctrl-C and SIGTERM (issue 18, item 8), with real processes and real signals: a training run saves a checkpoint at
the end of the step in flight, prints one line with the resume command and exits 130 / 143; any command
interrupted during its first seconds (imports) prints one line and no traceback."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avt.cli import main

REPO = Path(__file__).resolve().parents[2]
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _start(argv: list[str], log: Path) -> subprocess.Popen:
    """`avt ARGV` in its own process group, as a shell runs a foreground job (Ctrl-C reaches the whole group)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "avt.cli", *argv],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for(condition, process: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"avt ended before the signal ({process.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def _stopped(process: subprocess.Popen, how: signal.Signals, log: Path) -> str:
    """Send ``how`` to the process group (Ctrl-C) or to the process alone (SIGTERM, as `kill`/a scheduler); its
    one `interrupted` line, after checking the exit code and that no traceback was printed."""
    if how == signal.SIGINT:
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=240)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"avt did not stop on {how.name}:\n{log.read_text()[-3000:]}")
    text = log.read_text()
    assert code == EXIT[how], text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1, text[-3000:]
    assert lines[0].startswith(f"interrupted by {how.name}: ")
    return lines[0]


def _metrics_steps(output: Path) -> list[int]:
    path = output / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]


def test_pretrain_stopped_saves_a_checkpoint_and_resumes(
    tmp_path, capsys, synthetic_train, fast_tiny_model, single_thread
):
    output = tmp_path / "pt"
    argv = [
        "pretrain", "--dataset", str(synthetic_train), "--model-name-or-path", str(fast_tiny_model),
        "--output-dir", str(output), "--per-device-batch-size", "8", "--max-steps", "5000",
        "--save-steps", "1000", "--logging-steps", "1", "--num-workers", "0", "--report-to", "none",
    ]  # fmt: skip
    log = tmp_path / "pretrain.log"
    process = _start(argv, log)
    _wait_for(lambda: len(_metrics_steps(output)) >= 2, process, log)
    line = _stopped(process, signal.SIGTERM, log)  # Ctrl-C (SIGINT) takes the same path: the finetune test

    (checkpoint,) = (output / "checkpoints").iterdir()  # saved at the step in flight, not at step 1000
    step = int(checkpoint.name.removeprefix("step-"))
    assert 2 <= step < 1000
    assert f"avt pretrain stopped at step {step} of 5000, checkpoint saved in {checkpoint}" in line
    resume = shlex.split(line.split("resume with: ", 1)[1])
    assert resume == ["avt", *argv, "--resume", "latest"]
    assert not (output / "model.safetensors").exists()  # no final model from a stopped run

    capsys.readouterr()
    assert main([*resume[1:], "--max-steps", str(step + 2)]) == 0
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["steps"] == step + 2 and summary["resumed_from"] == str(checkpoint)


def test_finetune_stopped_saves_a_trainer_checkpoint(tmp_path, synthetic_train, fast_tiny_model):
    output = tmp_path / "ft"
    argv = [
        "finetune", "--model", str(fast_tiny_model), "--dataset", str(synthetic_train), "--eval-split", "none",
        "--output-dir", str(output), "--per-device-batch-size", "8", "--max-steps", "5000", "--save-strategy", "no",
        "--logging-steps", "1", "--num-workers", "0", "--report-to", "none", "--resume", "latest",
    ]  # fmt: skip
    log = tmp_path / "finetune.log"
    process = _start(argv, log)
    _wait_for(lambda: log.read_text().count("'loss'") >= 2, process, log)
    line = _stopped(process, signal.SIGINT, log)

    (checkpoint,) = output.glob("checkpoint-*")  # --save-strategy no: only the one the signal asked for
    assert (checkpoint / "trainer_state.json").is_file()
    step = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    assert checkpoint.name == f"checkpoint-{step}" and step >= 2
    assert f"avt finetune stopped at step {step} of 5000, checkpoint saved in {checkpoint}" in line
    assert shlex.split(line.split("resume with: ", 1)[1]) == ["avt", *argv[:-2], "--resume", "latest"]
    assert not (output / "eval_results.json").exists()


def test_pretrain_slava_stopped_keeps_the_feature_cache(tmp_path, train_options):
    output = tmp_path / "slava"
    argv = ["pretrain-slava", "--output-dir", str(output), "--max-steps", "100000", "--logging-steps", "1"]
    argv += ["--projection-dim", "16", "--num-workers", "0"]
    argv += ["--vision-model", train_options["vision_model"], "--audio-model", train_options["audio_model"]]
    argv += ["--feature-cache-dir", train_options["feature_cache_dir"], "--report-to", "none"]
    argv += [arg for dataset in train_options["datasets"] for arg in ("--dataset", dataset)]
    argv += ["--per-device-batch-size", str(train_options["per_device_batch_size"])]
    log = tmp_path / "slava.log"
    process = _start(argv, log)
    _wait_for(lambda: len(_metrics_steps(output)) >= 2, process, log)
    line = _stopped(process, signal.SIGTERM, log)
    assert "avt pretrain-slava stopped at step" in line and train_options["feature_cache_dir"] in line
    assert shlex.split(line.split("resume with: ", 1)[1]) == ["avt", *argv, "--overwrite"]
    assert any(Path(train_options["feature_cache_dir"]).rglob("*.parquet"))


@pytest.mark.parametrize(
    "argv",
    [
        ["pretrain", "--dataset", "d", "--output-dir", "o"],
        ["evaluate", "retrieval", "--model", "m", "--dataset", "d"],
        ["generate", "videos", "--output-dir", "out", "--captioner", "none"],
    ],
)
def test_ctrl_c_during_imports_is_one_line(argv, tmp_path):
    """The signal lands while the command's modules import (torch, transformers: seconds on any machine)."""
    log = tmp_path / "early.log"
    process = _start(argv, log)
    time.sleep(0.5)
    assert process.poll() is None, f"the command finished before the signal: {log.read_text()}"
    _stopped(process, signal.SIGINT, log)
