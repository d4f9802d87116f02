"""`bench/decode_profile.py` (bench_decode.py --profile) accounts for a decode worker's time and work per clip.

Not the figures (those go to docs/performance.md): that every stage is measured, the stages add up to the whole,
and the counts describe the clip that was decoded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avt_triplets.decoding import DecodeJob, DecodeSettings, decode_job
from avt_triplets.inputs import ClipSpec
from avt_triplets.tiny.videos import SYNTHETIC_CLASSES, write_synthetic_video

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from decode_profile import profile_worker  # noqa: E402


def test_profile_covers_every_stage_and_counts_the_work(tmp_path):
    clip = write_synthetic_video(
        tmp_path / "c.mp4", [SYNTHETIC_CLASSES[1]], duration_s=3.0, size=(64, 48), fps=10
    )

    def worker(path: Path):
        job = DecodeJob(0, 0, ClipSpec(path.stem, path.name, str(path)))
        return decode_job(job, DecodeSettings(clip_seconds=3.0))

    result = profile_worker(worker, [clip, clip])
    stages = result["cpu_ms_per_clip"]
    measured = (
        "video_decode",
        "audio_decode",
        "frame_scale_to_rgb",
        "audio_mix_resample",
        "jpeg_encode",
        "open",
    )
    assert all(stages[name] > 0 for name in measured), stages
    assert sum(stages.values()) == pytest.approx(result["cpu_ms_total"], abs=0.05)
    assert sum(result["share"].values()) == pytest.approx(1.0, abs=0.01)
    counts = result["per_clip"]
    # 3 s at 44.1 kHz is ~130 AAC frames of 1024 samples; the picker stops after the frame at 2 s (of 30)
    assert 125 <= counts["audio_frames_decoded"] <= 135
    assert (
        20 <= counts["video_frames_decoded"] <= 30
        and counts["video_packets"] >= counts["video_frames_decoded"]
    )
    floor = result["decoder_floor_cpu_ms"]
    assert floor["video_every_frame"] > 0 and floor["audio"] > 0


def test_profile_times_the_models_preprocessing_when_the_worker_runs_it(tmp_path):
    from avt_triplets.model_inputs import InputPreparer

    clip = write_synthetic_video(
        tmp_path / "c.mp4", [SYNTHETIC_CLASSES[2]], duration_s=2.0, size=(64, 48), fps=5
    )
    settings = DecodeSettings(clip_seconds=2.0, prepare=InputPreparer())

    def worker(path: Path):
        item = decode_job(DecodeJob(0, 0, ClipSpec(path.stem, path.name, str(path))), settings)
        assert item.failure is None and item.inputs is not None
        return item

    stages = profile_worker(worker, [clip])["cpu_ms_per_clip"]
    assert stages["model_preprocessing"] > 0
