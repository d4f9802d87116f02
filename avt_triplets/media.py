"""Probe and decode one clip with PyAV: mono float32 audio at the rates asked for, and RGB frames at ``fps``.

One pass over the container demuxes audio and video together from a single seek to the window start,
so a clip costs one open, one seek and one sequential decode (no per-frame seeking, no subprocesses,
no temporary files). Audio is decoded once and fed to one ``av.AudioResampler`` per requested rate
(16 kHz for the dataset, plus the scorer's own rate, e.g. 44.1 kHz for msclap or 48 kHz for LAION CLAP).

Frame sampling: at ``fps=1`` over a 10 s window the frames are the ones shown at 0, 1, ..., 9 s (the
first frame whose timestamp is at or after each time). The official CAV-MAE preprocessing takes frame
``int(i * total / 10)`` for i in 0..9 over the first 10 s, i.e. the same ten one-second steps, so the
frame count and spacing match; only frames whose index isn't a whole second apart in a variable
frame-rate video can differ by one frame.

Failures are raised as :class:`MediaError` with one of ``schema.FAILURE_REASONS``, so the pipeline
records a reason instead of crashing.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.codec.hwaccel import HWAccel, hwdevices_available
from av.video.reformatter import VideoReformatter
from PIL import Image

from avt_core.errors import UsageError
from avt_triplets.schema import AUDIO_SAMPLING_RATE, FAILURE_REASONS, FRAME_SHORT_SIDE

logger = logging.getLogger(__name__)

# A frame timestamp within this many seconds of a sampling time counts as "at" it (float pts rounding).
_TIME_EPS = 1e-4
# Decoded data that stops this much short of where the container says it should is a truncated file.
_TRUNCATION_TOLERANCE_S = 0.5

# Leading bytes of containers FFmpeg reads. Only used to tell a broken media file ("undecodable")
# from something that never was one ("not_media") when FFmpeg can't even open it.
_CONTAINER_SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4 / MOV / M4A / 3GP
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI / WAV
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
    (0, b"ID3"),
    (0, b"fLaC"),
)


class MediaError(Exception):
    """A clip that can't be used; ``reason`` is one of ``schema.FAILURE_REASONS``."""

    def __init__(self, reason: str, detail: str = ""):
        if reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {reason!r}; expected one of {FAILURE_REASONS}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self):  # keep reason/detail when sent back from a decode worker process
        return (type(self), (self.reason, self.detail))


@dataclass(frozen=True)
class MediaInfo:
    """What the container says about a file, before decoding anything."""

    path: str
    container_format: str
    duration_s: float | None
    has_audio: bool
    has_video: bool
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    audio_sampling_rate: int | None = None
    audio_channels: int | None = None


@dataclass
class DecodedClip:
    """One decoded clip window.

    Args:
        start_s (float): where the window starts in the video, in seconds.
        end_s (float): where the content really ends (earlier than ``start_s + duration`` for a short video).
        audio (sampling rate -> ``[samples]`` float32): mono audio in [-1, 1] starting at ``start_s``, one array
            per requested rate, ``round((end_s - start_s) * rate)`` samples long.
        frames (list of PIL RGB images): the picked frames, short side resized, one per sampling time.
        frame_times_s (list of float): each picked frame's timestamp relative to ``start_s``.
        model_frames (list of RGB uint8 ``(H, W, 3)`` arrays): the same frames at ``model_short_side`` (the
            captioner's size), empty when none was asked for.
        frame_arrays (list of RGB uint8 ``(H, W, 3)`` arrays): ``frames``' pixels as the scaler wrote them (a frame
            picked for two times is one array), so a caller handing frames to a model needs no conversion back.
    """

    start_s: float
    end_s: float
    audio: dict[int, np.ndarray]
    frames: list[Image.Image]
    frame_times_s: list[float] = field(default_factory=list)
    model_frames: list[np.ndarray] = field(default_factory=list)
    frame_arrays: list[np.ndarray] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise MediaError("unreadable_path", f"no such file: {path}")
    if path.is_dir():
        raise MediaError("unreadable_path", f"is a directory: {path}")
    if not os.access(path, os.R_OK):
        raise MediaError("unreadable_path", f"permission denied: {path}")
    if path.stat().st_size == 0:
        raise MediaError("not_media", "empty file (0 bytes)")


