"""PyAV decoding of one clip: window, rates, frame picking, sizes, typed failures."""

from __future__ import annotations

import fractions
import math
import multiprocessing
import pickle

import av
import numpy as np
import pytest

from avt_triplets.media import MediaError, decode_clip, probe, resized_size
from avt_triplets.tiny.videos import SYNTHETIC_CLASSES, write_synthetic_video


def _dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


def _numbered_video(path, seconds: float, fps: int = 25, size=(96, 64)) -> None:
    """Frame i is uniformly grey at level 8 * (i % 32), so a decoded frame tells its index."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"crf": "10"})
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream("aac", rate=16_000, layout="mono")
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(
                np.full((size[1], size[0], 3), 8 * (i % 32), np.uint8), format="rgb24"
            )
            frame.pts, frame.time_base = i, fractions.Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = np.zeros(int(seconds * 16_000), np.float32)
        for start in range(0, samples.size, 1024):
            frame = av.AudioFrame.from_ndarray(
                samples[None, start : start + 1024].copy(), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16_000, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def tone_video(tmp_path_factory):
    """12 s, 320x240, stereo 44.1 kHz AAC carrying a 500 Hz tone (+ octave)."""
    path = tmp_path_factory.mktemp("media") / "tone.mp4"
    cls = next(c for c in SYNTHETIC_CLASSES if c.frequency_hz == 500.0)
    return write_synthetic_video(path, [cls], duration_s=12.0, size=(320, 240), fps=10)


def test_default_window_rates_and_frames(tone_video):
    clip = decode_clip(tone_video, sampling_rates=(16_000, 48_000))
    assert (clip.start_s, clip.end_s) == (0.0, 10.0)
    assert set(clip.audio) == {16_000, 48_000}
    for rate, samples in clip.audio.items():
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert samples.size == 10 * rate
        assert abs(_dominant_hz(samples, rate) - 500.0) < 2.0
    assert clip.frame_times_s == pytest.approx([float(k) for k in range(10)])
    assert all(image.mode == "RGB" and image.size == (299, 224) for image in clip.frames)


def test_window_offset_and_short_clip(tone_video):
    clip = decode_clip(tone_video, start_s=3.0, duration_s=10.0, fps=2)
    # only 9 s of video are left after 3 s: the clip keeps them and says so
    assert clip.start_s == 3.0 and clip.end_s == pytest.approx(12.0, abs=0.05)
    assert clip.audio[16_000].size == pytest.approx(9 * 16_000, abs=16)
    assert clip.frame_times_s == pytest.approx([k / 2 for k in range(18)])


def test_frame_at_or_just_after_each_time(tmp_path):
    path = tmp_path / "numbered.mp4"
    _numbered_video(path, seconds=4.0, fps=25)
    # times 0.1, 0.4, 0.7, ... fall between frames (every 40 ms): the pick is the next frame
    clip = decode_clip(path, start_s=0.1, duration_s=3.0, fps=10 / 3)
    for time, image in zip(clip.frame_times_s, clip.frames):
        wanted = int(np.ceil((0.1 + time) * 25 - 1e-6))
        level = float(np.asarray(image).mean())
        assert abs(level - 8 * (wanted % 32)) < 3, (time, level, wanted)
    expected = [np.ceil((0.1 + k * 0.3) * 25 - 1e-6) / 25 - 0.1 for k in range(10)]
    assert clip.frame_times_s == pytest.approx(expected, abs=1e-6)


@pytest.fixture(scope="module")
def ntsc_bframes_video(tmp_path_factory):
    """12 s at 29.97 fps (1/30000 time base) with B-frames: the hard case for exact frame skipping."""
    path = tmp_path_factory.mktemp("media") / "ntsc.mp4"
    rate = fractions.Fraction(30000, 1001)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate, options={"preset": "medium", "bf": "3"})
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        audio = container.add_stream("aac", rate=48_000, layout="mono")
        rng = np.random.default_rng(0)
        for i in range(int(12 * rate)):
            image = np.full((120, 160, 3), (i * 7) % 256, np.uint8)
            image[rng.integers(0, 120), :] = 255  # some motion, so frames differ
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        silence = np.zeros(12 * 48_000, np.float32)
        for start in range(0, silence.size, 1024):
            frame = av.AudioFrame.from_ndarray(
                silence[None, start : start + 1024].copy(), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 48_000, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("start_s, fps", [(0.0, 1.0), (0.37, 1.0), (1.01, 2.5), (0.5, 3.0)])
def test_skipping_unused_frames_picks_the_same_frames(ntsc_bframes_video, start_s, fps):
    fast = decode_clip(ntsc_bframes_video, start_s=start_s, fps=fps)
    full = decode_clip(ntsc_bframes_video, start_s=start_s, fps=fps, skip_unused_frames=False)
    assert len(fast.frames) == math.ceil(10 * fps)
    assert fast.frame_times_s == full.frame_times_s
    for a, b in zip(fast.frames, full.frames):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.array_equal(fast.audio[16_000], full.audio[16_000])


def test_resized_size_keeps_aspect():
    assert resized_size(320, 240, 224) == (299, 224)
    assert resized_size(240, 320, 224) == (224, 299)
    assert resized_size(100, 50, 224) == (448, 224)  # enlarged


def test_probe(tone_video):
    info = probe(tone_video)
    assert info.has_audio and info.has_video
    assert (info.width, info.height, info.audio_sampling_rate, info.audio_channels) == (320, 240, 44_100, 2)
    assert info.duration_s == pytest.approx(12.0, abs=0.1)


def test_bad_files_raise_typed_errors(bad_media, tmp_path):
    seen = {}
    for name, (path, _reason) in bad_media.items():
        with pytest.raises(MediaError) as caught:
            decode_clip(path)
        seen[name] = caught.value.reason
        assert caught.value.detail
    assert seen == {name: reason for name, (_, reason) in bad_media.items()}
    with pytest.raises(MediaError, match="unreadable_path"):
        decode_clip(tmp_path)  # a directory


def _frame_count(path: str) -> int:
    return len(decode_clip(path).frames)


def test_decoding_in_a_forked_worker_after_the_parent_decoded(tone_video):
    # The parent's cached scaler must not be reused by a forked decode worker (its threads are gone).
    decode_clip(tone_video)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_frame_count, (str(tone_video),)).get(timeout=30) == 10


def test_media_error_survives_pickling():
    error = pickle.loads(pickle.dumps(MediaError("zero_length", "no frames")))
    assert (error.reason, error.detail) == ("zero_length", "no frames")
    with pytest.raises(ValueError):
        MediaError("not_a_reason")


def _pcm_stereo_mov(path, seconds: float = 3.0, rate: int = 22_050) -> np.ndarray:
    """A 64x48 H.264 + interleaved 16-bit stereo PCM file; returns the PCM written, [2, samples] int16."""
    rng = np.random.default_rng(1)
    pcm = rng.integers(-20_000, 20_000, (2, int(seconds * rate)), dtype=np.int16)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=rate, layout="stereo")
        for i in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i % 256, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        for start in range(0, pcm.shape[1], 1000):
            block = np.ascontiguousarray(pcm[:, start : start + 1000].T.reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return pcm


def _mono_frame_by_frame(path, rate: int, seconds: float) -> np.ndarray:
    """The window's audio decoded and mixed one frame at a time in numpy: what the FIFO path must equal."""
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            if frame.time + frame.samples / frame.sample_rate <= 0 or frame.time >= seconds:
                continue
            samples = frame.to_ndarray()
            if not frame.format.is_planar:
                samples = samples.reshape(-1, frame.layout.nb_channels).T
            if samples.dtype.kind == "i":
                samples = samples / 32768.0
            chunks.append(samples.astype(np.float32).mean(axis=0, dtype=np.float32))
    return np.concatenate(chunks)[: round(seconds * rate)]


