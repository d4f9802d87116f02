"""A plain `avt pretrain` honours `accelerate config`'s saved default, as its --mixed-precision help says: the
command line first, then `accelerate launch`'s variables, then the saved file; the effective settings are logged and
the precision used is recorded in train_summary.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from avt_training.accelerate_settings import effective_settings

# What `accelerate config` writes on a 2-GPU machine (accelerate 1.x, keys and quoting as saved).
SAVED_CONFIG = """\
compute_environment: LOCAL_MACHINE
debug: false
distributed_type: MULTI_GPU
downcast_bf16: 'no'
enable_cpu_affinity: false
gpu_ids: all
machine_rank: 0
main_training_function: main
mixed_precision: bf16
num_machines: 1
num_processes: 2
rdzv_backend: static
same_network: true
tpu_env: []
tpu_use_cluster: false
tpu_use_sudo: false
use_cpu: false
"""


@pytest.fixture
def saved_accelerate_config(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "hf_home"
    (home / "accelerate").mkdir(parents=True)
    path = home / "accelerate" / "default_config.yaml"
    path.write_text(SAVED_CONFIG)
    monkeypatch.setenv("HF_HOME", str(home))
    for name in ("ACCELERATE_MIXED_PRECISION", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_the_saved_config_is_the_default_of_a_plain_run(saved_accelerate_config):
    settings = effective_settings(None)
    assert settings.mixed_precision == "bf16" and str(saved_accelerate_config) in settings.source
    assert settings.saved_num_processes == 2 and not settings.cpu


def test_the_command_line_and_the_launcher_come_first(saved_accelerate_config, monkeypatch):
    assert effective_settings("no").mixed_precision == "no"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")  # `accelerate launch` read the file already
    launched = effective_settings(None)
    assert launched.mixed_precision is None and launched.source == "accelerate launch"


def test_no_saved_config_leaves_accelerate_its_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert effective_settings(None).mixed_precision is None


@pytest.mark.slow
def test_plain_pretrain_uses_the_saved_precision_and_says_so(
    tmp_path, saved_accelerate_config, fast_tiny_model, synthetic_train, single_thread, caplog
):
    from accelerate.state import AcceleratorState

    from avt_training.pretrain import PretrainConfig, pretrain

    AcceleratorState._reset_state(
        True
    )  # an earlier in-process run fixed this process's precision; a new run may not
    with caplog.at_level(logging.INFO, logger="avt_training"):
        output = pretrain(
            PretrainConfig(
                datasets=[str(synthetic_train)],
                output_dir=str(tmp_path / "run"),
                model_name_or_path=str(fast_tiny_model),
                per_device_batch_size=16,
                max_steps=2,
                num_workers=0,
                save_steps=None,
                logging_steps=1,
            )
        )
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["mixed_precision"] == "bf16" and summary["num_processes"] == 1
    assert "accelerate: mixed precision bf16 (from accelerate config" in caplog.text
    assert "accelerate config asks for 2 processes" in caplog.text
