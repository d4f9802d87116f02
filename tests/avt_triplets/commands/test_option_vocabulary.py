"""Issue 19 §2: one name per idea across every command, the former names as hidden aliases that warn once, and
--log-level / --no-progress everywhere.

Walks the real parsers of every `avt` command (and each `avt evaluate` task), so a new option that brings back an
old spelling, or a command without the common options, fails here.
"""

from __future__ import annotations

import argparse
import os
import re

import pytest
import yaml

from avt import cli
from avt_core.common_options import LOG_LEVELS, common_settings
from avt_core.dataclass_cli import workers_or_auto
from avt_core.launch import default_num_workers

# Spellings no command shows any more (each is a hidden alias of its new name for one release).
RETIRED = {
    "--output", "--repo-id", "--token", "--private", "--precision", "--batch-size", "--checkpoint-steps",
    "--checkpoints-total-limit", "--eval-batch-size", "--dataset-split", "--eval-dataset-split", "--tower-dtype",
    "--steps",
}  # fmt: skip
# Every batch-size flag there is; the ones not per device are other batches (say so in their help).
BATCH_FLAGS = {
    "--per-device-batch-size",  # training batch per device (pretrain, finetune, pretrain-slava, demo)
    "--per-device-eval-batch-size",  # evaluation batch per device (pretrain, finetune, evaluate)
    "--caption-batch-size",  # generate: frames per captioner call
    "--score-batch-size",  # generate: clips or captions per scorer call
    "--audio-caption-batch-size",  # generate: audio windows per audio captioner call
    "--visual-score-batch-size",  # generate: (frame, caption) pairs per visual scorer call
    "--merge-batch-size",  # generate: caption pairs per caption merger call
    "--feature-batch-size",  # pretrain-slava: clips per frozen-tower forward pass
}
SPLIT_FLAGS = {"--train-split", "--eval-split", "--split"}  # --split: generate's rows of an input list


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.values()


def _leaves(parser: argparse.ArgumentParser):
    subs = list(_subparsers(parser))
    if not subs:
        yield parser
    for sub in subs:
        yield from _leaves(sub)


def _command_leaves(command: str) -> list[argparse.ArgumentParser]:
    top = next(p for p in _subparsers(cli.build_parser(only=command)) if p.prog == f"avt {command}")
    return list(_leaves(top))


def _visible_flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {
        flag: action
        for action in parser._actions
        if action.help != argparse.SUPPRESS
        for flag in action.option_strings
    }


@pytest.mark.parametrize("command", list(cli.SUBCOMMANDS))
def test_every_command_speaks_one_vocabulary(command):
    for leaf in _command_leaves(command):
        flags = _visible_flags(leaf)
        assert not RETIRED & set(flags), (leaf.prog, sorted(RETIRED & set(flags)))
        assert flags["--log-level"].choices == LOG_LEVELS, leaf.prog
        progress = flags["--no-progress"]
        assert isinstance(progress, argparse._StoreFalseAction) and progress.dest == "progress", leaf.prog
        assert {f for f in flags if "batch-size" in f} <= BATCH_FLAGS, leaf.prog
        assert {f for f in flags if "split" in f} <= SPLIT_FLAGS, leaf.prog
        assert not {f for f in flags if "precision" in f} - {"--mixed-precision"}, leaf.prog
        if "--mixed-precision" in flags:
            assert set(flags["--mixed-precision"].choices) == {"no", "fp16", "bf16"}, leaf.prog
        hub = {f for f in flags if "hub" in f or f.endswith(("-token", "-private"))}
        assert all(f.startswith(("--hub-", "--push-to-hub")) for f in hub), (leaf.prog, hub)
        if "--num-workers" in flags:  # one default rule: unset (auto) -> default_num_workers()
            workers = flags["--num-workers"]
            assert workers.default is None and workers.type is workers_or_auto, leaf.prog
        if (
            command != "demo"
        ):  # the demo's inner steps have their own folders; every other writer: --output-dir
            assert "--output-dir" in flags or "output_dir" in {a.dest for a in leaf._actions}, leaf.prog


def _parse(argv: list[str]) -> argparse.Namespace:
    chosen = next(a for a in argv if a in cli.SUBCOMMANDS)
    return cli.build_parser(only=chosen).parse_args(argv)


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


