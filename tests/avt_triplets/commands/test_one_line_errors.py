"""Common mistakes end in ONE `error:` line and exit code 2, through the real `avt` command line, for every command
that has the option (issue 18 item 10): a wrong kind of model, a device or dtype this machine cannot use, an unknown
dataset config, NaN or out-of-range numbers, a zero count, a malformed Hub id, a missing model path, a tracker that
is misspelt or not installed, a model folder a library cannot read (truncated or missing config.json, truncated
weights: what an interrupted download leaves), and argparse's own option errors (no usage block)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from avt import cli

NO_CUDA = not torch.cuda.is_available()


def main(argv: list[str]) -> int:
    """`avt ARGV` in this process: its exit code, whether returned or raised by argparse (``SystemExit``)."""
    try:
        return cli.main(argv)
    except SystemExit as stopped:
        return stopped.code


def assert_one_error_line(capsys, code: int, *needles: str) -> str:
    """Exit 2 and exactly one stderr line, `error: ...`, holding every needle (no traceback, no usage block)."""
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def _truncated_copy(source: Path, target: Path, file_name: str) -> Path:
    """A copy of a model folder whose ``file_name`` stops halfway, as an interrupted download leaves it."""
    shutil.copytree(source, target)
    data = (target / file_name).read_bytes()
    (target / file_name).write_bytes(data[: len(data) // 2])
    return target


@pytest.fixture(scope="module")
def broken_models(tmp_path_factory, tiny_blip2, fast_tiny_model) -> dict[str, Path]:
    """Captioner and LG-CAV-MAE folders with a truncated config.json, no config.json, truncated weights."""
    root = tmp_path_factory.mktemp("broken_models")
    folders = {}
    for name, source in (("blip2", tiny_blip2), ("lgcavmae", fast_tiny_model)):
        folders[f"{name}_config"] = _truncated_copy(source, root / f"{name}_config", "config.json")
        folders[f"{name}_weights"] = _truncated_copy(source, root / f"{name}_weights", "model.safetensors")
        shutil.copytree(source, root / f"{name}_no_config")
        (root / f"{name}_no_config" / "config.json").unlink()
        folders[f"{name}_no_config"] = root / f"{name}_no_config"
    return folders


@pytest.fixture(scope="module")
def small_triplets(tmp_path_factory) -> Path:
    """16 labelled triplets (2 classes), enough for one batch of 4."""
    from avt_training.synthetic import make_synthetic_triplets

    return make_synthetic_triplets(
        tmp_path_factory.mktemp("small_triplets"),
        clips_per_class=8,
        seed=3,
        seconds=1.3,
        frame_size=48,
        num_classes=2,
    )


# -- avt generate -----------------------------------------------------------------------------------------------------


def _generate(tmp_path, videos, captioner, scorer, *extra) -> list[str]:
    return [
        "generate", str(videos), "-o", str(tmp_path / "out"), "--captioner", str(captioner), "--scorer", str(scorer),
        "--num-workers", "0", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        "captioner_is_clap",
        "scorer_is_blip2",
        "cuda_without_cuda",
        "device_typo",
        "dtype_int8",
        "bad_hub_id",
        "missing_path",
        "truncated_config",
        "no_config",
        "truncated_weights",
        "fps_nan",
    ],
)
def test_generate_mistakes(case, tmp_path, capsys, synthetic_videos, tiny_blip2, tiny_clap, broken_models):
    blip2, clap = tiny_blip2, tiny_clap
    cases = {
        "captioner_is_clap": ((clap, clap), [], ["--captioner", "model_type 'clap'"]),
        "scorer_is_blip2": ((blip2, blip2), [], ["--scorer", "model_type 'blip-2'"]),
        "cuda_without_cuda": ((blip2, clap), ["--device", "cuda"], ["--device cuda", "--device cpu"]),
        "device_typo": ((blip2, clap), ["--device", "gpu"], ["--device gpu"]),
        "dtype_int8": ((blip2, clap), ["--dtype", "int8"], ["--dtype int8", "bfloat16"]),
        "bad_hub_id": (("not a repo!", clap), [], ["--captioner", "not a repo!"]),
        "missing_path": ((tmp_path / "no-such-model", clap), [], ["no-such-model", "no such file or folder"]),
        "truncated_config": ((broken_models["blip2_config"], clap), [], ["blip2_config", "config.json"]),
        "no_config": ((broken_models["blip2_no_config"], clap), [], ["blip2_no_config", "no config.json"]),
        "truncated_weights": ((broken_models["blip2_weights"], clap), [], ["blip2_weights", "whole files"]),
        "fps_nan": ((blip2, clap), ["--fps", "nan"], ["--fps", "nan"]),
    }
    (captioner, scorer), extra, needles = cases[case]
    if case == "cuda_without_cuda" and not NO_CUDA:
        pytest.skip("this machine has CUDA")
    code = main(_generate(tmp_path, synthetic_videos, captioner, scorer, *extra))
    assert_one_error_line(capsys, code, *needles)
    assert not (tmp_path / "out" / "data").exists()  # refused before any work


def test_argparse_errors_are_one_line(capsys, tmp_path):
    """No usage block: an option error reads like every other error, and names the command's --help."""
    assert_one_error_line(capsys, main(["generate", str(tmp_path)]), "avt generate", "--output-dir", "--help")
    argv = ["pretrain", "--dataset", "d", "--output-dir", str(tmp_path), "--per-device-batch-size", "x"]
    assert_one_error_line(capsys, main(argv), "--per-device-batch-size")