def test_audio_at_the_source_rate_equals_a_frame_by_frame_mix(tone_video, tmp_path):
    # AAC: planar float frames; PCM in a MOV: interleaved 16-bit. No resampling at the source rate, so the
    # collected mono must be the per-frame mix to the bit.
    pcm_path = tmp_path / "pcm.mov"
    pcm = _pcm_stereo_mov(pcm_path)
    for path, rate, seconds in ((tone_video, 44_100, 10.0), (pcm_path, 22_050, 3.0)):
        clip = decode_clip(path, duration_s=seconds, sampling_rates=(rate,))
        expected = _mono_frame_by_frame(path, rate, seconds)
        assert clip.audio[rate].size == expected.size > 0
        assert np.array_equal(clip.audio[rate], expected)
    direct = (pcm[0].astype(np.float32) / 32768 + pcm[1].astype(np.float32) / 32768) * np.float32(0.5)
    assert np.array_equal(
        decode_clip(pcm_path, duration_s=3.0, sampling_rates=(22_050,)).audio[22_050], direct
    )


def test_frame_arrays_are_the_frames_pixels(tone_video):
    clip = decode_clip(tone_video, fps=2, duration_s=3.0, model_short_side=96)
    assert len(clip.frame_arrays) == len(clip.frames) == len(clip.model_frames) == 6
    for array, image, model in zip(clip.frame_arrays, clip.frames, clip.model_frames):
        assert array.dtype == np.uint8 and array.shape == (224, 299, 3)
        assert np.array_equal(array, np.asarray(image))
        assert model.shape == (96, 128, 3) and model.dtype == np.uint8
