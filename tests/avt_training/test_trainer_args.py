"""`avt finetune` speaks TrainingArguments: --eval-steps / --save-steps / --logging-steps / --gradient-checkpointing /
--torch-compile / --run-name reach the Trainer, any other field passes through `--trainer-arg NAME=VALUE` checked
against the dataclass (one `error:` line before anything loads), and train_summary.json records the precision the
run actually used."""

from __future__ import annotations

import json

import datasets
import pytest

from avt.cli import main
from avt_core.errors import UsageError
from avt_training.finetune import FinetuneConfig, finetune, training_arguments
from avt_training.trainer_args import parse_trainer_args


def _config(tmp_path, **overrides) -> FinetuneConfig:
    values = dict(model_name_or_path="m", datasets=["d"], output_dir=str(tmp_path / "ft"), report_to=["none"])
    return FinetuneConfig(**{**values, **overrides})


def test_trainer_args_are_typed_as_hf_argument_parser_types_them():
    values = parse_trainer_args(
        [
            "eval_on_start=true",
            "dataloader-persistent-workers=False",
            "logging_first_step=1",
            "data_seed=3",
            "torch_compile_mode=max-autotune",
            'lr_scheduler_kwargs={"num_cycles": 2}',
        ]
    )
    assert values == {
        "eval_on_start": True,
        "dataloader_persistent_workers": False,
        "logging_first_step": True,
        "data_seed": 3,
        "torch_compile_mode": "max-autotune",
        "lr_scheduler_kwargs": '{"num_cycles": 2}',
    }


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("eval_on_strat=true", "no such field (did you mean eval_on_start?)"),
        ("data_seed", "expected NAME=VALUE"),
        ("data_seed=lots", "not a valid value"),
        ("eval_on_start=maybe", "not a valid value"),
        ("learning_rate=1e-3", "set it with --learning-rate"),
        ("bf16=true", "set it with --mixed-precision bf16"),
        ("optim=sgd", "official Adam"),
        ("hub_token=hf_secret", "--hub-token"),
        ("remove_unused_columns=true", "decoded clips"),
    ],
)
def test_bad_trainer_args_are_one_usage_error(pair, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse_trainer_args([pair])


def test_training_arguments_carry_the_new_options_and_the_passthrough(tmp_path):
    config = _config(
        tmp_path,
        eval_strategy="steps",
        eval_steps=7,
        save_strategy="steps",
        save_steps=9,
        logging_steps=3,
        gradient_checkpointing=True,
        run_name="vggsound-ft",
        report_to=["tensorboard"],
        trainer_args=["eval_on_start=true", "data_seed=5"],
    )
    args = training_arguments(config, evaluate=True)
    assert (args.eval_steps, args.save_steps, args.logging_steps) == (7, 9, 3)
    assert args.activation_checkpointing and args.run_name == "vggsound-ft" and not args.torch_compile
    assert args.eval_on_start and args.data_seed == 5 and args.report_to == ["tensorboard"]


def test_report_to_defaults_to_none_as_in_transformers_5(tmp_path):
    from avt_training.pretrain_config import PretrainConfig

    assert training_arguments(_config(tmp_path, report_to=FinetuneConfig.__dataclass_fields__["report_to"]
                                      .default_factory()), evaluate=False).report_to == []  # fmt: skip
    assert PretrainConfig(datasets=["d"], output_dir="o").report_to == ["none"]


def test_report_to_help_names_every_accelerate_tracker(capsys):
    from accelerate.utils import LoggerType

    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for tracker in LoggerType:
        assert tracker.value in help_text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--trainer-arg", "no_such_field=1"],
            "error: --trainer-arg no_such_field: TrainingArguments has no such",
        ),
        (["--eval-steps", "5"], "error: --eval-steps needs --eval-strategy steps"),
        (
            ["--trainer-arg", "load_best_model_at_end=true", "--save-strategy", "no"],
            "error: training arguments: ",
        ),
    ],
)
def test_cli_mistakes_are_one_error_line_before_anything_loads(tmp_path, capsys, argv, message):
    model = tmp_path / "model"  # a folder the option checks accept, never loaded: the check comes first
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "lg_cav_mae"}')
    code = main(
        ["finetune", "--model", str(model), "--dataset", str(tmp_path / "no-such-data"),
         "--output-dir", str(tmp_path / "ft"), *argv]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(message), err


@pytest.mark.slow
def test_finetune_uses_step_options_and_records_precision(
    tmp_path, fast_tiny_model, synthetic_train, synthetic_heldout, single_thread
):
    output = finetune(
        FinetuneConfig(
            model_name_or_path=str(fast_tiny_model),
            datasets=[str(synthetic_train)],
            eval_datasets=[str(synthetic_heldout)],
            eval_split="train",
            output_dir=str(tmp_path / "ft"),
            per_device_batch_size=16,
            per_device_eval_batch_size=16,
            max_steps=4,
            num_workers=0,
            logging_steps=1,
            eval_strategy="steps",
            eval_steps=2,
            save_strategy="steps",
            save_steps=3,
            gradient_checkpointing=True,
            mixed_precision="bf16",
            run_name="tiny-ft",
            report_to=["none"],
            multi_frame_eval=False,
            trainer_args=["logging_first_step=true", "save_only_model=true", "use_cpu=true"],
        )
    )
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4"]
    assert not (output / "checkpoint-3" / "optimizer.pt").exists()  # save_only_model reached the Trainer
    state = json.loads((output / "checkpoint-4" / "trainer_state.json").read_text())
    assert [r["step"] for r in state["log_history"] if "eval_loss" in r] == [2, 4]
    assert [r["step"] for r in state["log_history"] if "loss" in r] == [1, 2, 3, 4]
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["mixed_precision"] == "bf16" and summary["num_processes"] == 1
    assert summary["steps"] == 4 and summary["gradient_checkpointing"] and summary["run_name"] == "tiny-ft"
    assert summary["trainer_args"] == ["logging_first_step=true", "save_only_model=true", "use_cpu=true"]
    # the fine-tuned folder carries its audio-visual pipeline (custom_pipelines + pipeline_lgcavmae.py)
    from transformers import pipeline

    classify = pipeline("audio-visual-classification", model=str(output), trust_remote_code=True)
    row = datasets.load_dataset(str(synthetic_heldout), split="train")[0]
    audio = {"array": row["audio"]["array"], "sampling_rate": row["audio"]["sampling_rate"]}
    (best,) = classify({"audio": audio, "frames": row["frames"]}, top_k=1)
    assert best["label"] in {f"class_{i}" for i in range(8)}
