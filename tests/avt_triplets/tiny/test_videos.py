"""Synthetic videos are real MP4s whose decoded audio and picture carry their class."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from avt_triplets.tiny.videos import LABEL_SEPARATOR, SYNTHETIC_CLASSES, make_synthetic_videos

CLASSES = {cls.name: cls for cls in SYNTHETIC_CLASSES}


def _rows(csv_path: Path) -> list[dict]:
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def _decode(path: Path) -> dict:
    """Decode with PyAV: stereo audio averaged to mono, the video frames, the streams' metadata."""
    import av

    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        info = {
            "video_codec": video.codec_context.name,
            "audio_codec": audio.codec_context.name,
            "fps": float(video.average_rate),
            "size": (video.width, video.height),
            "sample_rate": audio.rate,
            "channels": audio.channels,
        }
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        container.seek(0)
        chunks = [frame.to_ndarray() for frame in container.decode(audio=0)]
    samples = np.concatenate(chunks, axis=1)  # planar float: [channels, samples]
    info["frames"] = frames
    info["audio"] = samples.mean(axis=0)
    return info


def _peak_frequencies(signal: np.ndarray, sample_rate: int, count: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    freqs = np.fft.rfftfreq(len(signal), 1 / sample_rate)
    peaks = []
    for _ in range(count):
        i = int(np.argmax(spectrum))
        peaks.append(float(freqs[i]))
        spectrum[max(0, i - 50) : i + 50] = 0  # suppress this peak's neighbourhood
    return peaks


def _colour_fraction(frame: np.ndarray, colour: tuple[int, int, int]) -> float:
    distance = np.abs(frame.astype(np.int16) - np.array(colour, dtype=np.int16)).max(axis=-1)
    return float((distance < 40).mean())


def test_labels_csv_lists_every_clip(synthetic_videos):
    rows = _rows(synthetic_videos)
    assert list(rows[0]) == ["video_path", "start_s", "labels"]
    assert len(rows) == 8
    assert {row["labels"] for row in rows} == {cls.name for cls in SYNTHETIC_CLASSES[:4]}
    for row in rows:
        assert (synthetic_videos.parent / row["video_path"]).is_file()
        assert not Path(row["video_path"]).is_absolute()


def test_videos_decode_with_matching_sound_and_picture(synthetic_videos):
    rows = _rows(synthetic_videos)
    durations, sizes = [], set()
    for row in rows:
        decoded = _decode(synthetic_videos.parent / row["video_path"])
        cls = CLASSES[row["labels"]]
        assert decoded["video_codec"] == "h264" and decoded["audio_codec"] == "aac"
        assert decoded["sample_rate"] == 44_100 and decoded["channels"] == 2
        duration = len(decoded["audio"]) / decoded["sample_rate"]
        durations.append(duration)
        sizes.add(decoded["size"])
        assert abs(len(decoded["frames"]) - duration * decoded["fps"]) <= 1.5
        assert decoded["frames"][0].shape == (decoded["size"][1], decoded["size"][0], 3)

        (peak,) = _peak_frequencies(decoded["audio"], decoded["sample_rate"], 1)
        assert peak == pytest.approx(cls.frequency_hz, rel=0.01), row["video_path"]
        middle = decoded["frames"][len(decoded["frames"]) // 2]
        assert _colour_fraction(middle, cls.color) > 0.02, row["video_path"]
        others = [c for c in SYNTHETIC_CLASSES if c.color != cls.color]
        assert max(_colour_fraction(middle, c.color) for c in others) < 0.005
        if duration > 10:
            assert float(row["start_s"]) > 0
            assert float(row["start_s"]) + 10 <= duration
        else:
            assert float(row["start_s"]) == 0
    assert min(durations) < 10 < max(durations)
    assert len(sizes) > 1


def test_mixed_clips_carry_two_labels_two_tones_two_shapes(tmp_path):
    csv_path = make_synthetic_videos(
        tmp_path, num_classes=3, clips_per_class=1, durations_s=(2.0,), sizes=((160, 120),), num_mixed=1
    )
    mixed = [row for row in _rows(csv_path) if LABEL_SEPARATOR in row["labels"]]
    assert len(mixed) == 1
    classes = [CLASSES[name] for name in mixed[0]["labels"].split(LABEL_SEPARATOR)]
    decoded = _decode(tmp_path / mixed[0]["video_path"])
    peaks = _peak_frequencies(decoded["audio"], decoded["sample_rate"], 2)
    assert sorted(peaks) == pytest.approx(sorted(c.frequency_hz for c in classes), rel=0.01)
    middle = decoded["frames"][len(decoded["frames"]) // 2]
    assert all(_colour_fraction(middle, c.color) > 0.01 for c in classes)


def test_rejects_more_classes_than_defined(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        make_synthetic_videos(tmp_path, num_classes=len(SYNTHETIC_CLASSES) + 1)
