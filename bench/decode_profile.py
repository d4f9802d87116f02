"""Where a decode worker's time goes, stage by stage, for ``bench_decode.py --profile``.

The stages are the functions of ``avt_triplets.media`` / ``decoding`` that do one job each, wrapped for the
duration of the measurement only; each wrapper adds this thread's CPU time (``time.thread_time``: what the
process itself spent, not what other jobs on a shared machine took from it) to its stage. What no wrapper
covers (the demuxer reading packets, the Python loop handing them out, building the result) is reported as
``demux_and_loop`` and ``rest``; ``model_preprocessing`` appears when the worker runs the models' preprocessing
(``DecodeSettings.prepare``; the bench's worker has none: it depends on the captioner, ``bench_generate.py`` covers it). Counts say how much work each clip asked for (packets, frames the decoder
returned, frames picked).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av


@contextlib.contextmanager
def _wrapped(owner, name: str, account: Callable[[tuple, object, float], None]) -> Iterator[None]:
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        started = time.thread_time()
        result = original(*args, **kwargs)
        account(args, result, time.thread_time() - started)
        return result

    setattr(owner, name, timed)
    try:
        yield
    finally:
        setattr(owner, name, original)


class _Tally:
    """CPU seconds per stage and counts, summed over the profiled clips."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def stage(self, name: str) -> Callable[[tuple, object, float], None]:
        return lambda _args, _result, seconds: self.add(name, seconds)

    def decoded(self, args: tuple, frames, seconds: float) -> None:
        _demuxer, packet, is_video = args
        kind = "video" if is_video else "audio"
        self.add(f"{kind}_decode", seconds)
        self.count(f"{kind}_packets")
        self.count(f"{kind}_frames_decoded", len(frames))


def _patches(tally: _Tally) -> list:
    from avt_triplets import decoding, media, model_inputs

    return [
        (media, "_open", tally.stage("open")),
        (media._WindowDemuxer, "run", tally.stage("window_pass")),
        (media._WindowDemuxer, "_decode", tally.decoded),
        (media._WindowDemuxer, "_set_frame_skipping", tally.stage("skip_decisions")),
        (media._FramePicker, "add", tally.stage("picker")),
        (media, "_rgb", tally.stage("frame_scale_to_rgb")),
        (media._AudioCollector, "add", tally.stage("audio_collect")),
        (media._AudioCollector, "finish", tally.stage("audio_mix_resample")),
        (decoding, "_jpeg", tally.stage("jpeg_encode")),
        (decoding, "encode_audio", tally.stage("wav_encode")),
        # only when the worker was given the models' preprocessing (DecodeSettings.prepare)
        (model_inputs.InputPreparer, "__call__", tally.stage("model_preprocessing")),
    ]


def _breakdown(tally: _Tally, clips: int) -> dict:
    ms = {name: 1000 * value / clips for name, value in tally.seconds.items()}
    window = ms.pop("window_pass", 0.0)
    picker = ms.pop("picker", 0.0)
    ms["pil_image"] = picker - ms.get("frame_scale_to_rgb", 0.0)
    inside = ("video_decode", "audio_decode", "skip_decisions", "audio_collect")
    ms["demux_and_loop"] = window - picker - sum(ms.get(name, 0.0) for name in inside)
    total = ms.pop("total")
    ms["rest"] = total - sum(ms.values())
    return {
        "cpu_ms_per_clip": {
            name: round(value, 2) for name, value in sorted(ms.items(), key=lambda kv: -kv[1])
        },
        "cpu_ms_total": round(total, 2),
        "share": {name: round(value / total, 3) for name, value in ms.items()},
        "per_clip": {name: round(value / clips, 1) for name, value in sorted(tally.counts.items())},
    }


def profile_worker(run_clip: Callable[[Path], object], clips: list[Path]) -> dict:
    """CPU ms per stage per clip of ``run_clip`` (the bench's ``ours_worker``) over ``clips``."""
    tally = _Tally()
    with contextlib.ExitStack() as stack:
        for owner, name, account in _patches(tally):
            stack.enter_context(_wrapped(owner, name, account))
        for clip in clips:
            started = time.thread_time()
            run_clip(clip)
            tally.add("total", time.thread_time() - started)
    result = _breakdown(tally, len(clips))
    result["decoder_floor_cpu_ms"] = _decoder_floor(clips[0])
    return result


def _decoder_floor(clip: Path, repeats: int = 5) -> dict:
    """The codecs alone on the same clip (PyAV, no Python work per frame): what no change above them removes."""

    def video(skip: str) -> None:
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            stream.codec_context.skip_frame = skip
            for packet in container.demux(stream):
                packet.decode()

    def audio() -> None:
        with av.open(str(clip)) as container:
            for packet in container.demux(container.streams.audio[0]):
                packet.decode()

    def timed(fn: Callable[[], None]) -> float:
        started = time.thread_time()
        for _ in range(repeats):
            fn()
        return round(1000 * (time.thread_time() - started) / repeats, 2)

    return {
        "video_every_frame": timed(lambda: video("DEFAULT")),
        "video_reference_frames_only": timed(lambda: video("NONREF")),
        "video_without_b_frames": timed(lambda: video("BIDIR")),
        "audio": timed(audio),
    }
