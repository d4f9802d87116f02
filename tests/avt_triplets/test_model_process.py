"""Issue 12 §1: the process holding the models receives ready tensors and starts on a chunk as its clips arrive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import BlipImageProcessor, ClapFeatureExtractor

from avt_triplets.captioner_contract import Captioner
from avt_triplets.pipeline import generate_triplets
from avt_triplets.stages import worker


@pytest.fixture
def preprocessing_calls(monkeypatch, tmp_path):
    """Records ``pid step`` for every call of BLIP-2's image processor and CLAP's feature extractor, in any
    process (the file outlives forked workers); ``step`` says whether the worker stage of the model process
    was running (a flag set only in the process that runs the steps)."""
    log = tmp_path / "calls.log"
    in_step = {"on": False}

    def recording(kind, real):
        def call(self, *args, **kwargs):
            with open(log, "a") as handle:
                handle.write(f"{kind} {os.getpid()} {int(in_step['on'])}\n")
            return real(self, *args, **kwargs)

        return call

    monkeypatch.setattr(BlipImageProcessor, "preprocess", recording("image", BlipImageProcessor.preprocess))
    monkeypatch.setattr(ClapFeatureExtractor, "__call__", recording("audio", ClapFeatureExtractor.__call__))
    for step in (worker.CaptionStep, worker.ScoreStep):
        real_call = step.__call__

        def flagged(self, *args, _real=real_call, **kwargs):
            in_step["on"] = True
            try:
                return _real(self, *args, **kwargs)
            finally:
                in_step["on"] = False

        monkeypatch.setattr(step, "__call__", flagged)

    def read() -> list[tuple[str, int, bool]]:
        lines = log.read_text().split() if log.exists() else []
        return [(lines[i], int(lines[i + 1]), lines[i + 2] == "1") for i in range(0, len(lines), 3)]

    return read


def test_the_model_process_receives_ready_tensors(
    gen_inputs, blip2_captioner, clap_scorer, reference_options, preprocessing_calls, tmp_path
):
    import torch
    from PIL import Image

    pixel_batches: list[torch.Tensor] = []
    real = blip2_captioner.caption_pixels
    blip2_captioner.caption_pixels = lambda rows: pixel_batches.append(rows) or real(rows)
    blip2_captioner.caption = lambda images: pytest.fail("a model process captioned PIL images")
    try:
        summary = generate_triplets(
            gen_inputs["good_csv"],
            tmp_path / "out",
            blip2_captioner,
            clap_scorer,
            num_workers=1,
            rank=0,
            world_size=1,
            **reference_options,
        )
    finally:
        del blip2_captioner.caption_pixels, blip2_captioner.caption
    assert summary.complete and summary.triplets == 6
    # What the processor would make of a frame in the model process: the shape and dtype that must arrive.
    expected = blip2_captioner.processor(images=[Image.new("RGB", (64, 48))], return_tensors="pt")[
        "pixel_values"
    ]
    run_batches = pixel_batches[1:]  # after the preflight's synthetic frame
    assert run_batches and all(isinstance(batch, torch.Tensor) for batch in run_batches), (
        "not one stacked tensor"
    )
    assert {(tuple(batch.shape[1:]), batch.dtype) for batch in run_batches} == {
        (tuple(expected.shape[1:]), torch.float32)
    }
    calls = preprocessing_calls()
    main = os.getpid()
    in_model_process = [(kind, step) for kind, pid, step in calls if pid == main]
    assert not [call for call in in_model_process if call[1]], (
        "preprocessing ran in the model process's steps"
    )
    in_workers = {kind for kind, pid, _ in calls if pid != main}
    assert in_workers == {"image", "audio"}, f"the decode worker preprocessed nothing: {calls}"
    assert sum(len(batch) for batch in run_batches) > 1, "frames were not captioned from pixel_values"


def test_captioning_starts_before_a_chunk_is_decoded_to_its_end(
    gen_inputs, blip2_captioner, clap_scorer, monkeypatch, tmp_path
):
    """Batches are cut at the same positions as before, but the first runs as soon as its frames are there."""
    import avt_triplets.distributors.local as local

    events: list[str] = []
    real_iter = local.iter_decoded

    def recording_iter(*args, **kwargs):
        for item in real_iter(*args, **kwargs):
            events.append("clip")
            yield item

    real = blip2_captioner.caption_pixels

    def caption_pixels(rows):
        events.append(f"caption {len(rows)}")
        return real(rows)

    monkeypatch.setattr(local, "iter_decoded", recording_iter)
    blip2_captioner.caption_pixels = caption_pixels
    try:
        summary = generate_triplets(
            gen_inputs["good_csv"],
            tmp_path / "out",
            blip2_captioner,
            clap_scorer,
            chunk_size=6,
            caption_batch_size=4,
            num_workers=0,
            progress=False,
            rank=0,
            world_size=1,
        )
    finally:
        del blip2_captioner.caption_pixels
    assert summary.complete
    run = events[events.index("clip") :]  # after the preflight's caption
    assert run.count("clip") == 6
    first_caption = next(i for i, event in enumerate(run) if event.startswith("caption"))
    assert run[:first_caption].count("clip") < 6, run
    sizes = [int(event.split()[1]) for event in run if event.startswith("caption")]
    assert all(size == 4 for size in sizes[:-1]) and 0 < sizes[-1] <= 4, sizes


def test_a_writer_failure_reaches_the_model_loop_and_commits_nothing(
    gen_inputs, blip2_captioner, clap_scorer, monkeypatch, tmp_path: Path
):
    """Rows are written in a thread: its error must still fail the shard, and leave no file behind."""
    from avt_triplets import schema
    from avt_triplets.shards import ShardWriter

    def write_row(self, row):
        raise OSError("simulated: the storage went away")

    monkeypatch.setattr(ShardWriter, "write_row", write_row)
    out = tmp_path / "out"
    summary = generate_triplets(
        gen_inputs["good_csv"],
        out,
        blip2_captioner,
        clap_scorer,
        shard_size=3,
        num_workers=0,
        progress=False,
        rank=0,
        world_size=1,
    )
    assert summary.shards_done == 0 and len(summary.shard_errors) == 2
    assert all("storage went away" in error for error in summary.shard_errors)
    leftovers = [
        p for folder in (schema.DATA_DIR, schema.STATS_DIR) for p in (out / folder).glob("*") if p.is_file()
    ]
    assert leftovers == []


class _Stream:
    """Decoded clips handed out one by one; ``ready()`` says whether the next one has arrived (``arrived`` of
    them have). Every request for a clip and every caption batch is logged in order."""

    def __init__(self, items, arrived: int, log: list[str]):
        self.items, self.arrived, self.log, self.taken = items, arrived, log, 0

    def ready(self) -> bool:
        return self.taken < self.arrived

    def __iter__(self):
        for item in self.items:
            self.log.append(f"take {self.taken}")
            self.taken += 1
            yield item


class _CountingCaptioner(Captioner):
    """Captions raw frames (no image preprocessor): ``frame <mean pixel>``; logs each batch's size."""

    device = None

    def __init__(self, log: list[str]):
        self.log = log

    def caption(self, images):
        import numpy as np

        self.log.append(f"caption {len(images)}")
        return [f"frame {int(np.asarray(image).mean())}" for image in images]


