"""`bench/gpu_suite.py --smoke`: the GPU suite's code paths on CPU, one JSON document with every part's figures,
and its guards: a failing part and a hanging part are recorded while the other parts still run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "bench" / "gpu_suite.py"

# part -> figures (dotted paths into its results) that must be positive numbers
REQUIRED = {
    "captioner": [
        "best_frames_per_s",
        "eager_bs2.frames_per_s",
        "eager_bs4.frames_per_s",
        "compiled_bs4.frames_per_s",
        "compiled_bs2.frames_per_s",
        "auto_batch_size",
    ],
    "captioner_families": [
        "smolvlm_256m.frames_per_s",
        "smolvlm_256m.auto_batch_size",
        "qwen2_5_vl_3b.frames_per_s",
        "qwen2_5_vl_3b.auto_batch_size",
    ],
    "scorer": ["audio_clips_per_s", "captions_per_s", "audio_bs4.per_s", "text_bs4.per_s"],
    "generate": ["end_to_end_clips_per_s", "models_alone_clips_per_s", "end_to_end_over_models_alone"],
    "train_step": [
        "ours_sdpa_bf16.samples_per_s",
        "official_eager_fp16_gradscaler.samples_per_s",
        "samples_per_s_ratio_ours_over_official",
    ],
    "dataloader": ["samples_per_s_per_worker", "workers_to_feed_one_gpu"],
}


def _run(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "suite.json"
    completed = subprocess.run(
        [sys.executable, str(SUITE), "--smoke", "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    document = json.loads(completed.stdout)  # stdout holds exactly one JSON document
    assert json.loads(out.read_text()) == document
    return completed, document


def _get(results: dict, dotted: str):
    for key in dotted.split("."):
        results = results[key]
    return results


def test_smoke_run_reports_every_part_with_figures(tmp_path):
    completed, doc = _run([], tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert doc["complete"] is True and doc["smoke"] is True
    assert doc["device"]["device"] == "cpu" and doc["device"]["torch"]
    assert list(doc["parts"]) == list(REQUIRED)
    for part, keys in REQUIRED.items():
        entry = doc["parts"][part]
        assert entry["status"] == "ok", (part, entry.get("error"), entry.get("trace"))
        for key in keys:
            value = _get(entry["results"], key)
            assert isinstance(value, int | float) and value > 0, (part, key, value)
    captioner = doc["parts"]["captioner"]["results"]
    assert captioner["compile_backend"] == "aot_eager"
    assert captioner["compiled_captions_equal_eager_fraction"] == 1.0  # fp32 on CPU: the same captions
    assert (
        captioner["compiled_bs4"]["warmup_s"] > captioner["compiled_bs2"]["warmup_s"]
    )  # compiled once, reused
    train = doc["parts"]["train_step"]["results"]
    assert (
        train["first_step_loss_rel_diff"] < 0.01
    )  # bf16 + SDPA vs fp16 + eager on the same weights and batch
    assert doc["parts"]["generate"]["results"]["gpu_utilisation"]["mean_percent"] is None  # no GPU: said so
    families = doc["parts"]["captioner_families"]["results"]
    for label, adapter in (("smolvlm_256m", "idefics3"), ("qwen2_5_vl_3b", "qwen2.5-vl")):
        # the family's adapter and the variable-size fast path: rows collated as in a run, not PIL images
        assert (
            families[label]["model"]["adapter"] == adapter
            and families[label]["model"]["layout"] == "variable"
        )
        assert families[label]["peak_memory_gib"] is None  # CPU: no device memory to report
    assert families["qwen2_5_vl_3b"]["row_shapes"]["image_grid_thw"] == [1, 3]


@pytest.mark.slow
def test_a_failing_and_a_hanging_part_do_not_stop_the_others(tmp_path):
    started = time.time()
    completed, doc = _run(
        [
            "--parts", "scorer", "train_step", "dataloader",
            "--hang-part", "scorer", "--fail-part", "train_step",
            "--time-budget-s", "40", "--kill-grace-s", "1",
        ],
        tmp_path,
    )  # fmt: skip
    parts = doc["parts"]
    assert parts["scorer"]["status"] == "timeout"
    assert parts["train_step"]["status"] == "error" and "injected failure" in parts["train_step"]["error"]
    assert (
        parts["dataloader"]["status"] == "ok"
        and parts["dataloader"]["results"]["samples_per_s_per_worker"] > 0
    )
    assert doc["complete"] is False and completed.returncode == 1
    # The hanging part was stopped at its share of the box and the suite kept its own 40 s box (measured from
    # its start, so interpreter start-up on a loaded machine does not count); the wall-clock bound only proves
    # nothing waited for the hang (it would sleep for minutes).
    assert parts["scorer"]["started_s"] < 15 and doc["elapsed_s"] <= 40 + 2
    assert time.time() - started < 120
