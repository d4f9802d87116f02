"""Run configs and the parser (issue 19, section 2): `--config FILE` on every command, the resolved options of each
run written as avt_config.yaml (no secrets) that repeats the run, no prefix matching, `--snake_case` spellings, and
help texts whose defaults read the right way."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from avt import cli

SECRET = "hf_SECRETtoken123"


class _Handoff(Exception):
    """Raised by a stub where a command hands its options to the heavy work: the test stops the run there."""


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.values()


def _leaf_parsers(parser: argparse.ArgumentParser):
    subs = list(_subparsers(parser))
    if not subs:
        yield parser
    for sub in subs:
        yield from _leaf_parsers(sub)


def _command_parser(command: str) -> argparse.ArgumentParser:
    return next(p for p in _subparsers(cli.build_parser(only=command)) if p.prog == f"avt {command}")


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# -- each command, stopped where it hands its resolved options on (after writing avt_config.yaml) ---------------


def _capture(
    monkeypatch,
    target: str,
    captured: list,
    pick=lambda *a, **k: a[0],
    finish: bool = False,
    through: bool = False,
) -> None:
    """``target`` records what it is given, then stops the run (``_Handoff``) or, with ``finish``, ends it well;
    ``through``: the real ``target`` runs first (the run's own write of avt_config.yaml, then the stop)."""
    import importlib

    module, name = target.rsplit(".", 1)
    original = getattr(importlib.import_module(module), name)

    def stub(*args: Any, **kwargs: Any):
        if through:
            original(*args, **kwargs)
        captured.append(pick(*args, **kwargs))
        if not finish:
            raise _Handoff
        return 0

    monkeypatch.setattr(f"{module}.{name}", stub)


def _options(value: Any) -> Any:
    """What a command handed on, comparable across runs (parsed arguments without the typed command line)."""
    if isinstance(value, argparse.Namespace):
        return {k: v for k, v in vars(value).items() if k not in ("_argv", "_run", "config", "task_runner")}
    return value


CASES: dict[str, dict[str, Any]] = {
    "pretrain": {
        "argv": lambda out: [
            "pretrain",
            "--dataset",
            "a/",
            "--dataset",
            "b/:top30",
            "--output-dir",
            str(out),
            "--per-device-batch-size",
            "3",
            "--learning-rate",
            "2e-4",
            "--report-to",
            "none",
            "--hub-token",
            SECRET,
        ],  # fmt: skip
        "target": "avt_training.pretrain.load_data",
    },
    "finetune": {
        "argv": lambda out: [
            "finetune",
            "--model",
            "m/",
            "--dataset",
            "d/",
            "--output-dir",
            str(out),
            "--num-epochs",
            "2",
            "--per-device-batch-size",  # the labelled set's 8 clips fill a batch: the data passes its checks
            "4",
            "--report-to",
            "none",
            "--hub-token",
            SECRET,
        ],  # fmt: skip
        "target": "avt_training.finetune.write_run_config",  # written once the data passed its checks
        "pick": lambda root, command, config: config,
        "through": True,
        "real_data": True,  # the run reads its data before it writes avt_config.yaml
    },
    "pretrain-slava": {
        "argv": lambda out: [
            "pretrain-slava",
            "--dataset",
            "d/",
            "--output-dir",
            str(out),
            "--variant",
            "av",
            "--report-to",
            "none",
            "--hub-token",
            SECRET,
        ],  # fmt: skip
        "target": "avt_training.slava.train.prepare_features",
    },
    "evaluate retrieval": {
        "argv": lambda out: [
            "evaluate",
            "retrieval",
            "--model",
            "m/",
            "--dataset",
            "vgg=d/",
            "--output-dir",
            str(out),
            "--no-text",
            "--per-class",
            "3",
        ],  # fmt: skip
        "target": "eval.commands.evaluate._run_retrieval",
        "finish": True,  # evaluate writes its config next to its reports, after a successful evaluation
    },
    "evaluate classification": {
        "argv": lambda out: [
            "evaluate",
            "classification",
            "--model",
            "m/",
            "--dataset",
            "d/",
            "--output-dir",
            str(out),
            "--mixed-precision",
            "bf16",
            "--no-progress",
        ],  # fmt: skip
        "target": "eval.commands.evaluate._run_classification",
        "finish": True,
    },
    "demo": {
        "argv": lambda out: ["demo", "--output-dir", str(out), "--max-steps", "7", "--overwrite"],
        "target": "avt_triplets.commands.demo._make_inputs",
        "pick": lambda folders, args: args,
    },
}


@pytest.mark.parametrize("command", list(CASES))
def test_a_run_repeats_from_its_written_config(command, tmp_path, monkeypatch, request):
    case = CASES[command]
    if case.get("real_data"):  # a real labelled set and model in place of "d/" and "m/"
        train, _ = request.getfixturevalue("labelled_sets")["vggsound"]
        model = request.getfixturevalue("fast_tiny_model")
        argv = case["argv"]
        case = {
            **case,
            "argv": lambda out: [{"d/": str(train), "m/": str(model)}.get(a, a) for a in argv(out)],
        }
    out = tmp_path / "run"
    monkeypatch.chdir(
        tmp_path
    )  # "m/": a model folder the option checks accept (never loaded: handed off first)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "lg_cav_mae"}')
    captured: list = []
    finish = case.get("finish", False)
    pick = case.get("pick", lambda *a, **k: a[0])
    _capture(monkeypatch, case["target"], captured, pick, finish, case.get("through", False))

    def run(argv: list[str]) -> None:
        if finish:
            assert cli.main(argv) == 0
        else:
            with pytest.raises(_Handoff):
                cli.main(argv)

    run(case["argv"](out))
    written = out / "avt_config.yaml"
    text = written.read_text()
    assert SECRET not in text and "hub_token" not in text and "token:" not in text
    values = yaml.safe_load(text)
    assert values["output_dir"] == str(out)

    run([*command.split(), "--config", str(written)])
    first, second = (_options(value) for value in captured)
    if isinstance(first, dict) or not hasattr(first, "hub_token"):  # no secret among them: all repeated
        assert first == second
    else:  # an options dataclass: equal but for the Hub token, which is never written
        assert getattr(first, "hub_token", None) == SECRET and second.hub_token is None
        second.hub_token = SECRET
        assert first == second
    assert yaml.safe_load(written.read_text()) == values  # the repeated run wrote the same options


def test_generate_repeats_from_its_written_config(label_lists, tmp_path):
    """A real labelled-only run, then one from its avt_config.yaml into another folder: same options, same rows."""
    import pyarrow.parquet as pq

    first, second = tmp_path / "first", tmp_path / "second"
    argv = ["generate", str(label_lists["vggsound"]), "-o", str(first), "--captioner", "none", "--split", "test",
            "--num-workers", "0", "--no-progress", "--shard-size", "3"]  # fmt: skip
    assert cli.main(argv) == 0
    values = yaml.safe_load((first / "avt_config.yaml").read_text())
    assert values["split"] == "test" and values["progress"] is False and values["shard_size"] == 3
    assert (
        cli.main(["generate", "--config", str(first / "avt_config.yaml"), "--output-dir", str(second)]) == 0
    )
    assert yaml.safe_load((second / "avt_config.yaml").read_text()) == {**values, "output_dir": str(second)}

    def clip_ids(root: Path) -> list[str]:
        return sorted(
            i
            for f in sorted((root / "data").glob("*.parquet"))
            for i in pq.read_table(f)["clip_id"].to_pylist()
        )

    assert clip_ids(second) == clip_ids(first) and len(clip_ids(first)) == len(label_lists["clips"]["test"])


@pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")
def test_filter_repeats_from_its_written_config_without_secrets(small_output, capsys):
    root = small_output.root
    argv = ["filter", str(root), "--top", "20", "--random", "20", "--seed", "3", "--storage-options",
            json.dumps({"secret": SECRET})]  # fmt: skip
    assert cli.main(argv) == 0
    written = root / "avt_config.filter.yaml"  # the folder's avt_config.yaml is generate's
    text = written.read_text()
    assert SECRET not in text and "storage_options" not in text
    subsets = (root / "subsets.json").read_text()
    (root / "subsets.json").unlink()
    assert cli.main(["filter", "--config", str(written)]) == 0
    assert (root / "subsets.json").read_text() == subsets
    assert written.read_text() == text


def test_publish_writes_its_config_without_the_token(small_output, monkeypatch):
    captured: list = []

    def pushed(root, repo_id, **options):
        captured.append((repo_id, options))
        return f"https://hub.example/{repo_id}"

    monkeypatch.setattr("avt_triplets.publish.publish", pushed)
    argv = [
        "publish",
        str(small_output.root),
        "--push-to-hub",
        "me/set",
        "--metadata-only",
        "--hub-token",
        SECRET,
    ]
    assert cli.main(argv) == 0
    written = small_output.root / "avt_config.publish.yaml"
    assert SECRET not in written.read_text()
    assert cli.main(["publish", "--config", str(written), "--hub-token", SECRET]) == 0
    assert captured[0] == captured[1] and captured[0][1]["token"] == SECRET


# -- reading a config --------------------------------------------------------------------------------------------


def _pretrain_handoff(monkeypatch) -> list:
    """The options ``avt pretrain`` parsed, taken before anything is set up."""
    captured: list = []
    _capture(monkeypatch, "avt_training.pretrain.setup", captured)
    return captured


def test_config_keys_in_any_spelling_and_flags_override(tmp_path, monkeypatch):
    captured = _pretrain_handoff(monkeypatch)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({
        "output-dir": str(tmp_path / "out"), "dataset": ["a/", "b/"], "per_device_batch_size": "4",
        "learning-rate": "1e-3", "no-audio-noise": True, "mixed_precision": "bf16",
    }))  # fmt: skip
    with pytest.raises(_Handoff):
        cli.main(["pretrain", "--config", str(config), "--dataset", "c/", "--per-device-batch-size", "6"])
    (options,) = captured
    assert options.datasets == ["c/"]  # a repeatable flag replaces the config's list
    assert options.per_device_batch_size == 6 and options.learning_rate == 1e-3
    assert options.audio_noise is False and options.mixed_precision == "bf16"
    assert options.config_name_or_path is None  # --config was never taken as --config-name-or-path


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (
            "output_dir: x\ndataset: [a]\nbogus: 1\nper_device_batchsize: 2\n",
            ("bogus", "per_device_batchsize"),
        ),
        ("output_dir: x\ndataset: [a]\nper_device_batch_size: many\n", ("per_device_batch_size", "many")),
        ("output_dir: x\ndataset: [a]\nmixed_precision: fp8\n", ("mixed_precision", "fp8")),
        ("output_dir: x\ndataset: [a]\naudio_noise: maybe\n", ("audio_noise", "true or false")),
        ("- not\n- a mapping\n", ("mapping",)),
        ("output_dir: [unclosed\n", ("not YAML",)),
    ],
)
def test_a_bad_config_is_one_error_line(content, needles, tmp_path, capsys, monkeypatch):
    captured = _pretrain_handoff(monkeypatch)
    config = tmp_path / "run.yaml"
    config.write_text(content)
    assert cli.main(["pretrain", "--config", str(config)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert all(needle in line for needle in needles), line
    assert not captured


def test_a_missing_config_file_is_one_error_line(tmp_path, capsys):
    assert cli.main(["filter", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in _one_error_line(capsys.readouterr().err)


# -- the parser --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", list(cli.SUBCOMMANDS))
def test_no_parser_matches_prefixes_and_every_command_takes_config(command):
    top = cli.build_parser(only=command)
    parsers = [top, *_subparsers(top)]
    parsers += [p for sub in _subparsers(top) for p in _subparsers(sub)]
    assert all(parser.allow_abbrev is False for parser in parsers)
    leaves = list(_leaf_parsers(_command_parser(command)))
    assert leaves and all("--config" in leaf._option_string_actions for leaf in leaves)


def test_a_prefix_of_an_option_is_refused(tmp_path, monkeypatch):
    _pretrain_handoff(monkeypatch)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["pretrain", "--dataset", "a/", "--output-dir", str(tmp_path), "--per-device", "3"])
    assert stopped.value.code == 2


def test_underscore_spellings_of_every_option(tmp_path, monkeypatch):
    captured = _pretrain_handoff(monkeypatch)
    with pytest.raises(_Handoff):
        cli.main(["pretrain", "--dataset", "a/", "--output_dir", str(tmp_path / "o"), "--per_device_batch_size",
                  "5", "--learning_rate=3e-4", "--no_audio_noise", "--eval_dataset", "e/"])  # fmt: skip
    (options,) = captured
    assert options.output_dir == str(tmp_path / "o") and options.per_device_batch_size == 5
    assert options.learning_rate == 3e-4 and options.audio_noise is False and options.eval_datasets == ["e/"]


@pytest.mark.parametrize("command", list(cli.SUBCOMMANDS))
def test_help_shows_no_misleading_default(command, capsys):
    for leaf in _leaf_parsers(_command_parser(command)):
        formatter = leaf._get_formatter()
        for action in leaf._actions:
            text = formatter._get_help_string(action)
            if action.nargs == 0 or action.required or not action.option_strings:
                assert "%(default)" not in text, (leaf.prog, action.option_strings, text)
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for option in ("--no-progress", "--untrimmed", "--output-dir DIR, -o DIR"):
        help_text = out.split(option + " ", 1)[1].split(" --", 1)[0]
        assert "(default: True)" not in help_text and "(default: None)" not in help_text, help_text
    assert "--shard-size SHARD_SIZE" in out
    assert "(default: " in out.split("--shard-size SHARD_SIZE ", 1)[1].split(" --", 1)[0]


def test_a_failed_evaluation_writes_no_config(tmp_path, capsys):
    out = tmp_path / "reports"
    argv = ["evaluate", "retrieval", "--model", str(tmp_path / "no-model"), "--dataset", str(tmp_path / "no-data"),
            "--output-dir", str(out)]  # fmt: skip
    assert cli.main(argv) == 2
    _one_error_line(capsys.readouterr().err)
    assert not out.exists()
