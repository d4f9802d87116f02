"""Every recipe run end to end with --tiny, once per test session, all in one work directory.

Each recipe runs as its users run it (``python -m recipes.<module> --tiny``, a child process). They share the work
directory, so the first one generates the synthetic datasets and the main model and the later ones reuse every step
that is already finished (the recipes' resume), which keeps the whole set to a few minutes on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The order the recipes run in: Table 5 first builds what most others share.
ORDER = ("table5", "table6", "cavmae", "table1", "table4", "table2", "table3")


@dataclass(frozen=True)
class RecipeRun:
    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_recipe(module: str, work_dir: Path, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    argv = [sys.executable, "-m", module, "--tiny", "--work-dir", str(work_dir), *extra]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def recipe_process():
    """``run_recipe(module, work_dir, *extra)``: one recipe as a child process, offline, with --tiny."""
    return run_recipe


@pytest.fixture(scope="session")
def tiny_recipes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, RecipeRun]]:
    """(work directory, name -> run) for every recipe, run in ``ORDER`` with --tiny."""
    import time

    from recipes import RECIPES

    work_dir = tmp_path_factory.mktemp("recipes-work")
    runs = {}
    for name in ORDER:
        started = time.perf_counter()
        done = run_recipe(RECIPES[name], work_dir)
        runs[name] = RecipeRun(name, done.returncode, done.stdout, done.stderr, time.perf_counter() - started)
    print("tiny recipe seconds:", {name: round(run.seconds, 1) for name, run in runs.items()})
    return work_dir, runs
