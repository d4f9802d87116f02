"""Issue 12 §1: the process holding the models receives ready tensors and starts on a chunk as its clips arrive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import BlipImageProcessor, ClapFeatureExtractor

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
    pixel_batches: list[int] = []
    real = blip2_captioner.caption_pixels
    blip2_captioner.caption_pixels = lambda rows: pixel_batches.append(len(rows)) or real(rows)
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
        del blip2_captioner.caption_pixels
    assert summary.complete and summary.triplets == 6
    calls = preprocessing_calls()
    main = os.getpid()
    in_model_process = [(kind, step) for kind, pid, step in calls if pid == main]
    assert not [call for call in in_model_process if call[1]], (
        "preprocessing ran in the model process's steps"
    )
    in_workers = {kind for kind, pid, _ in calls if pid != main}
    assert in_workers == {"image", "audio"}, f"the decode worker preprocessed nothing: {calls}"
    assert sum(pixel_batches) > 1, "frames were not captioned from pixel_values"


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
