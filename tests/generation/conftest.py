"""Fixtures of the generation tests: a few short synthetic videos, broken files, loaded tiny models.

Kept small on purpose (the whole folder must run in well under three minutes on two busy cores):
six good clips of 2-10.5 s and one file per failure reason, shards of three clips.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from avt_triplets.tiny.videos import make_synthetic_videos

# file name -> the failure reason the pipeline must record for it
BAD_FILES = {
    "bad/empty.mp4": "not_media",
    "bad/random_bytes.mp4": "not_media",
    "bad/text_file.mp4": "not_media",
    "bad/truncated.mp4": "undecodable",
    "bad/audio_only.mp4": "no_video_stream",
    "bad/video_only.mp4": "no_audio_stream",
    "bad/missing.mp4": "unreadable_path",
}


def mux_tone(container, stream, seconds: float, rate: int = 44_100, hz: float = 440.0) -> None:
    """Encode and mux a mono sine tone into ``stream`` (an AAC stream of ``container``), flushing it."""
    import av

    samples = (0.2 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
    for start in range(0, samples.size, 1024):
        frame = av.AudioFrame.from_ndarray(
            samples[None, start : start + 1024].copy(), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_audio_only(path: Path, seconds: float = 2.0, rate: int = 44_100) -> Path:
    import av

    with av.open(str(path), "w") as container:
        mux_tone(container, container.add_stream("aac", rate=rate, layout="mono"), seconds, rate)
    return path


def write_still_clip(path: Path, seconds: float = 4.0, fps: int = 10, rate: int = 44_100) -> Path:
    """An MP4 whose picture never changes (a still with sound): every sampled frame decodes to the same pixels."""
    import av

    image = np.zeros((144, 256, 3), np.uint8)
    image[40:100, 60:180] = (200, 60, 30)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 256, 144, "yuv420p"
        audio = container.add_stream("aac", rate=rate, layout="mono")
        for _ in range(int(seconds * fps)):
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        mux_tone(container, audio, seconds, rate, hz=330.0)
    return path


def write_video_only(path: Path, seconds: float = 2.0, fps: int = 10) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * fps)):
            image = np.full((48, 64, 3), (i * 20) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_bad_files(root: Path, good_video: Path) -> dict[str, str]:
    """Write one file per failure reason under ``root/bad``; returns relative path -> reason."""
    (root / "bad").mkdir(parents=True, exist_ok=True)
    (root / "bad/empty.mp4").write_bytes(b"")
    (root / "bad/random_bytes.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "bad/text_file.mp4").write_text("this is a text file, not a video\n" * 20)
    data = good_video.read_bytes()
    (root / "bad/truncated.mp4").write_bytes(data[: len(data) // 2])
    write_audio_only(root / "bad/audio_only.mp4")
    write_video_only(root / "bad/video_only.mp4")
    return dict(BAD_FILES)


@pytest.fixture(scope="session")
def gen_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``{"csv": list with good + bad rows, "good_csv": good rows only, "root", "good", "bad"}``.

    Six good clips (2 classes x 3; 2 s, 3 s and 10.5 s, the last starting at 0.25 s) and the broken
    files of ``BAD_FILES``, all listed in one CSV (``video_path,start_s,labels``).
    """
    root = tmp_path_factory.mktemp("gen_inputs")
    good_csv = make_synthetic_videos(root, num_classes=2, clips_per_class=3, durations_s=(2.0, 3.0, 10.5))
    with open(good_csv, newline="") as handle:
        good_rows = list(csv.DictReader(handle))
    bad = make_bad_files(root, root / good_rows[0]["video_path"])
    # Shards of three: [g0 g1 g2] [b0 g3 b1] [b2 g4 b3] [b4 g5 b5] [missing]. The first shard has no
    # failures, every other but the last has a clip to caption (so a kill can land inside it), and
    # the missing file sits alone at the end.
    bad_names = list(bad)
    order = [("good", 0), ("good", 1), ("good", 2)]
    for k, good_index in enumerate([3, 4, 5]):
        order += [("bad", 2 * k), ("good", good_index), ("bad", 2 * k + 1)]
    order.append(("bad", 6))
    mixed = root / "mixed.csv"
    with open(mixed, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_path", "start_s", "labels"])
        for kind, index in order:
            if kind == "good":
                row = good_rows[index]
                writer.writerow([row["video_path"], row["start_s"], row["labels"]])
            else:
                writer.writerow([bad_names[index], 0, "broken"])
    return {"csv": mixed, "good_csv": good_csv, "root": root, "good": good_rows, "bad": bad}


@pytest.fixture
def still_clip(tmp_path: Path) -> Path:
    """A 4 s clip whose picture never changes (its sampled frames are exact duplicates), with a tone."""
    return write_still_clip(tmp_path / "still.mp4")


@pytest.fixture(scope="session")
def blip2_captioner(tiny_blip2):
    from avt_triplets.captioners import load_captioner

    return load_captioner(tiny_blip2, device="cpu", max_new_tokens=4)


@pytest.fixture(scope="session")
def clap_scorer(tiny_clap):
    from avt_triplets.scorers import load_scorer

    return load_scorer(str(tiny_clap), device="cpu")


@pytest.fixture(scope="session")
def reference_options() -> dict:
    """Generation options of the reference run (shards of 3 clips, small batches, no progress bar)."""
    return {"shard_size": 3, "caption_batch_size": 8, "score_batch_size": 4, "progress": False}


@pytest.fixture(scope="session")
def reference_run(gen_inputs, blip2_captioner, clap_scorer, reference_options, tmp_path_factory) -> Path:
    """One uninterrupted run over the mixed list (2 decode workers); the rows every other run must match."""
    from avt_triplets.pipeline import generate_triplets

    out = tmp_path_factory.mktemp("reference") / "out"
    summary = generate_triplets(
        gen_inputs["csv"],
        out,
        blip2_captioner,
        clap_scorer,
        num_workers=2,
        rank=0,
        world_size=1,
        **reference_options,
    )
    assert summary.complete, summary.format()
    return out


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for `avt` subprocesses: this checkout importable, one BLAS thread each."""
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture
def bad_media(tmp_path: Path, gen_inputs) -> dict[str, tuple[Path, str]]:
    """name -> (path, expected failure reason), copied into this test's folder."""
    src = gen_inputs["root"]
    out = {}
    for name, reason in BAD_FILES.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (src / name).exists():
            shutil.copyfile(src / name, target)
        out[name] = (target, reason)
    return out