DEPRECATED = [
    # (argv with the old spelling, dest, expected value, old, new)
    (["generate", "v/", "--output", "o/"], "output_dir", "o/", "--output", "--output-dir"),
    (["publish", "d/", "--repo-id", "me/set"], "push_to_hub", "me/set", "--repo-id", "--push-to-hub"),
    (["publish", "d/", "--push-to-hub", "me/x", "--token", "hf_x"], "hub_token", "hf_x", "--token", "--hub-token"),
    (["publish", "d/", "--push-to-hub", "me/x", "--private"], "hub_private", True, "--private", "--hub-private"),
    (["publish", "d/", "--push-to-hub", "me/x", "--revision", "dev"], "hub_revision", "dev", "--revision",
     "--hub-revision"),
    (["pretrain", "--dataset", "d/", "--output-dir", "o/", "--checkpoint-steps", "5"], "save_steps", 5,
     "--checkpoint-steps", "--save-steps"),
    (["pretrain", "--dataset", "d/", "--output-dir", "o/", "--checkpoints-total-limit", "2"], "save_total_limit", 2,
     "--checkpoints-total-limit", "--save-total-limit"),
    (["pretrain", "--dataset", "d/", "--output-dir", "o/", "--eval-batch-size", "7"], "per_device_eval_batch_size",
     7, "--eval-batch-size", "--per-device-eval-batch-size"),
    (["pretrain", "--dataset", "d/", "--output-dir", "o/", "--dataset-split", "test"], "train_split", "test",
     "--dataset-split", "--train-split"),
    (["pretrain-slava", "--dataset", "d/", "--output-dir", "o/", "--tower-dtype", "bfloat16"], "dtype", "bfloat16",
     "--tower-dtype", "--dtype"),
    (["pretrain-slava", "--dataset", "d/", "--output-dir", "o/", "--eval-dataset-split", "test"], "eval_split",
     "test", "--eval-dataset-split", "--eval-split"),
    (["evaluate", "retrieval", "--model", "m/", "--dataset", "d/", "--split", "test"], "eval_split", "test",
     "--split", "--eval-split"),
    (["evaluate", "retrieval", "--model", "m/", "--dataset", "d/", "--batch-size", "3"],
     "per_device_eval_batch_size", 3, "--batch-size", "--per-device-eval-batch-size"),
    (["evaluate", "classification", "--model", "m/", "--dataset", "d/", "--precision", "fp32"], "mixed_precision",
     "no", "--precision", "--mixed-precision"),
    (["evaluate", "classification", "--model", "m/", "--dataset", "d/", "--precision=bf16"], "mixed_precision",
     "bf16", "--precision", "--mixed-precision"),
    (["demo", "--batch-size", "4"], "per_device_batch_size", 4, "--batch-size", "--per-device-batch-size"),
    (["demo", "--steps", "12"], "max_steps", 12, "--steps", "--max-steps"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "dest", "value", "old", "new"), DEPRECATED, ids=[c[3] + "-" + c[0][0] for c in DEPRECATED]
)
def test_a_former_spelling_still_works_with_one_warning(argv, dest, value, old, new, capsys):
    args = _parse(argv)
    assert getattr(args, dest) == value
    assert _warnings(capsys.readouterr().err) == [f"warning: {old} is deprecated, use {new}"]


def test_a_former_spelling_is_hidden_from_help(capsys):
    for command in ("generate", "publish", "pretrain", "evaluate retrieval"):
        with pytest.raises(SystemExit):
            cli.main([*command.split(), "--help"])
        out = capsys.readouterr().out
        shown = set(re.findall(r"--[a-z][a-z-]*[a-z]", out))  # options and the help texts naming them
        assert not RETIRED & shown, (command, RETIRED & shown)


def test_former_spellings_warn_once_each_and_take_underscores(capsys):
    args = _parse(["publish", "d/", "--repo_id", "me/a", "--token", "t1", "--token", "t2", "--private"])
    assert (args.push_to_hub, args.hub_token, args.hub_private) == ("me/a", "t2", True)
    assert _warnings(capsys.readouterr().err) == [
        "warning: --repo-id is deprecated, use --push-to-hub",
        "warning: --token is deprecated, use --hub-token",
        "warning: --private is deprecated, use --hub-private",
    ]