def _looks_like_media(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return any(head[offset : offset + len(sig)] == sig for offset, sig in _CONTAINER_SIGNATURES)


# (process, device) pairs whose failure to open a file was already logged as a warning.
_HWACCEL_WARNED: set[tuple[int, str]] = set()


def _open(path: Path, hwaccel: str | None = None) -> av.container.InputContainer:
    _check_readable(path)
    if hwaccel is not None:
        try:  # the device decodes what it can; FFmpeg falls back to software for codecs it can't
            accel = HWAccel(hwaccel, allow_software_fallback=True)
            return av.open(str(path), mode="r", metadata_errors="ignore", hwaccel=accel)
        except (av.error.FFmpegError, NotImplementedError, ValueError, OSError) as err:
            log = logger.debug if (os.getpid(), hwaccel) in _HWACCEL_WARNED else logger.warning
            _HWACCEL_WARNED.add((os.getpid(), hwaccel))
            log(
                "%s decoding failed to open %s (%s: %s): decoding on CPU",
                hwaccel,
                path,
                type(err).__name__,
                err,
            )
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:
        raise MediaError("unreadable_path", str(err)) from err
    except (av.error.FFmpegError, ValueError, OSError, UnicodeDecodeError) as err:
        # FFmpeg says InvalidData both for a text file and for an MP4 cut before its index: the
        # file's leading bytes tell the two apart.
        reason = "undecodable" if _looks_like_media(path) else "not_media"
        raise MediaError(reason, f"cannot open container: {err}") from err


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    # Cover art in audio files is a one-picture "video" stream; it is not a video.
    candidates = [
        s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    return candidates[0] if candidates else None


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream | None:
    return container.streams.audio[0] if container.streams.audio else None


def probe(path: str | os.PathLike) -> MediaInfo:
    """Read the container header only (no decoding). Raises :class:`MediaError`."""
    path = Path(path)
    with _open(path) as container:
        video = _video_stream(container)
        audio = _audio_stream(container)
        duration = container.duration / av.time_base if container.duration else None
        return MediaInfo(
            path=str(path),
            container_format=container.format.name,
            duration_s=duration,
            has_audio=audio is not None,
            has_video=video is not None,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            frame_rate=float(video.average_rate) if video is not None and video.average_rate else None,
            audio_sampling_rate=audio.codec_context.sample_rate if audio is not None else None,
            audio_channels=audio.codec_context.channels if audio is not None else None,
        )


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side at ``short_side`` and the aspect ratio kept."""
    if width <= height:
        return short_side, max(1, round(height * short_side / width))
    return max(1, round(width * short_side / height)), short_side


def usable_hwaccel(device_type: str | None) -> str | None:
    """``device_type`` if FFmpeg can decode video on it here, else None with the reason logged (a warning).

    Hardware decoding (``"cuda"``: NVDEC) is optional and off by default: for short clips sampled at 1 fps the
    CPU workers usually keep up, and the decoder's output is the same frames. A name this FFmpeg build does
    not know is a usage error; a known device that can't be opened (no GPU, no driver) is
    not: decoding falls back to the CPU.
    """
    if device_type is None:
        return None
    known = hwdevices_available()
    if device_type not in known:
        raise UsageError(f"unknown hardware video decoder {device_type!r}; this FFmpeg build has {known}")
    try:
        HWAccel(device_type).create(av.Codec("h264", "r"))
    except (av.error.FFmpegError, NotImplementedError, ValueError, OSError) as err:
        logger.warning(
            "%s video decoding unavailable (%s: %s; no device or driver visible to FFmpeg?): decoding on CPU",
            device_type,
            type(err).__name__,
            err,
        )
        return None
    logger.info("decoding video with %s (FFmpeg hwaccel; software fall-back per codec)", device_type)
    return device_type


def _float_channels(frame: av.AudioFrame) -> list[np.ndarray]:
    """Each channel as float32 in [-1, 1], from a frame of any sample format (planar float: views of its planes)."""
    if frame.format.name == "fltp":  # what AAC/Opus/Vorbis decoders output: no copy
        return [np.frombuffer(plane, np.float32, count=frame.samples) for plane in frame.planes]
    samples = frame.to_ndarray()
    if not frame.format.is_planar:  # interleaved [1, samples * channels] -> [channels, samples]
        samples = samples.reshape(-1, frame.layout.nb_channels).T
    if samples.dtype.kind in "iu":  # integer PCM -> [-1, 1]
        samples = samples / float(np.iinfo(samples.dtype).max + 1)
    return list(samples.astype(np.float32, copy=False))


def _downmix(channels: list[np.ndarray]) -> np.ndarray:
    """The channels' mean as a new float32 array; for stereo ``(left + right) * 0.5``, the same numbers as
    ``mean`` without stacking the channels first."""
    if len(channels) == 1:
        return np.array(channels[0], np.float32)
    if len(channels) == 2:
        mono = np.add(channels[0], channels[1])
        mono *= np.float32(0.5)
        return mono
    return np.stack(channels).mean(axis=0, dtype=np.float32)


class _AudioCollector:
    """Collects the window's decoded audio, then downmixes and resamples it once per rate.

    Decoded frames are kept at the source rate and layout in FFmpeg's own FIFOs (one per run of frames of the
    same sample format and channel layout): appending a frame is one copy in C, where turning each frame into
    arrays in Python cost more than decoding it. At the end each FIFO is read as one block, the channels
    averaged (the usual "mono" of librosa and torchaudio; FFmpeg's own stereo->mono matrix scales each
    channel by 1/sqrt(2) instead, 3 dB louder for in-phase audio; CAV-MAE's ``sox remix 1`` keeps the first
    channel only) and one ``av.AudioResampler`` per rate converts the mono signal in a single call.
    """

    def __init__(self, rates: Sequence[int], start_s: float, window_end_s: float):
        self.rates = tuple(dict.fromkeys(int(r) for r in rates))
        self.start_s = start_s
        self.window_end_s = window_end_s
        self.segments: list[av.AudioFifo] = []
        self.source_rate: int | None = None
        self.first_time: float | None = None
        self.content_end_s: float | None = None
        self.done = False

    def add(self, frame: av.AudioFrame, fallback_time: float) -> None:
        time = frame.time if frame.time is not None else fallback_time
        frame_end = time + frame.samples / frame.sample_rate
        if frame_end <= self.start_s:
            return
        if time >= self.window_end_s:
            self.done = True
            return
        if self.source_rate is None:
            self.source_rate = frame.sample_rate
            self.first_time = time
        elif frame.sample_rate != self.source_rate:
            raise MediaError("undecodable", "audio sampling rate changes inside the clip")
        self.content_end_s = frame_end
        frame.pts = (
            None  # the FIFO would insist on gapless timestamps; frames are kept back to back as before
        )
        try:
            self.segments[-1].write(frame)
        except (IndexError, ValueError):  # the first frame, or the format or layout changed: a new run
            self.segments.append(av.AudioFifo())
            self.segments[-1].write(frame)
        if frame_end >= self.window_end_s:
            self.done = True

    def _mono(self) -> np.ndarray:
        blocks = [_downmix(_float_channels(fifo.read())) for fifo in self.segments if fifo.samples]
        if not blocks:
            return np.zeros(0, np.float32)
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    def _resample(self, mono: np.ndarray, rate: int) -> np.ndarray:
        if rate == self.source_rate:
            return mono
        frame = av.AudioFrame.from_ndarray(mono[None, :], format="flt", layout="mono")
        frame.sample_rate = self.source_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        out = [f.to_ndarray()[0] for f in resampler.resample(frame)]
        out += [f.to_ndarray()[0] for f in resampler.resample(None)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def finish(self, declared_end_s: float | None) -> tuple[dict[int, np.ndarray], float]:
        """Audio per rate aligned to ``start_s`` (leading gap zero-filled), and where it ends.

        The last AAC frame runs past the media's end (encoder padding), so the end is capped at the
        container's declared duration when there is one.
        """
        if self.first_time is None:
            return {r: np.zeros(0, np.float32) for r in self.rates}, self.start_s
        end_s = min(self.content_end_s, self.window_end_s, declared_end_s or math.inf)
        mono = self._mono()
        audio = {}
        for rate in self.rates:
            samples = self._resample(mono, rate)
            offset = round((self.start_s - self.first_time) * rate)
            if offset > 0:
                samples = samples[offset:]
            elif offset < 0:  # stream starts a little after the window: keep audio and frames aligned
                samples = np.concatenate([np.zeros(-offset, np.float32), samples])
            wanted = max(0, round((end_s - self.start_s) * rate))
            audio[rate] = np.ascontiguousarray(samples[:wanted], dtype=np.float32)
        return audio, end_s


# One scaler per process: it caches FFmpeg's SwsContext, which costs more than the scaling itself.
# A forked decode worker must not reuse its parent's: the context's slice threads don't exist in the
# child, and scaling would wait on them forever. So the cache is keyed by pid, and scaling is asked
# for one thread (parallelism comes from worker processes).
_REFORMATTERS: dict[int, VideoReformatter] = {}


def _reformatter() -> VideoReformatter:
    pid = os.getpid()
    if pid not in _REFORMATTERS:
        _REFORMATTERS.clear()
        _REFORMATTERS[pid] = VideoReformatter()
    return _REFORMATTERS[pid]


def _rgb(frame: av.VideoFrame, short_side: int) -> np.ndarray:
    """``frame`` as RGB with its short side at ``short_side`` (0: its own size); AREA when shrinking (no
    aliasing), BICUBIC when enlarging."""
    width, height = (
        (frame.width, frame.height)
        if short_side == 0
        else resized_size(frame.width, frame.height, short_side)
    )
    shrink = width * height < frame.width * frame.height
    rgb = _reformatter().reformat(
        frame, width, height, "rgb24", interpolation="AREA" if shrink else "BICUBIC", threads=1
    )
    return rgb.to_ndarray()


class _FramePicker:
    """Keeps, for each sampling time, the first decoded frame at or after it, resized to RGB."""

    def __init__(
        self,
        start_s: float,
        window_end_s: float,
        fps: float,
        short_side: int,
        frame_step: float,
        model_short_side: int | None = None,
    ):
        count = max(1, math.ceil((window_end_s - start_s) * fps - 1e-9))
        self.targets = [start_s + k / fps for k in range(count)]
        self.window_end_s = window_end_s
        self.start_s = start_s
        self.short_side = short_side
        self.frame_step = frame_step
        self.frames: list[Image.Image] = []
        self.arrays: list[np.ndarray] = []  # the same pixels as ``frames``, kept: a model takes arrays
        self.model_short_side = model_short_side  # a second size for the captioner (0: the frame's own)
        self.model_frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.content_end_s: float | None = None
        self.done = False

    def needs(self, time: float | None) -> bool:
        """Whether a frame shown at ``time`` may be the pick for the next sampling time.

        A constant-rate video has a frame within one step after every time, so frames further away
        can be skipped when nothing references them (a tenth of a step of margin covers timestamp
        rounding).
        """
        if time is None or len(self.frames) >= len(self.targets):
            return True
        target = self.targets[len(self.frames)]
        return target - _TIME_EPS <= time < target + 1.1 * self.frame_step or time >= self.window_end_s

    def add(self, frame: av.VideoFrame, time: float, frame_duration: float) -> None:
        if time >= self.window_end_s:
            self.done = True
            return
        if time + frame_duration <= self.start_s:
            return
        self.content_end_s = time + frame_duration
        image = None
        while len(self.frames) < len(self.targets) and time >= self.targets[len(self.frames)] - _TIME_EPS:
            if image is None:
                array = _rgb(frame, self.short_side)
                image = Image.fromarray(array)
                model_image = None if self.model_short_side is None else _rgb(frame, self.model_short_side)
            self.frames.append(image)
            self.arrays.append(array)
            if model_image is not None:
                self.model_frames.append(model_image)
            self.times.append(time - self.start_s)
        if len(self.frames) == len(self.targets):
            # Every sampling time has its frame: the rest of the window needs no decoding.
            self.done = True

    def end_s(self, declared_end_s: float | None) -> float:
        """Where the video content ends inside the window."""
        if self.done and len(self.frames) == len(self.targets):
            # Decoding stopped at the last sampling time; the stream itself says how far it goes.
            return min(self.window_end_s, declared_end_s or self.window_end_s)
        return min(self.content_end_s or self.start_s, self.window_end_s)


class _WindowDemuxer:
    """One sequential pass over the interleaved packets from the seek point: video frames go to the picker,
    audio frames to the collector, until both have the whole window.

    Packet and frame decoding errors are collected rather than raised: a few bad packets in an otherwise
    complete clip are tolerated, and :func:`_finished_clip` decides from how much came through.
    """

    def __init__(
        self,
        video: av.video.stream.VideoStream,
        audio: av.audio.stream.AudioStream,
        picker: _FramePicker,
        collector: _AudioCollector,
        frame_step: float,
        skip_unused_frames: bool,
    ):
        self.video = video
        self.audio = audio
        self.video_ctx = video.codec_context
        self.video_tb = float(video.time_base) if video.time_base else None
        tb = video.time_base  # decoded frames carry their stream's time base
        self.video_tb_ratio = (tb.numerator, tb.denominator) if tb else None
        self.picker = picker
        self.collector = collector
        self.frame_step = frame_step
        self.skip_unused_frames = skip_unused_frames
        self.errors: list[str] = []
        self.video_count = 0
        self.audio_clock = collector.start_s
        self.skipping = False

    def run(self, container: av.container.InputContainer) -> list[str]:
        """Decode the window; returns the errors met on the way."""
        picker, collector, video_index = self.picker, self.collector, self.video.index
        try:
            for packet in container.demux(self.video, self.audio):
                is_video = packet.stream_index == video_index
                if (picker.done if is_video else collector.done) and packet.size:
                    if picker.done and collector.done:
                        break
                    continue
                if is_video and self.skip_unused_frames and packet.size:
                    self._set_frame_skipping(packet)
                for frame in self._decode(packet, is_video):
                    if is_video:
                        self._add_video_frame(frame)
                    else:
                        self._add_audio_frame(frame)
        except (av.error.FFmpegError, ValueError) as err:  # demuxer gave up: truncated or corrupt file
            self.errors.append(f"demux: {err}")
        return self.errors

    def _set_frame_skipping(self, packet: av.Packet) -> None:
        """Let the decoder drop unreferenced frames that are not near the next sampling time."""
        packet_time = packet.pts * self.video_tb if packet.pts is not None and self.video_tb else None
        skip = not packet.is_keyframe and not self.picker.needs(packet_time)
        if skip != self.skipping:
            self.video_ctx.skip_frame = "NONREF" if skip else "DEFAULT"
            self.skipping = skip

    def _decode(self, packet: av.Packet, is_video: bool) -> list[av.frame.Frame]:
        try:
            return packet.decode()
        except (av.error.InvalidDataError, av.error.EOFError, ValueError) as err:
            self.errors.append(f"{'video' if is_video else 'audio'} packet: {err}")
            return []

    def _add_video_frame(self, frame: av.VideoFrame) -> None:
        time = frame.time if frame.time is not None else self.video_count * self.frame_step
        ticks = getattr(frame, "duration", None)
        # float(duration * time_base) with int arithmetic (Python rounds int / int exactly as Fraction's float does),
        # without building Fractions for every frame
        duration = (
            ticks * self.video_tb_ratio[0] / self.video_tb_ratio[1]
            if ticks and self.video_tb_ratio
            else self.frame_step
        )
        self.video_count += 1
        self.picker.add(frame, time, duration)

    def _add_audio_frame(self, frame: av.AudioFrame) -> None:
        self.collector.add(frame, self.audio_clock)
        time = frame.time if frame.time is not None else self.audio_clock
        self.audio_clock = time + frame.samples / frame.sample_rate


def _av_streams(
    container: av.container.InputContainer,
) -> tuple[av.video.stream.VideoStream, av.audio.stream.AudioStream]:
    """The video and audio stream a clip needs; a container lacking either is a recorded skip."""
    video = _video_stream(container)
    audio = _audio_stream(container)
    if video is None and audio is None:
        raise MediaError("not_media", f"no audio or video stream in {container.format.name} container")
    if video is None:
        raise MediaError("no_video_stream", f"{container.format.name} container has audio only")
    if audio is None:
        raise MediaError("no_audio_stream", f"{container.format.name} container has video only")
    return video, audio


def _set_decoder_threads(video: av.video.stream.VideoStream, decoder_threads: int) -> None:
    video.codec_context.thread_count = decoder_threads
    if decoder_threads != 1:
        video.codec_context.thread_type = "AUTO"


def _seek(container: av.container.InputContainer, start_s: float) -> None:
    """Seek to the keyframe at or before ``start_s``; both streams continue from there."""
    if start_s > 0:
        try:
            container.seek(int(start_s * av.time_base), backward=True, any_frame=False)
        except av.error.FFmpegError:
            pass  # not seekable: decode from the beginning and skip ahead


def _finished_clip(
    picker: _FramePicker, collector: _AudioCollector, declared_end_s: float | None, errors: list[str]
) -> DecodedClip:
    """The decoded window, or :class:`MediaError` when errors cut it short or a stream had nothing in it."""
    start_s, window_end_s = picker.start_s, picker.window_end_s
    audio_arrays, audio_end_s = collector.finish(declared_end_s)
    video_end_s = picker.end_s(declared_end_s)
    has_audio = audio_arrays[collector.rates[0]].size > 0
    if errors:
        expected_end = min(window_end_s, declared_end_s) if declared_end_s else window_end_s
        got_end = max(audio_end_s, video_end_s)
        if not picker.frames or not has_audio:
            raise MediaError("undecodable", "; ".join(errors[:3]))
        if got_end < expected_end - _TRUNCATION_TOLERANCE_S:
            raise MediaError(
                "undecodable",
                f"data stops at {got_end:.2f}s of {expected_end:.2f}s (truncated?): {errors[0]}",
            )
    if not picker.frames:
        raise MediaError("zero_length", f"no video frame in [{start_s:g}, {window_end_s:g}) s")
    if not has_audio:
        raise MediaError("zero_length", f"no audio samples in [{start_s:g}, {window_end_s:g}) s")
    return DecodedClip(
        start_s=float(start_s),
        end_s=float(max(audio_end_s, video_end_s)),
        audio=audio_arrays,
        frames=picker.frames,
        frame_times_s=picker.times,
        model_frames=picker.model_frames,
        frame_arrays=picker.arrays,
    )


def decode_clip(
    path: str | os.PathLike,
    *,
    start_s: float = 0.0,
    duration_s: float = 10.0,
    fps: float = 1.0,
    sampling_rates: Sequence[int] = (AUDIO_SAMPLING_RATE,),
    short_side: int = FRAME_SHORT_SIDE,
    decoder_threads: int = 1,
    skip_unused_frames: bool = True,
    hwaccel: str | None = None,
    model_short_side: int | None = None,
) -> DecodedClip:
    """Decode the window ``[start_s, start_s + duration_s)`` of ``path``.

    Returns mono float32 audio at every rate in ``sampling_rates`` and RGB frames at ``fps`` with the
    short side resized to ``short_side``. A video shorter than the window keeps what it has
    (``end_s`` says where it really ends). ``decoder_threads=1`` suits one decode per worker
    process; 0 lets FFmpeg pick. ``skip_unused_frames`` lets the decoder drop frames that no other
    frame references and that are not near a sampling time (same picked frames, less work).
    ``hwaccel``: an FFmpeg hardware device type (e.g. ``"cuda"``) checked by :func:`usable_hwaccel`; a file
    the device can't open is decoded on the CPU. ``model_short_side``: the frames also at this short side (0: the
    video's own size) as ``model_frames``, each resized from the decoded frame itself. Raises
    :class:`MediaError` for anything that can't be used.
    """
    if duration_s <= 0 or fps <= 0:
        raise ValueError("duration_s and fps must be positive")
    window_end_s = start_s + duration_s
    container = _open(Path(path), hwaccel)
    try:
        video, audio = _av_streams(container)
        declared_end_s = container.duration / av.time_base if container.duration else None
        _set_decoder_threads(video, decoder_threads)
        constant_rate = bool(video.average_rate) and video.average_rate == video.guessed_rate
        frame_step = 1.0 / float(video.average_rate) if video.average_rate else 1.0 / 25.0
        skip_unused_frames = skip_unused_frames and constant_rate and decoder_threads == 1
        _seek(container, start_s)
        picker = _FramePicker(start_s, window_end_s, fps, short_side, frame_step, model_short_side)
        collector = _AudioCollector(sampling_rates, start_s, window_end_s)
        errors = _WindowDemuxer(video, audio, picker, collector, frame_step, skip_unused_frames).run(
            container
        )
        return _finished_clip(picker, collector, declared_end_s, errors)
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, RuntimeError, OSError) as err:
        raise MediaError("undecodable", f"{type(err).__name__}: {err}") from err
    finally:
        container.close()
