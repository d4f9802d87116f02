#!/usr/bin/env bash
# Install avt into ./.venv on a fresh machine (CPU): system FFmpeg libraries for torchcodec, the pinned
# torch set from requirements-ci.txt, the package with its dev and ray extras (the ray distributor tests run a
# local Ray), and msclap without its stale pins.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v sox >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    echo "[install] apt-get install ffmpeg sox (FFmpeg libraries for torchcodec; both for the decode benchmark)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg sox >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" -r requirements-ci.txt
"${PIP[@]}" -e ".[dev,ray]"
# msclap 1.3.4 pins transformers<5 / numpy<2; its runtime needs are in our own dependencies and
# avt_triplets.scorers adapts it to transformers 5.
"${PIP[@]}" --no-deps "msclap==1.3.4"
echo "[install] done: $(.venv/bin/python -c 'import torch, transformers, datasets; print("torch", torch.__version__, "transformers", transformers.__version__, "datasets", datasets.__version__)')"