def test_filter_and_publish_mistakes(capsys, tmp_path):
    assert_one_error_line(capsys, main(["filter", str(tmp_path), "--top", "200"]), "--top", "200")
    assert_one_error_line(
        capsys, main(["publish", str(tmp_path), "--push-to-hub", "bad id!!"]), "--push-to-hub", "bad id!!"
    )


# -- training ---------------------------------------------------------------------------------------------------------


def _pretrain(dataset, output, *extra) -> list[str]:
    return [
        "pretrain", "--dataset", str(dataset), "--output-dir", str(output), "--num-workers", "0",
        "--per-device-batch-size", "4", "--max-steps", "1", "--report-to", "none", *extra,
    ]  # fmt: skip


def _finetune(dataset, output, model, *extra) -> list[str]:
    return [
        "finetune", "--dataset", str(dataset), "--output-dir", str(output), "--model", str(model),
        "--num-workers", "0", "--per-device-batch-size", "4", "--max-steps", "1", "--eval-split", "none",
        "--report-to", "none", *extra,
    ]  # fmt: skip


def _slava(dataset, output, *extra) -> list[str]:
    return [
        "pretrain-slava", "--dataset", str(dataset), "--output-dir", str(output), "--num-workers", "0",
        "--max-steps", "1", "--report-to", "none", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "extra", "needles"),
    [
        ("pretrain", ["--learning-rate", "nan"], ["--learning-rate", "nan"]),
        ("finetune", ["--learning-rate", "nan"], ["--learning-rate", "nan"]),
        ("pretrain-slava", ["--learning-rate", "inf"], ["--learning-rate", "inf"]),
        ("finetune", ["--mixup", "2"], ["--mixup", "[0, 1]"]),
        ("finetune", ["--label-smoothing", "1.5"], ["--label-smoothing", "[0, 1)"]),
        ("pretrain", ["--report-to", "tensorbord"], ["--report-to tensorbord", "tensorboard"]),
        ("finetune", ["--report-to", "tensorbord"], ["--report-to tensorbord"]),
        ("pretrain", ["--report-to", "trackio"], ["--report-to trackio", "not installed"]),
        ("finetune", ["--report-to", "wandb"], ["--report-to wandb", "not installed"]),
        ("pretrain-slava", ["--report-to", "wandb"], ["--report-to wandb", "not installed"]),
        ("pretrain", ["--model-name-or-path", "./no-such-model"], ["--model-name-or-path", "no such file"]),
        ("pretrain", ["--init-from-vitmae", "bad id!!"], ["--init-from-vitmae", "bad id!!"]),
        ("finetune", ["--model", "./no-such-model"], ["--model", "no such file"]),
        ("finetune", ["--model", "bad id!!"], ["--model", "bad id!!"]),
        ("pretrain-slava", ["--vision-model", "./no-such-model"], ["--vision-model", "no such file"]),
        ("pretrain-slava", ["--audio-model", "bad id!!"], ["--audio-model", "bad id!!"]),
    ],
)
def test_training_option_mistakes(command, extra, needles, tmp_path, capsys, fast_tiny_model):
    """Refused by the options' own checks, before any data or model is read."""
    tracker = next((extra[i + 1] for i, e in enumerate(extra) if e == "--report-to"), None)
    if tracker in ("wandb", "trackio") and importlib.util.find_spec(tracker):
        pytest.skip(f"{tracker} is installed here")
    missing = tmp_path / "no-such-dataset"  # never read: the options fail first
    build = {
        "pretrain": lambda: _pretrain(missing, tmp_path / "out", *extra),
        "finetune": lambda: _finetune(missing, tmp_path / "out", fast_tiny_model, *extra),
        "pretrain-slava": lambda: _slava(missing, tmp_path / "out", *extra),
    }[command]
    # a case's own --model replaces finetune's default one
    assert_one_error_line(capsys, main(build()), *needles)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("broken", ["lgcavmae_config", "lgcavmae_no_config", "lgcavmae_weights"])