def _clips(count: int, frames: int):
    import numpy as np

    from avt_triplets.decoding import DecodedItem, DecodeJob
    from avt_triplets.inputs import ClipSpec
    from avt_triplets.stages.reader import Chunk

    specs = [ClipSpec(f"c{i}", f"c{i}.mp4", f"/nowhere/c{i}.mp4") for i in range(count)]
    items = [
        DecodedItem(
            job=DecodeJob(i, 0, spec),
            seconds=0.0,
            frames=[np.full((4, 4, 3), 10 * i + k, np.uint8) for k in range(frames)],
        )
        for i, spec in enumerate(specs)
    ]
    return Chunk(0, 0, tuple(specs)), items


@pytest.mark.parametrize("arrived", [2, 6])
def test_a_complete_batch_waits_for_the_next_clip_only_if_it_has_arrived(arrived):
    """Batches of 4 frames over clips of 2: batch 1 = clips 0-1. If clip 2 has not arrived when batch 1 is
    complete, batch 1 is captioned before clip 2 is waited for (the device would idle otherwise); if it has,
    batch 1 is captioned once batch 2 is complete (its rows are then stacked meanwhile). Same captions."""
    from avt_triplets.stages.worker import CaptionStep

    log: list[str] = []
    chunk, items = _clips(count=6, frames=2)
    captioned = CaptionStep(_CountingCaptioner(log), batch_size=4)(chunk, _Stream(items, arrived, log))
    first_caption = log.index("caption 4")
    if arrived == 2:
        assert log[: first_caption + 2] == ["take 0", "take 1", "caption 4", "take 2"], log
    else:
        assert log[: first_caption + 1] == ["take 0", "take 1", "take 2", "take 3", "caption 4"], log
    assert log.count("caption 4") == 3 and captioned.captioned_frames == 12
    assert captioned.captions == [[f"frame {10 * i + k}" for k in range(2)] for i in range(6)]


def test_a_shards_and_a_chunks_clips_say_whether_the_next_clip_has_arrived():
    """The captioner's decision above needs ``ready()`` through every layer the local distributor puts on the
    decode stream (received ahead in a thread -> a shard's clips -> a chunk's clips)."""
    import threading
    import time

    from avt_triplets.decoding import ReceivedAhead
    from avt_triplets.distributors.local import _ArrivingItems
    from avt_triplets.stages.worker import StageClock

    _, items = _clips(count=3, frames=1)
    release = threading.Event()

    def decoded():
        yield items[0]
        release.wait(10)
        yield from items[1:]

    stream = ReceivedAhead(decoded(), ahead=4)
    try:
        shard = _ArrivingItems(stream, 3)
        chunk = _ArrivingItems(shard, 2, StageClock())
        assert chunk.ready()  # the first clip is taken when the stream starts
        assert next(chunk) is items[0]
        time.sleep(0.2)
        assert not chunk.ready() and not shard.ready() and not stream.ready()
        release.set()
        deadline = time.monotonic() + 10
        while not chunk.ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert chunk.ready() and next(chunk) is items[1]
        assert not chunk.ready(), "the chunk has no clip left, whatever the stream holds"
        assert list(chunk) == [] and shard.ready() and next(shard) is items[2]
    finally:
        release.set()
        stream.close()
