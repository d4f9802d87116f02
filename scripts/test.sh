#!/usr/bin/env bash
# The test command (README command 2, and what CI runs): install if needed, lint, then the full suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Two pytest-xdist workers (the machines have 2 cores, and much of the suite waits on subprocesses); each file's
# tests run on one worker, so its module fixtures are built once; tests/support/ray_cluster.py runs one Ray cluster
# at a time. Files are handed out in collection order (--no-loadscope-reorder; xdist would order them by number of
# tests), which tests/conftest.py starts with the slowest files (tests/support/slow_files.py). A single test file or
# -k selection runs the same way: pass -n 0 to run in this process.
.venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "$@"
