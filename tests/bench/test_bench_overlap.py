"""`bench/bench_overlap.py` runs the real pipeline with the stand-in models and reports what it promises.

Tiny settings: this checks that the benchmark works and accounts for its stand-ins' time, not the ratio it
measures (that is a figure for docs/performance.md, taken on a quiet machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_overlap_runs_and_accounts_for_the_stand_ins_time():
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, str(REPO / "bench" / "bench_overlap.py"), "--clips", "6", "--seconds", "2"]
    argv += ["--model-ms-per-frame", "5", "--num-workers", "1", "--chunk-size", "4"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    run = result["end_to_end"]
    assert run["clips"] == 6 and result["frames_per_clip"] == 2
    # 12 frames held 5 ms each, 6 clips x 1 window held 2.5 ms, one distinct caption 0.5 ms (sleeps overshoot)
    assert 0.06 + 0.015 <= run["held_s"] < 0.5
    assert 0 < result["end_to_end_over_model_alone"] <= 1.0
    assert abs(result["model_idle_fraction"] - (1 - run["held_s"] / run["wall_s"])) < 0.01
    assert result["decode_clips_per_s"] > 0 and result["stand_in_clips_per_s"] > 0
    assert set(run["seconds"]) >= {"decode", "wait", "caption", "score", "write"}
