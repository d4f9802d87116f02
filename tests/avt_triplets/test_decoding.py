"""Decode workers: results come back in job order, and a worker that dies costs only its own clip."""

from __future__ import annotations

import os
import time

import pytest

from avt_triplets.decoding import DecodedItem, DecodeJob, DecodeSettings, decode_job, iter_decoded
from avt_triplets.inputs import ClipSpec
from avt_triplets.media import decode_clip
from avt_triplets.tiny.videos import SYNTHETIC_CLASSES, write_synthetic_video


@pytest.fixture(scope="module")
def tone_clip(tmp_path_factory):
    """2 s, 64x48, stereo 44.1 kHz AAC."""
    path = tmp_path_factory.mktemp("decoding") / "tone.mp4"
    return write_synthetic_video(path, [SYNTHETIC_CLASSES[0]], duration_s=2.0, size=(64, 48), fps=5)


def _jobs(names):
    return [
        DecodeJob(i, i // 3, ClipSpec(name, f"{name}.mp4", f"/nowhere/{name}.mp4"))
        for i, name in enumerate(names)
    ]


def _slow_uneven(job: DecodeJob, settings: DecodeSettings) -> DecodedItem:
    time.sleep(0.05 if job.index % 3 == 0 else 0.0)  # workers finish out of order
    return DecodedItem(job=job, seconds=0.0, failure=("zero_length", str(os.getpid())))


def _crash_on_bomb(job: DecodeJob, settings: DecodeSettings) -> DecodedItem:
    if job.clip.clip_id == "bomb":
        os._exit(11)  # what a segfault inside FFmpeg looks like to the loader
    return DecodedItem(job=job, seconds=0.0, failure=("zero_length", "fine"))


def test_workers_deliver_in_job_order():
    jobs = _jobs([f"clip{i}" for i in range(12)])
    items = list(iter_decoded(jobs, DecodeSettings(), num_workers=2, prefetch=2, decode_fn=_slow_uneven))
    assert [item.job.index for item in items] == list(range(12))
    assert len({item.failure[1] for item in items}) == 2  # really two worker processes
    assert os.getpid() not in {int(item.failure[1]) for item in items}


def test_a_crashing_worker_costs_only_its_clip():
    jobs = _jobs(["a", "b", "c", "bomb", "d", "e", "f"])
    items = list(iter_decoded(jobs, DecodeSettings(), num_workers=2, prefetch=2, decode_fn=_crash_on_bomb))
    assert [item.job.clip.clip_id for item in items] == ["a", "b", "c", "bomb", "d", "e", "f"]
    bomb = items[3]
    assert bomb.failure[0] == "undecodable" and "crashed" in bomb.failure[1]
    assert all(item.failure == ("zero_length", "fine") for i, item in enumerate(items) if i != 3)


def test_missing_file_is_a_failure_not_an_exception():
    (item,) = iter_decoded(_jobs(["ghost"]), DecodeSettings(), num_workers=0, decode_fn=decode_job)
    assert item.failure[0] == "unreadable_path"


def test_labels_only_decoding_resamples_only_the_stored_rate(monkeypatch, tone_clip):
    from avt_triplets import decoding

    asked = []

    def recording_decode_clip(*args, **kwargs):
        asked.append(tuple(kwargs["sampling_rates"]))
        return decode_clip(*args, **kwargs)

    monkeypatch.setattr(decoding, "decode_clip", recording_decode_clip)
    job = DecodeJob(0, 0, ClipSpec("tone", "tone.mp4", str(tone_clip)))
    scored = decode_job(job, DecodeSettings(scorer_sampling_rate=48_000, clip_seconds=2.0))
    labels_only = decode_job(
        job, DecodeSettings(scorer_sampling_rate=48_000, clip_seconds=2.0, model_inputs=False)
    )
    assert asked == [(16_000, 48_000), (16_000,)]
    assert scored.scorer_audio.size == 2 * 48_000 and labels_only.scorer_audio is None
    assert labels_only.frames == [] and len(scored.frames) == 2
    assert labels_only.audio_encoded == scored.audio_encoded  # the stored audio does not depend on the scorer
    assert labels_only.frames_jpeg == scored.frames_jpeg
