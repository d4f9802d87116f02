"""The recipe runner: one step per output, skip what is finished, refuse what changed, print or launch commands."""

from __future__ import annotations

import io
import json

import pytest

from avt_core.errors import RunAborted, UsageError
from avt_recipes.runner import Runner, Step, unique_steps


def test_steps_sharing_an_output_run_once_and_a_conflict_is_refused():
    a = Step("pretrain/x", ("pretrain", "--seed", "0"), ("--per-device-batch-size", "4"))
    same = Step("pretrain/x", ("pretrain", "--seed", "0"), ("--per-device-batch-size", "8"))
    other = Step("eval/x", ("evaluate", "retrieval"))
    assert unique_steps([a, other, same]) == [a, other]
    with pytest.raises(UsageError, match="two steps write pretrain/x"):
        unique_steps([a, Step("pretrain/x", ("pretrain", "--seed", "1"))])


def test_dry_run_prints_accelerate_launch_for_distributed_steps_and_runs_nothing(tmp_path):
    out = io.StringIO()
    steps = [
        Step("pretrain/x", ("pretrain", "--dataset", "d"), ("--per-device-batch-size", "15"), True, 4.25),
        Step("eval/x", ("evaluate", "retrieval", "--model", "m"), (), False, 0.01),
    ]
    summary = Runner(tmp_path, gpus=8, dry_run=True, out=out).run(steps)
    text = out.getvalue()
    assert (
        "accelerate launch --num_processes 8 -m avt pretrain --dataset d --per-device-batch-size 15" in text
    )
    assert "\n  avt evaluate retrieval --model m" in text
    assert (
        summary.planned == steps and not summary.ran and summary.gpu_hours("planned") == pytest.approx(4.26)
    )
    assert not (tmp_path / ".recipe-steps").exists()
    single = io.StringIO()
    Runner(tmp_path, gpus=1, dry_run=True, out=single).run(steps[:1])
    assert "\n  avt pretrain --dataset d" in single.getvalue()


def test_a_finished_step_is_skipped_a_changed_one_refused_a_failed_one_not_marked(tmp_path):
    """Real child processes: `avt --version` succeeds (its "output" folder is made here: it writes none), `avt
    filter` of a missing folder fails."""
    out = io.StringIO()
    runner = Runner(tmp_path, out=out)
    ok = Step("data/version", ("--version", "--debug"), ("--debug",))
    (tmp_path / "data" / "version").mkdir(parents=True)
    assert runner.run([ok]).ran == [ok]
    marker = json.loads(runner.marker(ok).read_text())
    assert marker["argv"] == ["--version", "--debug"] and marker["layout"] == ["--debug"]

    relaid = Step("data/version", ("--version", "--debug"))  # another GPU layout, same step: still finished
    assert runner.run([relaid]).skipped == [relaid]
    with pytest.raises(UsageError, match="made by another command"):
        runner.run([Step("data/version", ("--version",))])

    broken = Step("data/broken", ("filter", str(tmp_path / "missing")))
    with pytest.raises(RunAborted, match="step data/broken failed"):
        runner.run([broken])
    assert not runner.marker(broken).exists()


def test_markers_survive_a_moved_work_dir_and_a_deleted_output_is_made_again(tmp_path):
    first = tmp_path / "first"
    runner = Runner(first, out=io.StringIO())
    step = Step("eval/x", ("--version", "--debug", str(first / "eval" / "x")))
    (first / "eval" / "x").mkdir(parents=True)
    runner.run([step])
    assert json.loads(runner.marker(step).read_text())["argv"][-1] == "$WORK/eval/x"

    moved = tmp_path / "moved"
    first.rename(moved)
    again = Runner(moved, out=io.StringIO())
    assert again.run([Step("eval/x", ("--version", "--debug", str(moved / "eval" / "x")))]).skipped

    (moved / "eval" / "x").rmdir()
    rerun = again.run([Step("eval/x", ("--version", "--debug", str(moved / "eval" / "x")))])
    assert len(rerun.ran) == 1


def test_in_process_runs_need_one_device(tmp_path):
    with pytest.raises(UsageError, match="one device"):
        Runner(tmp_path, gpus=2, in_process=True)
    with pytest.raises(UsageError, match="at least 1"):
        Runner(tmp_path, gpus=0)
