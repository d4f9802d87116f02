"""`bench/bench_family_inputs.py` measures a family's real processor at its published settings, and what it reports
is what the decode worker ships: Qwen2.5-VL's patch rows for a 398x224 frame are a 16 x 28 grid of 14 px patches
(its published min/max pixels keep the frame's size, rounded to 28 px), 1176 float32 values each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_qwen2_5_vl_inputs_at_the_published_settings():
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, str(REPO / "bench" / "bench_family_inputs.py"), "--families", "qwen2_5_vl"]
    argv += ["--sizes", "224", "--frames", "2", "--batch", "3", "--repeats", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)["families"]["qwen2_5_vl"]["224"]
    assert result["frame_size"] == [398, 224] and result["layout"] == "variable"
    shapes = result["row_shapes"]
    assert shapes["image_grid_thw"] == [1, 3] and shapes["pixel_values"] == [16 * 28, 3 * 2 * 14 * 14]
    tokens = shapes["input_ids"][1]
    assert tokens > 16 * 28 // 4  # the prompt holds the frame's 112 merged image tokens
    # per frame: patch rows (float32) + grid + ids, mask and token types (int64), as they cross to the model process
    assert result["bytes_per_frame"] == 16 * 28 * 1176 * 4 + 3 * 8 + 3 * tokens * 8
    assert result["preprocess_ms_per_frame"] > 0 and result["stack_ms_per_frame"] > 0
