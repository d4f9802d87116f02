"""`avt pretrain` / `avt finetune` command lines: every option documented, real runs through the CLI entry
point (TensorBoard logs, ImageNet-MAE init, Hub pushes to the local Hub), and the loop under 2 processes."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from avt.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_every_option_has_help(command, capsys):
    parser = build_parser(only=command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    undocumented = [a.dest for a in sub._actions if a.dest != "help" and not (a.help or "").strip()]
    assert not undocumented
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    if command == "pretrain":
        assert "Gradient accumulation does NOT add negatives" in text
        assert "--contrastive-scope" in text and "--resume" in text


def _tiny_vitmae(path: Path) -> Path:
    """A random ViTMAEForPreTraining shaped like the fast tiny LG-CAV-MAE (2 layers = 1 specific + 1 shared)."""
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    config = ViTMAEConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=48,
        patch_size=16, decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
    )  # fmt: skip
    ViTMAEForPreTraining(config).save_pretrained(path)
    return path


@pytest.mark.slow
def test_pretrain_cli_from_imagenet_mae_with_tensorboard_and_hub(
    tmp_path, local_hub, fast_tiny_model, synthetic_train, single_thread
):
    from huggingface_hub import HfApi
    from safetensors.torch import load_file
    from transformers import ViTMAEForPreTraining

    vitmae = _tiny_vitmae(tmp_path / "vitmae")
    repo_id = local_hub.repo_id("lgcavmae-pretrain-test")
    output = tmp_path / "run"
    code = main(
        [
            "pretrain", "--dataset", str(synthetic_train), "--config-name-or-path", str(fast_tiny_model),
            "--init-from-vitmae", str(vitmae), "--output-dir", str(output), "--per-device-batch-size", "8",
            "--max-steps", "4", "--save-steps", "2", "--logging-steps", "2", "--num-workers", "0",
            "--push-to-hub", repo_id, "--hub-strategy", "every_save", "--report-to", "tensorboard",
        ]
    )  # fmt: skip
    assert code == 0
    assert list((output / "runs").rglob("events.out.tfevents.*")), (
        "--report-to tensorboard writes TensorBoard logs"
    )
    files = set(HfApi().list_repo_files(repo_id))
    assert {"config.json", "model.safetensors", "train_summary.json"} <= files
    assert any(f.startswith("checkpoints/step-00000002/") for f in files)
    assert not any(f.startswith("runs/") for f in files)

    # The run started from the MAE weights (IN-initial): after 4 small steps the first visual layer's
    # weights are still close to the MAE's, far from an independent random init.
    from modeling_lgcavmae import LGCavMaeForPreTraining

    mae = ViTMAEForPreTraining.from_pretrained(vitmae).state_dict()
    mae_fc1 = mae["vit.layers.0.mlp.fc1.weight"] if "vit.layers.0.mlp.fc1.weight" in mae else None
    if mae_fc1 is None:
        mae_fc1 = next(v for k, v in mae.items() if k.endswith("layer.0.intermediate.dense.weight"))
    trained = load_file(output / "model.safetensors")["cav_mae.visual_layers.0.mlp.fc1.weight"]
    random_init = LGCavMaeForPreTraining.from_pretrained(fast_tiny_model).state_dict()[
        "cav_mae.visual_layers.0.mlp.fc1.weight"
    ]
    assert (trained - mae_fc1).abs().mean() < 0.25 * (random_init - mae_fc1).abs().mean()

    reloaded = LGCavMaeForPreTraining.from_pretrained(repo_id)
    assert reloaded.config.num_mel_bins == 64 and reloaded.config.contrastive_weight == 0.01


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_pretrain_loop_under_two_processes(tmp_path, fast_tiny_model, synthetic_train):
    output = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "avt.cli", "pretrain",
        "--dataset", str(synthetic_train), "--model-name-or-path", str(fast_tiny_model), "--output-dir", str(output),
        "--per-device-batch-size", "8", "--max-steps", "3", "--save-steps", "0", "--num-workers", "0",
        "--report-to", "none",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_batch_size"] == 16
    assert summary["samples_seen"] == 3 * 16 and summary["steps"] == 3
    checkpoint = output / "checkpoints" / "step-00000003"
    assert (checkpoint / "random_states_0.pkl").exists() and (checkpoint / "random_states_1.pkl").exists()
    assert (output / "model.safetensors").exists()


@pytest.mark.slow
def test_finetune_cli_runs_and_writes_results(
    tmp_path, fast_tiny_model, synthetic_train, synthetic_heldout, single_thread
):
    output = tmp_path / "ft"
    code = main(
        [
            "finetune", "--model", str(fast_tiny_model), "--dataset", str(synthetic_train),
            "--eval-dataset", str(synthetic_heldout), "--eval-split", "train", "--output-dir", str(output),
            "--per-device-batch-size", "16", "--max-steps", "2", "--save-strategy", "no", "--eval-strategy", "no",
            "--num-workers", "0", "--report-to", "none", "--no-multi-frame-eval", "--freq-mask", "0",
        ]
    )  # fmt: skip
    assert code == 0
    results = json.loads((output / "eval_results.json").read_text())
    assert results["train"]["epoch"] == pytest.approx(2 / 8) and "accuracy" in results["single_frame"]
    assert "multi_frame" not in results
    assert (output / "model.safetensors").exists() and (output / "processor_config.json").exists()
