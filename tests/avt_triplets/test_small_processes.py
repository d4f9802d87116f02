"""Small processes (issue 23 item 2): a labels-only run and a Ray decode task import neither torch nor
transformers; the torch-free WAV encoder stores the same samples ``datasets.Audio`` would."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import wave

import numpy as np

from avt_triplets.decoding import encode_audio

HEAVY = ("torch", "transformers", "torchcodec", "accelerate")

_GENERATE = """
import json, sys
from avt.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))

_RAY_DECODE = """
import json, sys
from avt_triplets.distributors.ray_data import decode_chunk  # what a Ray worker imports to run the task
from avt_triplets.decoding import DecodeSettings
from avt_triplets.inputs import ClipSpec
from avt_triplets.stages.reader import Chunk
clips = tuple(ClipSpec(f"c{i}", path, path) for i, path in enumerate(sys.argv[1:]))
settings = DecodeSettings(clip_seconds=2.0, model_inputs=False)
items = decode_chunk({"chunk": Chunk(0, 0, clips)}, settings)["payload"]
print(json.dumps({"failures": [i.failure for i in items], "wav": [i.audio_encoded["bytes"][:4].decode() for i in items],
                  "heavy": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(HEAVY))


def _run(script: str, args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_labels_only_generate_imports_no_torch(label_lists, tmp_path, subprocess_env):
    argv = [str(label_lists["vggsound"]), "--split", "test", "--captioner", "none"]
    argv += ["-o", str(tmp_path / "out"), "--num-workers", "2", "--no-progress"]
    result = _run(_GENERATE, ["generate", *argv], subprocess_env)
    assert result["code"] == 0 and (tmp_path / "out" / "data" / "shard-00000.parquet").exists()
    assert result["heavy"] == []


def test_ray_decode_task_imports_neither_torch_nor_transformers(label_lists, subprocess_env):
    paths = [
        str(label_lists["root"] / f"{c.ytid}_{c.start:06d}.mp4") for c in label_lists["clips"]["test"][:2]
    ]
    result = _run(_RAY_DECODE, paths, subprocess_env)
    assert result["failures"] == [None, None] and result["wav"] == ["RIFF", "RIFF"]
    assert result["heavy"] == []


def _pcm(wav_bytes: bytes) -> tuple[tuple, bytes]:
    with wave.open(io.BytesIO(wav_bytes)) as reader:
        params = reader.getparams()
        return (params.nchannels, params.sampwidth, params.framerate), reader.readframes(params.nframes)


def test_wav_samples_match_what_datasets_audio_stores():
    import datasets

    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.uniform(-1.2, 1.2, 4000), [1.0, -1.0, 0.5 / 32768, -1.5 / 32768, 0.0]])
    samples = samples.astype(np.float32)
    ours = encode_audio(samples)
    theirs = datasets.Audio(sampling_rate=16_000).encode_example({"array": samples, "sampling_rate": 16_000})
    assert ours["path"] is None and _pcm(ours["bytes"]) == _pcm(theirs["bytes"])
    assert _pcm(ours["bytes"])[0] == (1, 2, 16_000)
