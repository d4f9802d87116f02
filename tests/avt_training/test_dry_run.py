"""Issue 19 §2, `avt pretrain --dry-run` and `avt finetune --dry-run`: rows, steps per epoch, epochs, optimizer steps,
schedule, effective batch, the checkpoint `--resume` would continue and the output folder's state, computed with
nothing written and no weights loaded (model folders whose weights are garbage go unnoticed); exit 2 with the real
run's own line where a run would be refused."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from avt.cli import main
from avt_core.cost_model import CLIPS_PER_GPU_HOUR
from avt_training import checkpoints
from avt_training import output_dir as output_rules


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (hidden ones too) with its bytes' digest and modification time."""
    return {
        p.relative_to(root).as_posix(): (
            p.stat().st_mtime_ns,
            None if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
    }


def garbage_weights(model: Path, target: Path) -> Path:
    """A copy of a model folder whose weights cannot load: a dry run reads its config.json only."""
    shutil.copytree(model, target)
    for weights in target.glob("*.safetensors"):
        weights.write_bytes(b"\0" * 64)
    return target


@pytest.fixture
def no_weights_load(monkeypatch):
    from modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining

    def refused(*args, **kwargs):
        raise AssertionError("a dry run loaded a model")

    for cls in (LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining):
        monkeypatch.setattr(cls, "from_pretrained", classmethod(refused))


def dry_run(capsys, argv: list[str]) -> tuple[str, dict]:
    assert main([*argv, "--dry-run"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    return out, json.loads(out.strip().splitlines()[-1])["dry_run"]


def refusal(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def pretrain_argv(dataset: Path, model: Path, output: Path, *extra: str) -> list[str]:
    return ["pretrain", "--dataset", str(dataset), "--model-name-or-path", str(model), "--output-dir", str(output),
            "--report-to", "none", "--num-workers", "0", *extra]  # fmt: skip


def test_pretrain_dry_run_prints_the_runs_figures_and_writes_nothing(
    synthetic_train, synthetic_heldout, fast_tiny_model, tmp_path, capsys, no_weights_load
):
    model = garbage_weights(fast_tiny_model, tmp_path / "model")
    output = tmp_path / "out"
    argv = pretrain_argv(synthetic_train, model, output, "--eval-dataset", str(synthetic_heldout))
    argv += ["--per-device-batch-size", "12", "--gradient-accumulation-steps", "2", "--num-epochs", "3"]
    argv += ["--lr-scheduler", "cosine", "--warmup-steps", "2"]
    before = tree(tmp_path)
    text, plan = dry_run(capsys, argv)
    assert tree(tmp_path) == before and not output.exists()
    clips = pq.ParquetDataset(str(synthetic_train / "data")).read(columns=["clip_id"]).num_rows
    per_epoch = math.ceil((clips // 12) / 2)  # loaders drop an incomplete batch; accumulation of 2
    assert plan["train_clips"] == clips and plan["datasets"] == [
        {"dataset": str(synthetic_train), "rows": clips}
    ]
    assert plan["eval_clips"] == pq.ParquetDataset(str(synthetic_heldout / "data")).read(["clip_id"]).num_rows
    assert (plan["steps_per_epoch"], plan["num_epochs"], plan["total_steps"]) == (per_epoch, 3, 3 * per_epoch)
    assert plan["effective_batch"] == 24 and plan["output_state"] == "new" and plan["resume_from"] is None
    assert plan["gpu_hours"] == pytest.approx(3 * per_epoch * 24 / CLIPS_PER_GPU_HOUR["pretrain"])
    assert f"cosine: lr 0.0005, 2 warmup step(s), then decay over the {3 * per_epoch} optimizer steps" in text
    assert "24 per optimizer step (12 per device x 1 process(es) x 2 accumulation step(s))" in text
    # --max-steps cuts the run: the epochs follow from it
    _, plan = dry_run(capsys, [*argv, "--max-steps", str(per_epoch + 1)])
    assert (plan["total_steps"], plan["num_epochs"]) == (per_epoch + 1, 2)


def test_pretrain_dry_run_names_the_checkpoint_resume_would_continue(
    synthetic_train, fast_tiny_model, tmp_path, capsys, no_weights_load
):
    output = tmp_path / "out"
    output_rules.claim(output, "pretrain", overwrite=False)
    for step in (2, 4):  # as save_checkpoint leaves them; the weights are garbage and must go unread
        folder = output / checkpoints.CHECKPOINTS_DIR / checkpoints.checkpoint_name(step)
        folder.mkdir(parents=True)
        state = checkpoints.TrainState(global_step=step, epoch=1, per_device_batch_size=16, num_processes=1)
        (folder / checkpoints.STATE_FILE).write_text(json.dumps({"train_state": state.state_dict()}))
        (folder / checkpoints.MODEL_FILE).write_bytes(b"\0" * 64)
    argv = pretrain_argv(synthetic_train, fast_tiny_model, output, "--per-device-batch-size", "16")
    argv += ["--num-epochs", "2"]
    before = tree(output)
    assert refusal(capsys, [*argv, "--dry-run"]) == refusal(capsys, argv)  # the run's own words
    text, plan = dry_run(capsys, [*argv, "--resume", "latest"])
    assert tree(output) == before
    total = 2 * (128 // 16)
    assert plan["output_state"] == "resumed" and plan["resume_step"] == 4 and plan["total_steps"] == total
    assert plan["resume_from"] == str(output / "checkpoints" / "step-00000004")
    assert plan["gpu_hours"] == pytest.approx((total - 4) * 16 / CLIPS_PER_GPU_HOUR["pretrain"])
    assert f"step-00000004 (step 4 of {total})" in text


def finetune_argv(dataset: Path, model: Path, output: Path, *extra: str) -> list[str]:
    return ["finetune", "--model", str(model), "--dataset", str(dataset), "--output-dir", str(output),
            "--report-to", "none", "--num-workers", "0", *extra]  # fmt: skip


def test_finetune_dry_run_counts_the_clips_the_label_checks_keep(
    tiny_triplets, tiny_classifier, tmp_path, capsys, no_weights_load
):
    model = garbage_weights(tiny_classifier, tmp_path / "model")
    output = tmp_path / "out"
    argv = finetune_argv(tiny_triplets, model, output, "--eval-split", "none", "--per-device-batch-size", "4")
    argv += ["--num-epochs", "2", "--lr-decay-start-epoch", "1"]
    before = tree(tmp_path)
    text, plan = dry_run(capsys, argv)
    assert tree(tmp_path) == before and not output.exists()
    labels = (
        pq.ParquetDataset(str(tiny_triplets / "data")).read(columns=["labels"]).column("labels").to_pylist()
    )
    labelled = sum(1 for row in labels if row)  # a clip without a label is skipped, as the run skips it
    assert len(labels) - labelled == 1
    per_epoch = labelled // 4
    assert plan["train_clips"] == labelled and plan["eval_clips"] is None
    assert (plan["steps_per_epoch"], plan["total_steps"], plan["effective_batch"]) == (
        per_epoch,
        2 * per_epoch,
        4,
    )
    assert plan["gpu_hours"] == pytest.approx(2 * per_epoch * 4 / CLIPS_PER_GPU_HOUR["finetune"])
    assert "a new head of 3 classes (single_label_classification" in plan["model"]
    assert (
        "x0.5 after epoch(s) 1" in text and "1 clip(s) without a label in the class list are skipped" in text
    )


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_a_folder_a_run_would_refuse_is_refused_with_the_runs_line(
    command, synthetic_train, fast_tiny_model, tmp_path, capsys, no_weights_load
):
    output = tmp_path / "mine"
    output.mkdir()
    (output / "notes.md").write_text("# my experiments\n")
    build = pretrain_argv if command == "pretrain" else finetune_argv
    argv = build(synthetic_train, fast_tiny_model, output)
    before = tree(output)
    dry = refusal(capsys, [*argv, "--dry-run"])
    assert tree(output) == before
    assert dry == refusal(capsys, argv) and "is not an avt" in dry


@pytest.mark.parametrize("command", ["generate", "pretrain", "finetune", "pretrain-slava"])
def test_help_explains_dry_run(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([command, "--help"])
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--dry-run" in text and "nothing is" in text.lower() and "JSON" in text


def test_pretrain_slava_dry_run_plans_its_stages_without_loading_a_tower(
    synthetic_train, tiny_clip, tiny_clap, tmp_path, capsys, monkeypatch
):
    from avt_training.slava import parts, train
    from avt_training.slava.config import SlavaPretrainConfig
    from avt_triplets.revisions import content_digest

    def refused(*args, **kwargs):
        raise AssertionError("a dry run loaded the towers")

    monkeypatch.setattr(parts, "build_model", refused)
    monkeypatch.setattr(train, "prepare_features", refused)
    output = tmp_path / "out"
    argv = ["pretrain-slava", "--dataset", str(synthetic_train), "--vision-model", str(tiny_clip),
            "--audio-model", str(tiny_clap), "--output-dir", str(output), "--report-to", "none",
            "--variant", "wav2clip", "--per-device-batch-size", "16", "--num-epochs", "2"]  # fmt: skip
    text, plan = dry_run(capsys, argv)
    assert not output.exists()
    clips = pq.ParquetDataset(str(synthetic_train / "data")).read(columns=["clip_id"]).num_rows
    total = 2 * (clips // 16)
    first = round(total * SlavaPretrainConfig.__dataclass_fields__["wav2clip_stage1_fraction"].default)
    assert (plan["train_clips"], plan["steps_per_epoch"], plan["total_steps"]) == (clips, clips // 16, total)
    assert f"stages of {first} + {total - first} steps" in plan["schedule"] and plan["gpu_hours"] is None
    assert f"audio {tiny_clap} (local, clap, content digest {content_digest(tiny_clap)[:16]})" in text
    output.mkdir()
    (output / "notes.md").write_text("mine\n")
    dry = refusal(capsys, [*argv, "--dry-run"])
    assert dry == refusal(capsys, argv) and "is not an avt pretrain-slava output" in dry


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_the_planned_batches_are_those_the_runs_loader_gives(
    synthetic_train, fast_tiny_model, tmp_path, processes
):
    """The dry run's batches per epoch against the training loader itself, dealt out by accelerate as under
    `accelerate launch --num_processes N` (no model weights: the loader needs configs only)."""
    from accelerate.data_loader import prepare_data_loader

    from avt_training.pretrain import build_train_loader, load_data
    from avt_training.pretrain_config import PretrainConfig
    from avt_training.run_plan import batches_per_epoch
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeProcessor

    config = PretrainConfig(
        datasets=[str(synthetic_train)], output_dir=str(tmp_path), per_device_batch_size=12, num_workers=0
    )
    train, _ = load_data(config, None)
    model_config = LGCavMaeConfig.from_pretrained(fast_tiny_model)
    loader, _ = build_train_loader(
        config, train, model_config, LGCavMaeProcessor.from_config(model_config), processes
    )
    dealt = prepare_data_loader(loader, num_processes=processes, process_index=0, put_on_device=False)
    assert batches_per_epoch(len(train), 12, processes) == len(dealt) == (len(train) // 12) // processes


class _TinyRegression(__import__("torch").nn.Module):
    """The smallest model Trainer can train: one weight, a loss from a batch of ``x``."""

    def __init__(self):
        import torch

        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, **_):
        return {"loss": ((x.float() - self.weight) ** 2).mean()}


def test_the_planned_steps_are_those_a_real_trainer_counts(tmp_path):
    """``run_plan.trainer_steps`` restates Trainer's step arithmetic (transformers exposes it only as a Trainer
    method, on a built Trainer): checked against ``Trainer.set_initial_training_values`` on loaders dealt out
    by accelerate, for several (clips, batch, accumulation, processes, epochs or max steps), and against the
    ``state.max_steps`` of a real training run."""
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import DataLoader
    from transformers import Trainer, TrainingArguments

    from avt_training.run_plan import batches_per_epoch, trainer_steps

    def arguments(batch: int, accumulation: int, epochs: float, max_steps: int | None) -> TrainingArguments:
        return TrainingArguments(
            output_dir=str(tmp_path / "run"), per_device_train_batch_size=batch, use_cpu=True,
            gradient_accumulation_steps=accumulation, num_train_epochs=epochs, max_steps=max_steps or -1,
            dataloader_drop_last=True, report_to="none", save_strategy="no", logging_strategy="no",
        )  # fmt: skip

    rows = [{"x": float(i)} for i in range(10)]
    trainer = Trainer(model=_TinyRegression(), args=arguments(2, 3, 1.5, None), train_dataset=rows)
    trainer.train()
    assert trainer.state.max_steps == trainer_steps(batches_per_epoch(10, 2, 1), 3, 1.5, None)[1] == 3
    combinations = [  # clips, batch, accumulation, processes, epochs, max steps
        (10, 2, 3, 1, 1.5, None), (100, 4, 1, 1, 3, None), (100, 4, 4, 2, 2.5, None), (101, 8, 3, 3, 1, None),
        (64, 8, 16, 1, 2, None), (100, 4, 3, 2, 1, 7), (1000, 6, 5, 4, 1, 50),
        (96, 12, 2, 3, 0.3, None),
    ]  # fmt: skip
    for clips, batch, accumulation, processes, epochs, max_steps in combinations:
        args = arguments(batch, accumulation, epochs, max_steps)
        loader = DataLoader(range(clips), batch_size=batch, drop_last=True)
        dealt = prepare_data_loader(loader, num_processes=processes, process_index=0, put_on_device=False)
        trainer_epochs, per_epoch, *_, trainer_max_steps = trainer.set_initial_training_values(args, dealt)
        ours = trainer_steps(batches_per_epoch(clips, batch, processes), accumulation, epochs, max_steps)
        case = (clips, batch, accumulation, processes, epochs, max_steps)
        assert ours[:2] == (per_epoch, trainer_max_steps), case
        assert (math.ceil(ours[2]) if max_steps is None else ours[2]) == trainer_epochs, case
