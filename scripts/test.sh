#!/usr/bin/env bash
# The test command (README command 2, and what CI runs): install if needed, lint, then the full suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