@pytest.mark.parametrize("command", ["pretrain", "finetune", "evaluate"])
def test_unreadable_model_folders(
    command, broken, tmp_path, capsys, small_triplets, broken_models, single_thread
):
    folder = broken_models[broken]
    argv = {
        "pretrain": _pretrain(small_triplets, tmp_path / "out", "--model-name-or-path", str(folder)),
        "finetune": _finetune(small_triplets, tmp_path / "out", folder),
        "evaluate": ["evaluate", "retrieval", "--model", str(folder), "--dataset", str(small_triplets),
                     "--output-dir", str(tmp_path / "out"), "--no-progress"],
    }[command]  # fmt: skip
    if command == "pretrain" and broken == "lgcavmae_config":  # a config only: --config-name-or-path reads it
        argv = _pretrain(small_triplets, tmp_path / "out", "--config-name-or-path", str(folder))
    assert_one_error_line(capsys, main(argv), str(folder))


@pytest.mark.parametrize("command", ["pretrain", "finetune", "pretrain-slava", "evaluate"])
def test_unknown_dataset_config(command, tmp_path, capsys, small_triplets, fast_tiny_model, single_thread):
    spec = f"{small_triplets}:top99"
    argv = {
        "pretrain": _pretrain(spec, tmp_path / "out"),
        "finetune": _finetune(spec, tmp_path / "out", fast_tiny_model),
        "pretrain-slava": _slava(spec, tmp_path / "out"),
        "evaluate": ["evaluate", "retrieval", "--model", str(fast_tiny_model), "--dataset", spec,
                     "--output-dir", str(tmp_path / "out")],
    }[command]  # fmt: skip
    assert_one_error_line(capsys, main(argv), "top99", "avt filter")


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--per-device-eval-batch-size", "0"], ["--per-device-eval-batch-size", "positive"]),
        (["--per-class", "0"], ["--per-class", "positive"]),
        (["--num-workers", "-1"], ["--num-workers", "0 or more"]),
        (["--device", "cuda"], ["--device cuda"]),
        (["--model", "./no-such-model"], ["--model", "no such file"]),
        (["--model", "bad id!!"], ["--model", "bad id!!"]),
    ],
)
def test_evaluate_mistakes(extra, needles, tmp_path, capsys, small_triplets, fast_tiny_model):
    if extra[:2] == ["--device", "cuda"] and not NO_CUDA:
        pytest.skip("this machine has CUDA")
    model = extra[1] if extra[0] == "--model" else str(fast_tiny_model)
    extra = [] if extra[0] == "--model" else extra
    argv = ["evaluate", "retrieval", "--model", model, "--dataset", str(small_triplets), *extra]
    assert_one_error_line(capsys, main([*argv, "--output-dir", str(tmp_path / "out")]), *needles)


def test_evaluate_refuses_a_model_of_another_kind(tmp_path, capsys, small_triplets, tiny_clap):
    argv = ["evaluate", "retrieval", "--model", str(tiny_clap), "--dataset", str(small_triplets)]
    assert_one_error_line(
        capsys, main([*argv, "--output-dir", str(tmp_path)]), "model_type 'clap'", "LG-CAV-MAE"
    )