def test_the_new_names_take_the_underscore_spellings_of_hugging_face_examples(capsys):
    args = _parse(["generate", "v/", "--output_dir", "o/", "--num_workers", "2", "--log_level", "debug"])
    assert (args.output_dir, args.num_workers, args.log_level) == ("o/", 2, "DEBUG")
    args = _parse(["pretrain", "--dataset", "d/", "--output_dir", "o/", "--per_device_batch_size", "3",
                   "--save_total_limit", "1", "--mixed_precision", "bf16", "--no_progress"])  # fmt: skip
    assert (args.per_device_batch_size, args.save_total_limit, args.mixed_precision) == (3, 1, "bf16")
    assert args.progress is False
    args = _parse(["publish", "d/", "--push_to_hub", "me/set", "--hub_private", "--hub_token", "t"])
    assert (args.push_to_hub, args.hub_private, args.hub_token) == ("me/set", True, "t")
    for command in (
        ["publish", "d/"],
        ["finetune", "--dataset", "d/", "--model", "m/", "--output-dir", "o/"],
    ):
        assert (
            _parse([*command, "--hub_model_id", "me/model"]).push_to_hub == "me/model"
        )  # transformers' name
    assert not _warnings(capsys.readouterr().err)


def test_a_run_config_with_former_keys_works_with_the_same_warning(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"output": "o/", "limit": 3}))
    args = _parse(["generate", "v/", "--config", str(old)])
    assert (args.output_dir, args.limit) == ("o/", 3)
    assert _warnings(capsys.readouterr().err) == ["warning: --output is deprecated, use --output-dir"]

    old.write_text(yaml.safe_dump({"repo_id": "me/set", "private": True, "revision": "dev"}))
    args = _parse(["publish", "d/", "--config", str(old)])
    assert (args.push_to_hub, args.hub_private, args.hub_revision) == ("me/set", True, "dev")
    assert len(_warnings(capsys.readouterr().err)) == 3

    old.write_text(
        yaml.safe_dump({"datasets": ["d/"], "output_dir": "o/", "checkpoint_steps": 9, "dataset_split": "x"})
    )
    args = _parse(["pretrain", "--config", str(old)])
    assert (args.save_steps, args.train_split) == (9, "x")
    assert _warnings(capsys.readouterr().err) == [
        "warning: --checkpoint-steps is deprecated, use --save-steps",
        "warning: --dataset-split is deprecated, use --train-split",
    ]

    old.write_text(
        yaml.safe_dump({"model": ["m/"], "dataset": ["d/"], "precision": "fp16", "no_progress": True})
    )
    args = _parse(["evaluate", "retrieval", "--config", str(old)])
    assert (args.mixed_precision, args.progress) == ("fp16", False)


@pytest.mark.parametrize(
    ("cores", "processes", "expected"), [(16, 1, 8), (16, 2, 7), (4, 1, 3), (2, 2, 0), (1, 1, 0)]
)
def test_num_workers_has_one_default_rule(cores, processes, expected, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(processes))
    assert default_num_workers() == expected


def test_no_progress_turns_every_library_bar_off_for_the_run_only(monkeypatch):
    import datasets
    import huggingface_hub.utils as hub_utils
    import transformers.utils.logging as tf_logging

    def state():
        bars = (not hub_utils.are_progress_bars_disabled(), datasets.is_progress_bar_enabled())
        return (*bars, tf_logging.is_progress_bar_enabled(), os.getenv("TQDM_DISABLE"))

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    before = state()
    with common_settings(argparse.Namespace(log_level="WARNING", progress=False)):
        assert state() == (
            False,
            False,
            False,
            "1",
        )  # huggingface_hub, datasets, transformers, tqdm (avt's own)
    assert state() == before  # a later command in this process decides for itself
    with common_settings(argparse.Namespace(log_level="WARNING", progress=True)):
        assert state() == before
    tf_logging.disable_progress_bar()  # bars that were off before the run stay off after it
    try:
        with common_settings(argparse.Namespace(log_level="WARNING", progress=False)):
            pass
        assert not tf_logging.is_progress_bar_enabled()
    finally:
        if before[2]:
            tf_logging.enable_progress_bar()


@pytest.mark.parametrize("settings", ["PAPER", "TINY"])
def test_the_recipes_plan_command_lines_in_the_new_vocabulary(settings, tmp_path, capsys):
    """Every `avt` command line the paper's recipes plan parses without a deprecation warning."""
    import importlib

    from avt_recipes import RECIPES
    from avt_recipes import settings as recipe_settings
    from avt_recipes.experiments import Plan
    from avt_recipes.inputs import Models, Sources

    plan = Plan(tmp_path, 4, getattr(recipe_settings, settings), Sources(), Models())
    for name in RECIPES.values():
        importlib.import_module(name).build(plan)
    assert {step.argv[0] for step in plan.steps} >= {"generate", "pretrain", "finetune", "evaluate"}
    for step in plan.steps:
        argv = [*step.argv, *step.layout]
        assert not RETIRED & set(argv), argv
        _parse([a if a != "<kinetics>" else "k/" for a in argv])
        assert not _warnings(capsys.readouterr().err), argv
