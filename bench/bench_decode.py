"""Decode throughput per core: ours vs the official CAV-MAE preprocessing, on a 10 s 320x240 H.264+AAC clip.

Per clip, both produce 16 kHz mono audio and 10 frames at 224:

* ``cavmae_baseline``: what ``src/preprocess`` of the official code does: an ``ffmpeg -i IN -vn -ar 16000``
  subprocess then ``sox ... remix 1`` (first channel), then OpenCV: ``CAP_PROP_FRAME_COUNT``, for i in
  0..9 seek to ``int(i * total / 10) - 1`` and read one frame, ``Resize(224)`` + ``CenterCrop(224)``
  (torchvision), ``save_image`` to JPEG files.
* ``plain_pyav``: a straightforward in-process PyAV decode (every audio frame resampled, every video
  frame decoded, 10 converted with ``to_image`` and resized) into arrays.
* ``ours_decode``: ``avt_triplets.media.decode_clip`` (one pass, non-reference frames away from the
  sampling times skipped, cached scaler, single resample call).
* ``ours_worker``: what a pipeline decode worker does per clip: ``decode_clip`` + JPEG frames + WAV
  bytes through ``datasets.Audio`` (the files the baseline writes, kept in memory instead).

Everything runs pinned to one CPU core (``os.sched_setaffinity``, inherited by the subprocesses, and
FFmpeg/OpenCV decoders asked for one thread), repeated in alternation; the median per-clip time is
reported, as wall time and as CPU time (this process and its subprocesses: on a machine shared with
other jobs, wall time also counts the time they took the core, CPU time does not). ``--profile`` adds
where ``ours_worker``'s CPU time goes, stage by stage (``decode_profile.py``). Prints JSON. Needs ``ffmpeg`` and ``sox`` on PATH (Debian: ``apt-get install ffmpeg sox``)
and ``opencv-python-headless``.

    python bench/bench_decode.py --clips 20 --repeats 3 --profile
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "threads;1")  # one decoder thread in OpenCV too


def write_test_clip(
    path: Path, seconds: float, fps: int, size=(320, 240), preset: str = "medium", gop: int = 250
) -> Path:
    """A moving-gradient H.264 (libx264 ``preset``, B-frames on as in typical uploads) + stereo 44.1 kHz AAC file."""
    import av

    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        video = container.add_stream(
            "libx264", rate=fps, options={"preset": preset, "g": str(gop), "crf": "23"}
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=44_100, layout="stereo")
        rng = np.random.default_rng(0)
        for i in range(int(seconds * fps)):
            t = i / fps
            image = np.stack(
                [
                    (128 + 100 * np.sin(xx / 17 + 3 * t)).astype(np.uint8),
                    (128 + 100 * np.sin(yy / 13 - 2 * t)).astype(np.uint8),
                    ((xx + yy + 40 * i) % 256).astype(np.uint8),
                ],
                axis=-1,
            )
            image = np.clip(image + rng.integers(0, 12, image.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        n = int(seconds * 44_100)
        tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 44_100) + 0.05 * rng.standard_normal(n)
        stereo = np.stack([tone, 0.8 * tone]).astype(np.float32)
        for start in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(stereo[:, start : start + 1024]), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = 44_100, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


def cavmae_baseline(video: Path, work: Path) -> None:
    """The official preprocessing of one clip (extract_audio.py + extract_video_frame.py)."""
    import cv2
    import torchvision.transforms as T
    from PIL import Image
    from torchvision.utils import save_image

    stem = video.stem
    intermediate, wav = work / f"{stem}_intermediate.wav", work / f"{stem}.wav"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(video),
            "-vn",
            "-ar",
            "16000",
            str(intermediate),
        ],
        check=True,
    )
    subprocess.run(["sox", str(intermediate), str(wav), "remix", "1"], check=True)
    intermediate.unlink()

    preprocess = T.Compose([T.Resize(224), T.CenterCrop(224), T.ToTensor()])
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    total = min(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), int(fps * 10))
    for i in range(10):
        frame_idx = int(i * (total / 10))
        capture.set(cv2.CAP_PROP_POS_FRAMES, frame_idx - 1)
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError(f"OpenCV could not read frame {frame_idx} of {video}")
        image = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        folder = work / f"frame_{i}"
        folder.mkdir(exist_ok=True)
        save_image(preprocess(image), str(folder / f"{stem}.jpg"))
    capture.release()


def plain_pyav(video: Path) -> tuple[np.ndarray, list]:
    """The obvious PyAV version: resample every audio frame, decode every video frame, keep 10."""
    import av

    with av.open(str(video)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
        chunks = []
        for frame in container.decode(audio=0):
            if frame.time >= 10.0:
                break
            chunks += [f.to_ndarray()[0] for f in resampler.resample(frame)]
        chunks += [f.to_ndarray()[0] for f in resampler.resample(None)]
    audio = np.concatenate(chunks)
    images = []
    with av.open(str(video)) as container:
        wanted = 0.0
        for frame in container.decode(video=0):
            if frame.time >= wanted - 1e-4 and len(images) < 10:
                images.append(frame.to_image(width=299, height=224))
                wanted += 1.0
    return audio, images


def ours_decode(video: Path):
    from avt_triplets.media import decode_clip

    return decode_clip(video, sampling_rates=(16_000,))


def ours_worker(video: Path):
    from avt_triplets.decoding import DecodeJob, DecodeSettings, decode_job
    from avt_triplets.inputs import ClipSpec

    job = DecodeJob(0, 0, ClipSpec(video.stem, video.name, str(video)))
    item = decode_job(job, DecodeSettings(scorer_sampling_rate=16_000))
    if item.failure:
        raise RuntimeError(item.failure)
    return item


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished subprocesses (ffmpeg and sox for the baseline)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time_per_clip(fn, clips: list[Path]) -> tuple[float, float]:
    """(wall, CPU) seconds per clip."""
    started, cpu = time.perf_counter(), _cpu_seconds()
    for clip in clips:
        fn(clip)
    return (time.perf_counter() - started) / len(clips), (_cpu_seconds() - cpu) / len(clips)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clips", type=int, default=20, help="Clips per timed round (copies of one test clip)."
    )
    parser.add_argument("--repeats", type=int, default=3, help="Timed rounds per method (median reported).")
    parser.add_argument("--fps", type=int, default=25, help="Frame rate of the test clip.")
    parser.add_argument(
        "--preset", default="medium", help="libx264 preset of the test clip (medium has B-frames)."
    )
    parser.add_argument(
        "--gop", type=int, default=250, help="Keyframe interval of the test clip (libx264 default 250)."
    )
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin everything to.")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Also report ours_worker's CPU time per stage (one more round).",
    )
    return parser.parse_args()


def _measure(args: argparse.Namespace, tmp: Path) -> tuple[dict, dict, dict | None]:
    """Median (wall, CPU) seconds per clip of each method, in alternating rounds; and the profile if asked for."""
    source = write_test_clip(tmp / "clip.mp4", 10.0, args.fps, preset=args.preset, gop=args.gop)
    clips = []
    for i in range(args.clips):  # distinct files, like a real dataset (page-cached either way)
        clips.append(tmp / f"clip_{i:03d}.mp4")
        shutil.copyfile(source, clips[-1])
    work = tmp / "baseline_out"
    work.mkdir()
    methods = {
        "cavmae_baseline": lambda clip: cavmae_baseline(clip, work),
        "plain_pyav": plain_pyav,
        "ours_decode": ours_decode,
        "ours_worker": ours_worker,
    }
    for fn in methods.values():  # warm up imports and caches
        fn(clips[0])
    times: dict[str, list[float]] = {name: [] for name in methods}
    cpu_times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            wall, cpu = _time_per_clip(fn, clips)
            times[name].append(wall)
            cpu_times[name].append(cpu)
    profile = None
    if args.profile:
        from decode_profile import profile_worker

        profile = profile_worker(ours_worker, clips)
    return _medians(times), _medians(cpu_times), profile


def _medians(values: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(v) for name, v in values.items()}


def main() -> None:
    args = _parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    import torch

    torch.set_num_threads(1)
    for tool in ("ffmpeg", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install ffmpeg sox")
    with tempfile.TemporaryDirectory() as tmp:
        per_clip, cpu_per_clip, profile = _measure(args, Path(tmp))
    baseline, cpu_baseline = per_clip["cavmae_baseline"], cpu_per_clip["cavmae_baseline"]
    result = {
        "benchmark": "decode",
        "clip": {
            "seconds": 10,
            "size": [320, 240],
            "fps": args.fps,
            "codec": f"h264 ({args.preset}, gop {args.gop}) + aac stereo 44.1 kHz",
        },
        "output": "16 kHz mono + 10 frames at 224",
        "cores": 1,
        "clips_per_round": args.clips,
        "repeats": args.repeats,
        "ms_per_clip": {name: round(1000 * value, 2) for name, value in per_clip.items()},
        "clips_per_s_per_core": {name: round(1 / value, 2) for name, value in per_clip.items()},
        "speedup_vs_cavmae_baseline": {name: round(baseline / value, 2) for name, value in per_clip.items()},
        "cpu_ms_per_clip": {name: round(1000 * value, 2) for name, value in cpu_per_clip.items()},
        "cpu_speedup_vs_cavmae_baseline": {
            name: round(cpu_baseline / value, 2) for name, value in cpu_per_clip.items()
        },
        "ours_worker_profile": profile,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
