#!/usr/bin/env bash
# Run bench/gpu_suite.py on a bare GPU machine that has PyTorch but no network, with the wheels that
# bench/fetch_gpu_wheels.sh put in .whl/ (carried along with the working tree). Arguments go to the suite.
# The JSON document is printed and written to $OUT/gpu_suite.json ($OUT: the device tool's return folder).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SITE=${AVT_SITE:-/tmp/avt-site}
if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl || exit 3
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    # torchcodec (datasets' audio encoder) loads FFmpeg's shared libraries by their usual names; the machine has
    # none, so point it at the FFmpeg inside the PyAV wheel (same libraries PyAV uses, under hashed names).
    mkdir -p "$SITE/ffmpeg-libs"
    for lib in "$SITE"/av.libs/lib{avcodec,avformat,avutil,avdevice,avfilter,swscale,swresample}-*.so.*; do
        name=$(basename "$lib")
        major=$(echo "$name" | sed -E 's/.*\.so\.([0-9]+).*/\1/')
        ln -sf "$lib" "$SITE/ffmpeg-libs/${name%%-*}.so.$major"
    done
    export LD_LIBRARY_PATH="$SITE/ffmpeg-libs:$SITE/av.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
"$PY" - <<'EOF' >&2
import importlib
for name in ("torch", "transformers", "accelerate", "av", "datasets", "torchcodec", "msclap", "librosa"):
    try:
        module = importlib.import_module(name)
        print(f"[run_gpu_suite] {name} {getattr(module, '__version__', '?')} from {module.__file__}")
    except Exception as error:  # the suite records what this breaks; keep going
        print(f"[run_gpu_suite] {name}: {type(error).__name__}: {error}")
EOF
OUT_DIR=${OUT:-.}
"$PY" bench/gpu_suite.py --out "$OUT_DIR/gpu_suite.json" "$@"
