"""Evaluation at size: DataLoader workers and `accelerate launch` processes change the speed, never the numbers.

Features from 2 workers must equal those from the main process bit for bit and stay aligned with the clip ids;
a 2-process CPU launch (gloo) must write the same metrics as one process, once.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avt.cli import main as avt_main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def triplet_rows(tiny_triplets):
    from eval.loading import load_eval_dataset

    return load_eval_dataset(str(tiny_triplets), "train")


def test_workers_give_the_same_retrieval_features_in_row_order(tiny_lgcavmae, triplet_rows):
    from eval.features import extract_retrieval_features
    from eval.loading import load_model, load_processor

    model = load_model(str(tiny_lgcavmae), "retrieval", "cpu")
    processor = load_processor(str(tiny_lgcavmae), model.config)
    runs = [
        extract_retrieval_features(
            model, processor, triplet_rows, batch_size=3, num_workers=workers, with_text=True, progress=False
        )
        for workers in (0, 2)
    ]
    in_main, in_workers = runs
    expected_ids = [r for r in triplet_rows["clip_id"] if r != "clip013"]  # clip013 has no frames
    assert in_main.clip_ids == in_workers.clip_ids == expected_ids
    assert in_main.skipped == in_workers.skipped and in_main.skipped[0]["clip_id"] == "clip013"
    for name in ("audio", "visual", "text", "audio_in_text_space", "visual_in_text_space"):
        assert np.array_equal(getattr(in_main, name), getattr(in_workers, name)), name
    # each row is its own clip's: the stored caption embedding of clip k sits in row k
    stored = {
        r["clip_id"]: r["text_embedding"] for r in triplet_rows.select_columns(["clip_id", "text_embedding"])
    }
    assert np.allclose(in_workers.text, np.asarray([stored[c] for c in expected_ids]))
    assert len({row.tobytes() for row in in_workers.audio}) == len(expected_ids)  # no clip repeated


def test_workers_give_the_same_classification_logits(tiny_classifier, triplet_rows):
    from eval.classify import predict_frames
    from eval.loading import load_model, load_processor

    model = load_model(str(tiny_classifier), "classification", "cpu")
    processor = load_processor(str(tiny_classifier), model.config)
    in_main, in_workers = (
        predict_frames(
            model, processor, triplet_rows, num_frames=3, batch_size=4, num_workers=w, progress=False
        )
        for w in (0, 2)
    )
    assert in_main.clip_ids == in_workers.clip_ids and in_main.rows == in_workers.rows == list(range(13))
    assert in_main.logits.shape == (3, 13, 3) and np.array_equal(in_main.logits, in_workers.logits)
    assert np.array_equal(in_main.middle_frame, in_workers.middle_frame) and set(in_main.middle_frame) == {1}


def test_in_dataset_order_sorts_by_row_and_drops_repeats():
    from eval.distributed import in_dataset_order

    records = [{"index": 2, "v": "c"}, {"index": 0, "v": "a"}, {"index": 1, "v": "b"}, {"index": 0, "v": "a"}]
    assert [r["v"] for r in in_dataset_order(records)] == ["a", "b", "c"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _metrics(report: Path) -> list[dict]:
    entries = json.loads(report.read_text())["entries"]
    return [{k: v for k, v in entry.items() if k != "seconds"} for entry in entries]


@pytest.mark.slow
def test_two_processes_write_the_same_metrics_as_one(tmp_path, tiny_lgcavmae, tiny_triplets, subprocess_env):
    """Retrieval only (a launch costs ~40 s here): classification shares the sharding and gathering path."""
    task, model = "retrieval", tiny_lgcavmae
    # 14 rows in batches of 3: 5 batches, so the second process's last batch is accelerate's padding
    arguments = [
        "evaluate", task, "--model", f"tiny={model}", "--dataset", f"Toy={tiny_triplets}", "--batch-size", "3",
        "--device", "cpu", "--no-progress", "--num-workers", "1",
    ]  # fmt: skip
    arguments += ["--protocol", "full", "--max-k", "8"]
    single, launched = tmp_path / "one", tmp_path / "two"
    assert avt_main([*arguments, "--output-dir", str(single)]) == 0
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        "-m", "avt", *arguments, "--output-dir", str(launched),
    ]  # fmt: skip
    # --multi_gpu on a machine without CUDA: torchrun with gloo (`--cpu --num_processes 2` starts one process)
    result = subprocess.run(
        command, env=subprocess_env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _metrics(launched / f"{task}.json") == _metrics(single / f"{task}.json")
    assert result.stdout.count("Reports:") == 1  # the main process alone reports and writes
    assert _metrics(launched / f"{task}.json")[0]["num_clips"] == 13
    # each process ran its own batches: rank 0 batches 0, 2, 4 (9 rows), rank 1 batches 1, 3 and a padding one
    assert "process 0 of 2 ran 9 clip(s)" in result.stderr and "process 1 of 2 ran 9 clip(s)" in result.stderr
