#!/usr/bin/env bash
# Download the wheels bench/gpu_suite.py needs on a GPU machine without network into .whl/ (git-ignored), then check
# the set: every requirement met by a carried wheel or by the machine's own packages, one version each, size limit.
#
# The lent GPU machines run Python 3.12 on x86-64 and carry PyTorch, transformers and accelerate, but not PyAV,
# datasets or msclap. We carry: our tested transformers (the machine's is older), PyAV (whose bundled FFmpeg also
# serves torchcodec, see bench/run_gpu_suite.sh), datasets, torchcodec for the machine's torch, msclap and what they
# import that the machine lacks. Usage: bash bench/fetch_gpu_wheels.sh   (TORCHCODEC=0.11.0 for another torch)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEST=${DEST:-.whl}
# torchcodec's builds follow torch's: 0.11 for torch 2.11, 0.12 for torch >= 2.11 (the machine has 2.11).
TORCHCODEC=${TORCHCODEC:-0.12.0}
WHEELS=(
    transformers==5.24.0 regex==2026.11.19
    av==18.1.0 torchcodec=="$TORCHCODEC"
    datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
    msclap==1.3.4 torchlibrosa==0.1.0 librosa==0.11.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
    soxr==1.1.0 audioread==3.1.0 pooch==1.9.0 platformdirs==4.14.8 decorator==5.3.1
)
PLATFORMS=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    PLATFORMS+=(--platform "$tag")
done
rm -rf "$DEST"
mkdir -p "$DEST"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp "${PLATFORMS[@]}" -d "$DEST" "${WHEELS[@]}"
"$PY" bench/check_gpu_wheels.py "$DEST"
