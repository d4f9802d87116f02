"""Synthetic audio-visual clips whose sound and picture agree by class, written with PyAV.

Class k is a tone at ``frequency_hz`` (plus its octave and a little noise) heard while a shape of
``color`` drifts around the frame, so an audio-visual model trained on these clips has something
to learn (and retrieval has a right answer), and a test can check the decoded audio's dominant
frequency. Files are real MP4s (H.264 + AAC, stereo, 44.1 kHz by default) of several sizes and
lengths, some shorter and some longer than the 10 s clip window, listed in ``labels.csv``
(``video_path,start_s,labels``; labels separated by ``;``) like a VGGSound/AudioSet list.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS_CSV = "labels.csv"
LABEL_SEPARATOR = ";"


@dataclass(frozen=True)
class SyntheticClass:
    """One class: what it sounds like and what it looks like."""

    name: str
    frequency_hz: float
    color: tuple[int, int, int]
    shape: str  # circle | square | triangle | diamond


# Tones half an octave apart (all below 4 kHz, so they survive resampling to 16 kHz); distinct hues.
SYNTHETIC_CLASSES: tuple[SyntheticClass, ...] = (
    SyntheticClass("red_circle_250hz", 250.0, (230, 40, 40), "circle"),
    SyntheticClass("green_square_354hz", 353.6, (40, 200, 60), "square"),
    SyntheticClass("blue_triangle_500hz", 500.0, (50, 90, 240), "triangle"),
    SyntheticClass("yellow_diamond_707hz", 707.1, (235, 220, 40), "diamond"),
    SyntheticClass("magenta_circle_1000hz", 1000.0, (220, 50, 220), "circle"),
    SyntheticClass("cyan_square_1414hz", 1414.2, (40, 220, 220), "square"),
    SyntheticClass("orange_triangle_2000hz", 2000.0, (250, 140, 20), "triangle"),
    SyntheticClass("white_diamond_2828hz", 2828.4, (245, 245, 245), "diamond"),
)


def _shape_mask(shape: str, height: int, width: int, cx: float, cy: float, radius: float) -> np.ndarray:
    ys, xs = np.ogrid[:height, :width]
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        return dx * dx + dy * dy <= radius * radius
    if shape == "square":
        return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= radius
    if shape == "triangle":  # apex up: inside when below the two slanted edges and above the base
        return (dy <= radius) & (dy >= -radius + 2 * np.abs(dx))
    raise ValueError(f"unknown shape {shape!r}")


def _render_frames(
    classes: Sequence[SyntheticClass],
    width: int,
    height: int,
    num_frames: int,
    fps: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """RGB frames [T, H, W, 3]: a dim noisy gradient background, one drifting shape per class."""
    gradient = np.linspace(20, 60, width)[None, :] + np.linspace(0, 20, height)[:, None]
    # A few noisy backgrounds, cycled: the picture is never perfectly static, and rendering stays cheap.
    backgrounds = [
        np.repeat(
            np.clip(gradient + rng.normal(0, 3, size=(height, width)), 0, 255).astype(np.uint8)[..., None],
            3,
            2,
        )
        for _ in range(3)
    ]
    radius = min(width, height) / (5 if len(classes) == 1 else 7)
    phases = rng.uniform(0, 2 * np.pi, size=len(classes))
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frames[t] = backgrounds[t % len(backgrounds)]
        for i, cls in enumerate(classes):
            angle = phases[i] + 2 * np.pi * 0.1 * t / fps  # a slow orbit: the shape moves a little
            cx = width * (0.5 + (i - (len(classes) - 1) / 2) * 0.35) + 0.12 * width * np.cos(angle)
            cy = height * 0.5 + 0.12 * height * np.sin(angle)
            frames[t][_shape_mask(cls.shape, height, width, cx, cy, radius)] = cls.color
    return frames


def _render_audio(
    classes: Sequence[SyntheticClass], num_samples: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Stereo float32 [2, N]: each class's tone plus its octave, soft noise, 20 ms fades."""
    t = np.arange(num_samples, dtype=np.float64) / sample_rate
    mono = np.zeros(num_samples, dtype=np.float64)
    for cls in classes:
        phase = rng.uniform(0, 2 * np.pi)
        mono += np.sin(2 * np.pi * cls.frequency_hz * t + phase) + 0.3 * np.sin(
            4 * np.pi * cls.frequency_hz * t + phase
        )
    mono *= 0.5 / max(1, len(classes))
    mono += rng.normal(0, 0.01, size=num_samples)
    fade = min(num_samples // 2, int(0.02 * sample_rate))
    if fade:
        ramp = np.linspace(0, 1, fade)
        mono[:fade] *= ramp
        mono[-fade:] *= ramp[::-1]
    return np.stack([mono, 0.8 * mono]).astype(np.float32)


def write_synthetic_video(
    path: str | Path,
    classes: Sequence[SyntheticClass],
    *,
    duration_s: float,
    size: tuple[int, int] = (320, 240),
    fps: int = 10,
    sample_rate: int = 44_100,
    seed: int = 0,
) -> Path:
    """Write one MP4 (H.264 yuv420p + stereo AAC) showing and sounding ``classes``."""
    import av

    path = Path(path)
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {size}")
    rng = np.random.default_rng(seed)
    num_frames = max(1, round(duration_s * fps))
    frames = _render_frames(classes, width, height, num_frames, fps, rng)
    audio = _render_audio(classes, round(duration_s * sample_rate), sample_rate, rng)

    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "28"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # FFmpeg's default AAC coder costs 3x more for no benefit here.
        sound = container.add_stream("aac", rate=sample_rate, layout="stereo", options={"aac_coder": "fast"})
        for frame_array in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame_array, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        chunk = 1024  # the AAC frame size
        for start in range(0, audio.shape[1], chunk):
            block = np.ascontiguousarray(audio[:, start : start + chunk])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    return path


def make_synthetic_videos(
    output_dir: str | Path,
    num_classes: int = 4,
    clips_per_class: int = 3,
    durations_s: Sequence[float] = (4.0, 7.0, 12.0),
    sizes: Sequence[tuple[int, int]] = ((320, 240), (160, 120), (256, 144)),
    fps: int = 10,
    sample_rate: int = 44_100,
    num_mixed: int = 0,
    seed: int = 0,
) -> Path:
    """Write ``num_classes * clips_per_class`` single-class clips (+ ``num_mixed`` two-class clips
    with two labels) under ``output_dir/videos`` and return the path of ``output_dir/labels.csv``.

    Clip i gets ``durations_s[i % len]`` and ``sizes[i % len]``, so lengths and sizes vary within
    every class. ``start_s`` is 0 except for clips longer than 10 s, which start a little later so
    the window offset is exercised. Classes are ``SYNTHETIC_CLASSES[:num_classes]``.
    """
    if not 1 <= num_classes <= len(SYNTHETIC_CLASSES):
        raise ValueError(f"num_classes must be in 1..{len(SYNTHETIC_CLASSES)}, got {num_classes}")
    output_dir = Path(output_dir)
    video_dir = output_dir / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    classes = SYNTHETIC_CLASSES[:num_classes]
    rng = np.random.default_rng(seed)

    plan: list[tuple[str, tuple[SyntheticClass, ...]]] = []
    for cls in classes:
        plan += [(f"{cls.name}_{j:03d}", (cls,)) for j in range(clips_per_class)]
    for j in range(num_mixed):
        first = j % num_classes
        second = (first + 1 + j // num_classes) % num_classes
        if first != second:
            pair = (classes[first], classes[second])
            plan.append((f"mixed_{pair[0].name}_{pair[1].name}_{j:03d}", pair))

    rows = []
    for i, (stem, clip_classes) in enumerate(plan):
        duration = float(durations_s[i % len(durations_s)])
        relative = Path("videos") / f"{stem}.mp4"
        write_synthetic_video(
            output_dir / relative,
            clip_classes,
            duration_s=duration,
            size=tuple(sizes[i % len(sizes)]),
            fps=fps,
            sample_rate=sample_rate,
            seed=int(rng.integers(0, 2**31)),
        )
        start_s = round(min(1.0, (duration - 10.0) / 2), 3) if duration > 10.0 else 0.0
        rows.append((relative.as_posix(), start_s, LABEL_SEPARATOR.join(c.name for c in clip_classes)))

    csv_path = output_dir / LABELS_CSV
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video_path", "start_s", "labels"])
        writer.writerows(rows)
    return csv_path
