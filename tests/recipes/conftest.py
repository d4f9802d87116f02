"""Every recipe run end to end with --tiny, once per test session, all in one work directory.

``python -m recipes all --tiny`` runs the union of every recipe's steps once (one interpreter: the tiny models and
libraries load once per step, not once per recipe). Then each recipe script runs as its users run it
(``python -m recipes.<module> --tiny``, a child process) in the same work directory: its steps are all finished, so it
checks them against its own plan (a step it would make differently is an error), skips them and prints its table
from the results. Together a few minutes on 2 cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RecipeRun:
    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_recipe(module: str, work_dir: Path, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """``python -m <module> [extra] --tiny --work-dir <work_dir>`` (``extra`` first: `python -m recipes all`)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    argv = [sys.executable, "-m", module, *extra, "--tiny", "--work-dir", str(work_dir)]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def recipe_process():
    """``run_recipe(module, work_dir, *extra)``: one recipe as a child process, offline, with --tiny."""
    return run_recipe


def _timed(name: str, module: str, work_dir: Path, *extra: str) -> RecipeRun:
    import time

    started = time.perf_counter()
    done = run_recipe(module, work_dir, *extra)
    return RecipeRun(name, done.returncode, done.stdout, done.stderr, time.perf_counter() - started)


@pytest.fixture(scope="session")
def tiny_recipes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, RecipeRun]]:
    """(work directory, name -> run) for ``all`` and then every recipe script, with --tiny."""
    from recipes import RECIPES

    work_dir = tmp_path_factory.mktemp("recipes-work")
    runs = {"all": _timed("all", "recipes", work_dir, "all")}
    if runs["all"].returncode == 0:
        runs.update({name: _timed(name, module, work_dir) for name, module in RECIPES.items()})
    print("tiny recipe seconds:", {name: round(run.seconds, 1) for name, run in runs.items()})
    return work_dir, runs
