"""Planning without running: the paper's command lines for N GPUs, the user's inputs, batch splits, early errors."""

from __future__ import annotations

import csv
import importlib

import pytest

from avt_core.errors import UsageError
from avt_recipes import RECIPES
from avt_recipes.cli import run_recipes
from avt_recipes.experiments import Plan, options
from avt_recipes.inputs import Models, Sources, vggsound_inputs
from avt_recipes.settings import CLIPS_PER_GPU_HOUR, NOMINAL_CLIPS, PAPER, split_batch


def _csv(path, rows, header=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def user_data(tmp_path):
    """VGGSound's own headerless CSV (both splits), a Kinetics folder, an AudioSet eval list."""
    vggsound = _csv(
        tmp_path / "vggsound" / "vggsound.csv",
        [["a1", "10", "dog barking", "train"], ["a2", "0", "cat", "test"], ["a3", "30", "cat", "train"]],
    )
    kinetics = tmp_path / "kinetics"
    for name in ("x.mp4", "y.mp4", "z.mp4", "notes.txt"):
        (kinetics / "train").mkdir(parents=True, exist_ok=True)
        (kinetics / "train" / name).write_bytes(b"")
    audioset = _csv(
        tmp_path / "audioset" / "eval.csv", [["e1.mp4", "0", "Speech"]], ["video_path", "start_s", "labels"]
    )
    return [
        "--vggsound",
        str(vggsound),
        "--kinetics",
        str(kinetics / "train"),
        "--audioset-eval",
        str(audioset),
    ]


def test_dry_run_on_eight_gpus_prints_the_papers_commands(tmp_path, user_data, capsys):
    module = importlib.import_module(RECIPES["table5"])
    assert (
        run_recipes([module], [*user_data, "--gpus", "8", "--dry-run", "--work-dir", str(tmp_path / "w")])
        == 0
    )
    out = capsys.readouterr().out
    commands = [line for line in out.splitlines() if line.startswith("  ")]
    pretrain = [line for line in commands if " pretrain " in line]
    assert len(pretrain) == 2 and all(
        line.startswith("  accelerate launch --num_processes 8 -m avt") for line in pretrain
    )
    for expected in (
        "--contrastive-weight 0.01",
        "--learning-rate 0.0005",
        "--num-epochs 25",
        "--init-from-vitmae facebook/vit-mae-base",
        "--mixed-precision bf16",
        "--per-device-batch-size 15",  # the paper's global batch 120 over 8 GPUs
        "--resume latest",
    ):
        assert all(expected in line for line in pretrain), expected
    assert sorted(line.split("--text-contrastive-weight ")[1].split()[0] for line in pretrain) == [
        "0",
        "0.01",
    ]
    assert "kinetics.blip2:top30" in pretrain[0]
    evaluate = [line for line in commands if "evaluate retrieval" in line]
    assert evaluate and all(line.startswith("  avt evaluate retrieval") for line in evaluate)
    assert all("--protocol cavmae --per-class 5" in line for line in evaluate)
    generate = [line for line in commands if " generate " in line]
    # the split column honoured: each split is its own output, read by `avt generate --split`
    assert any("--split train --output-dir" in line and "vggsound-train.blip2" in line for line in generate)
    assert any("--split test --output-dir" in line and "vggsound-test.labelled" in line for line in generate)
    assert "note:" not in out
    assert not (tmp_path / "w" / ".recipe-steps").exists()


def test_dry_run_without_data_estimates_gpu_hours_from_the_public_dataset_sizes(tmp_path, capsys):
    module = importlib.import_module(RECIPES["table5"])
    assert run_recipes([module], ["--dry-run", "--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "avt generate '<kinetics>' --output-dir" in out.replace(
        "  accelerate", "  avt"
    )  # placeholders for the data
    clips = NOMINAL_CLIPS["vggsound-train"] + 0.3 * NOMINAL_CLIPS["kinetics"]
    pretrain_hours = PAPER.pretrain_epochs * clips / CLIPS_PER_GPU_HOUR["pretrain"]
    assert f"pretrain vs+k-top30.blip2.l2-0.01  (~{pretrain_hours:.2f} GPU-h)" in out
    total = float(out.split("GPU-hours (H100-class estimate, docs/reproduce.md): ")[1].split()[0])
    assert total > 2 * pretrain_hours


def test_batch_is_split_over_gpus_and_accumulation(tmp_path, user_data, capsys):
    assert split_batch(120, 8) == (15, 1)
    assert split_batch(120, 1, max_per_gpu=48) == (40, 3)
    assert split_batch(36, 8) == (5, 1)  # 40 clips: said in a note
    module = importlib.import_module(RECIPES["table5"])
    argv = [*user_data, "--gpus", "16", "--max-batch-per-gpu", "4", "--dry-run", "--work-dir", str(tmp_path)]
    assert run_recipes([module], argv) == 0
    out = capsys.readouterr().out
    assert "--per-device-batch-size 4 --gradient-accumulation-steps 2" in out
    assert "note: pretraining: global batch 128 (16 GPU(s)) instead of the paper's 120" in out


def test_vggsound_csv_splits_are_picked_by_avt_generate_split(tmp_path):
    headerless = _csv(
        tmp_path / "v.csv", [["a", "1", "x", "train"], ["b", "2", "y", "test"], ["c", "3", "y", "train"]]
    )
    inputs = vggsound_inputs(headerless, None, None)
    train, test = inputs["vggsound-train"], inputs["vggsound-test"]
    assert (train.path, train.split, test.path, test.split) == (headerless, "train", headerless, "test")
    assert train.generate_args() == [str(headerless), "--input-root", str(tmp_path), "--split", "train"]
    assert (train.count(), test.count()) == (2, 1)  # read the way `avt generate` reads them

    with_header = _csv(
        tmp_path / "h.csv",
        [["a.mp4", "x", "test"], ["b.mp4", "y", "train"]],
        ["video_path", "labels", "split"],
    )
    assert vggsound_inputs(with_header, None, None)["vggsound-test"].count() == 1
    # a list of both splits given as the training list alone still gives its train rows only
    assert vggsound_inputs(with_header, tmp_path / "other.csv", None)["vggsound-train"].split == "train"

    plain = _csv(tmp_path / "p.csv", [["a.mp4", "x"]], ["video_path", "labels"])
    only = vggsound_inputs(plain, None, None)
    assert set(only) == {"vggsound-train"} and only["vggsound-train"].split is None


def test_missing_data_stops_before_anything_runs(tmp_path, capsys):
    module = importlib.import_module(RECIPES["table6"])
    assert run_recipes([module], ["--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "error: this recipe needs audioset-20k, audioset-eval, kinetics, vggsound-test, vggsound-train"
    )
    assert "--audioset-train" in err and not (tmp_path / ".recipe-steps").exists()


def test_tiny_refuses_user_data(tmp_path, capsys):
    module = importlib.import_module(RECIPES["table1"])
    assert run_recipes([module], ["--tiny", "--kinetics", str(tmp_path), "--work-dir", str(tmp_path)]) == 2
    assert "--tiny makes its own synthetic data: drop --kinetics" in capsys.readouterr().err


def test_every_table_shares_the_steps_it_has_in_common(tmp_path):
    plan = Plan(tmp_path, 4, PAPER, Sources(), Models())
    for name in RECIPES.values():
        importlib.import_module(name).build(plan)
    pretrained = {step.output for step in plan.steps if step.argv[0] == "pretrain"}
    # Table 1: 4 weights; Table 2: +LLaVA; Table 3: VS, K x4, VS+K x3 new (top30 shared); Table 4: +random30.
    assert len(pretrained) == 4 + 1 + 8 + 1
    generated = {step.output for step in plan.steps if step.argv[0] == "generate"}
    assert generated == {
        "data/vggsound-train.blip2",
        "data/kinetics.blip2",
        "data/vggsound-train.llava",
        "data/kinetics.llava",
        "data/vggsound-test.labelled",
        "data/audioset-20k.labelled",
        "data/audioset-eval.labelled",
    }
    phases = [step.argv[0] for step in plan.ordered_steps()]
    assert phases == sorted(phases, key=("generate", "filter", "pretrain", "finetune", "evaluate").index)


def test_options_become_command_line_pairs():
    assert options(
        learning_rate=5e-4, num_epochs=25.0, balanced_sampling=True, max_steps=None, mixup=False
    ) == [
        "--learning-rate",
        "0.0005",
        "--num-epochs",
        "25",
        "--balanced-sampling",
    ]


def test_sources_name_every_missing_dataset():
    with pytest.raises(UsageError, match="needs audioset-eval, kinetics: pass --audioset-eval, --kinetics"):
        Sources().require({"kinetics", "audioset-eval"})
