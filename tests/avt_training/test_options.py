"""The training command lines are generated from the options dataclasses: same names, same defaults, one name per
setting (the paper's λ1 / λ2 are named in the help, `contrastive_weight` / `text_contrastive_weight` everywhere)."""

from __future__ import annotations

import dataclasses

import pytest

from avt.cli import build_parser
from avt_training.finetune_config import FinetuneConfig
from avt_training.pretrain_config import PretrainConfig

REQUIRED = {
    "pretrain": (
        PretrainConfig,
        {"datasets": ["d"], "output_dir": "o"},
        ["--dataset", "d", "--output-dir", "o"],
    ),
    "finetune": (
        FinetuneConfig,
        {"model_name_or_path": "m", "datasets": ["d"], "output_dir": "o"},
        ["--model", "m", "--dataset", "d", "--output-dir", "o"],
    ),
}


def _subparser(command):
    parser = build_parser(only=command)
    return next(a for a in parser._actions if a.dest == "command").choices[command]


@pytest.mark.parametrize("command", REQUIRED)
def test_cli_defaults_are_the_dataclass_defaults(command):
    config_class, required, argv = REQUIRED[command]
    parsed = config_class.from_any(build_parser(only=command).parse_args([command, *argv]))
    assert parsed == config_class(**required)


@pytest.mark.parametrize("command", REQUIRED)
def test_every_field_is_an_option_under_its_own_name(command):
    config_class = REQUIRED[command][0]
    dests = {a.dest for a in _subparser(command)._actions}
    assert {f.name for f in dataclasses.fields(config_class)} <= dests


def test_loss_weights_have_one_name_in_code_config_and_cli():
    fields = {f.name for f in dataclasses.fields(PretrainConfig)}
    assert {"contrastive_weight", "text_contrastive_weight"} <= fields and not {"lambda1", "lambda2"} & fields
    args = build_parser(only="pretrain").parse_args(
        [
            "pretrain",
            *REQUIRED["pretrain"][2],
            "--contrastive-weight",
            "0.5",
            "--text-contrastive-weight",
            "0.25",
        ]
    )
    config = PretrainConfig.from_any(args)
    assert (config.contrastive_weight, config.text_contrastive_weight) == (0.5, 0.25)
    help_text = _subparser("pretrain").format_help()
    assert "λ1 of the paper" in help_text and "λ2 of the paper" in help_text


def test_repeatable_options_replace_the_default_and_lists_are_not_shared():
    args = build_parser(only="pretrain").parse_args(
        ["pretrain", *REQUIRED["pretrain"][2], "--dataset", "e", "--eval-dataset", "x", "--report-to", "none"]
    )
    config = PretrainConfig.from_any(args)
    assert config.datasets == ["d", "e"] and config.eval_datasets == ["x"] and config.report_to == ["none"]
    first, second = (
        PretrainConfig(datasets=["a"], output_dir="o"),
        PretrainConfig(datasets=["b"], output_dir="o"),
    )
    first.report_to.append("wandb")
    assert second.report_to == ["none"]


def test_an_option_of_several_training_commands_is_declared_once():
    """The options pretrain, finetune and pretrain-slava share come from one field factory (avt_training.options):
    the same default, type and help text on each (some add a sentence of their own at the end), so the copies
    cannot drift apart again."""
    from avt_training.slava.config import SlavaPretrainConfig

    pretrain, finetune, slava = PretrainConfig, FinetuneConfig, SlavaPretrainConfig
    shared = {
        "max_steps": (pretrain, finetune, slava), "logging_steps": (pretrain, finetune, slava),
        "train_split": (pretrain, finetune, slava), "eval_split": (pretrain, slava),
        "adam_beta1": (pretrain, finetune), "adam_beta2": (pretrain, finetune),
        "lr_decay_gamma": (pretrain, finetune), "save_total_limit": (pretrain, finetune),
        "overwrite": (pretrain, finetune, slava), "report_to": (pretrain, finetune, slava),
        "shuffle_window": (pretrain, finetune),
    }  # fmt: skip
    for name, commands in shared.items():
        fields = [{f.name: f for f in dataclasses.fields(c)}[name] for c in commands]
        helps = [f.metadata["help"] for f in fields]
        shortest = min(helps, key=len)
        assert all(h.startswith(shortest[:60]) for h in helps), (name, helps)
        assert (
            len(
                {
                    (repr(f.default), f.default_factory is dataclasses.MISSING, f.metadata["type"])
                    for f in fields
                }
            )
            == 1
        )
