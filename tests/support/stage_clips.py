"""Decoded clips as the decode processes hand them to the worker stage: small frames, a waveform, encoded media."""

from __future__ import annotations

import io
import wave

import numpy as np

from avt_triplets.decoding import DecodedItem, DecodeJob
from avt_triplets.inputs import ClipSpec
from avt_triplets.stages.reader import Chunk


def wav_bytes(seconds: float = 0.25, rate: int = 16_000) -> bytes:
    """A short 16-bit mono WAV, as the decode processes encode a clip's 16 kHz audio."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.sin(np.arange(int(seconds * rate)) / 7.0) * 8000).astype("<i2").tobytes())
    return buffer.getvalue()


def decoded(spec: ClipSpec, index: int, pixels: list[int], audio: list[float], failure=None) -> DecodedItem:
    """Clip ``spec`` decoded into one 4x4 frame per value of ``pixels`` and a waveform (its scorer-rate audio)."""
    if failure is not None:
        return DecodedItem(job=DecodeJob(index, 0, spec), seconds=0.5, failure=failure)
    return DecodedItem(
        job=DecodeJob(index, 0, spec),
        seconds=0.5,
        start_s=0.0,
        end_s=0.25,
        frames=[np.full((4, 4, 3), p, np.uint8) for p in pixels],
        frames_jpeg=[b"\xff\xd8jpeg" + bytes([p]) for p in pixels],
        frame_times_s=[0.1 * k for k in range(len(pixels))],
        audio_encoded={"bytes": wav_bytes(), "path": None},
        scorer_audio=np.asarray(audio, np.float32),
    )


def specs(count: int, labels: tuple[str, ...] = ("Dog",)) -> tuple[ClipSpec, ...]:
    return tuple(
        ClipSpec(f"yt/clip{i:02d}_000010", f"yt/clip{i:02d}_000010.mp4", f"/videos/yt/clip{i:02d}_000010.mp4", 10.0,
                 labels=labels)
        for i in range(count)
    )  # fmt: skip


def chunk_of(clips: tuple[ClipSpec, ...], shard: int = 0, start: int = 0) -> Chunk:
    return Chunk(shard, start, clips)
