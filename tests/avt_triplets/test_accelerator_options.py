"""`--video-hwaccel` on a machine without a usable hardware decoder: unknown names are refused up front, a known
device that can't open falls back to the CPU with the reason logged and the same frames, and decode workers get the
setting in freshly spawned processes. (The CLI test of both GPU options is in test_processes.py.)"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from av.codec.hwaccel import hwdevices_available

from avt import cli
from avt_core.errors import UsageError
from avt_triplets import decoding
from avt_triplets.decoding import DecodeJob, DecodeSettings, decode_job, iter_decoded
from avt_triplets.inputs import load_inputs
from avt_triplets.media import decode_clip, usable_hwaccel

needs_cuda_build = pytest.mark.skipif(
    "cuda" not in hwdevices_available(), reason="this FFmpeg build has no CUDA hwaccel"
)


def _cuda_decoding_works() -> bool:
    return usable_hwaccel("cuda") == "cuda"


def test_unknown_hardware_decoder_is_refused_before_any_work(gen_inputs, tmp_path, capsys):
    with pytest.raises(UsageError, match="unknown hardware video decoder 'warp-drive'"):
        usable_hwaccel("warp-drive")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(
            ["generate", str(gen_inputs["good_csv"]), "-o", str(tmp_path / "o"), "--video-hwaccel", "warp"]
        )
    assert exit_info.value.code == 2
    assert "not a hardware decoder of this FFmpeg" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@needs_cuda_build
def test_unusable_cuda_decoder_falls_back_with_the_reason_logged(caplog):
    caplog.set_level(logging.INFO, logger="avt_triplets.media")
    result = usable_hwaccel("cuda")
    if result == "cuda":  # a machine with an NVIDIA driver: the device opened, and says so
        assert "decoding video with cuda" in caplog.text
        return
    assert result is None
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "cuda video decoding unavailable" in record.getMessage()
    assert "decoding on CPU" in record.getMessage() and "Error" in record.getMessage()  # the reason itself


@needs_cuda_build
def test_decode_clip_with_hwaccel_gives_the_cpu_frames(gen_inputs, caplog):
    path = gen_inputs["root"] / gen_inputs["good"][2]["video_path"]
    cpu = decode_clip(path, duration_s=3.0, fps=2.0)
    caplog.set_level(logging.WARNING, logger="avt_triplets.media")
    device = decode_clip(path, duration_s=3.0, fps=2.0, hwaccel="cuda")
    assert device.frame_times_s == cpu.frame_times_s and len(device.frames) == len(cpu.frames) >= 5
    for a, b in zip(device.frames, cpu.frames):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean() < 1.0
    np.testing.assert_array_equal(device.audio[16_000], cpu.audio[16_000])
    if not _cuda_decoding_works():
        assert "cuda decoding failed to open" in caplog.text and "decoding on CPU" in caplog.text


@needs_cuda_build
def test_decode_workers_get_the_hwaccel_in_fresh_processes(gen_inputs, monkeypatch):
    """A forked worker can't use the CUDA driver its parent initialised, so hwaccel workers are spawned."""
    spawned = []  # no model inputs to prepare: the torch-free decode pool runs the workers
    real_pool = decoding.iter_ordered

    def recording_pool(*args, **kwargs):
        spawned.append(kwargs.get("spawn"))
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(decoding, "iter_ordered", recording_pool)
    clips = load_inputs(gen_inputs["good_csv"]).clips
    jobs = [DecodeJob(i, 0, clip) for i, clip in enumerate(clips[:2])]
    settings = DecodeSettings(clip_seconds=2.0, video_hwaccel="cuda")
    items = list(iter_decoded(jobs, settings, num_workers=1, decode_fn=decode_job))
    assert spawned == [True]
    on_cpu = not _cuda_decoding_works()
    for job, item in zip(jobs, items):
        assert item.failure is None
        expected = decode_job(job, DecodeSettings(clip_seconds=2.0))
        assert item.frame_times_s == expected.frame_times_s and len(item.frames) == len(expected.frames)
        if on_cpu:  # the fall-back is the CPU decoder itself: byte-identical output
            assert item.frames_jpeg == expected.frames_jpeg
            assert item.audio_encoded == expected.audio_encoded
