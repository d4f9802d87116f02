"""``--caption-batch-size auto``: probed once on a GPU (halving on out-of-memory), recorded in the manifest, and
reused by a resumed run so its batches, and rows, are the uninterrupted run's."""

from __future__ import annotations

import json

import pytest
import torch

from avt_core.errors import RunAborted, UsageError
from avt_triplets import schema
from avt_triplets.auto_batch_size import DEFAULT_CAPTION_BATCH_SIZE, probe_caption_batch_size
from avt_triplets.captioner_contract import Captioner
from avt_triplets.options import GenerationOptions
from avt_triplets.pipeline import generate_triplets


class _PretendGpuCaptioner(Captioner):
    """The tiny BLIP-2 behind a device that says ``cuda`` and runs out of memory above ``limit`` frames."""

    device = torch.device("cuda")

    def __init__(self, inner, limit: int):
        self.inner, self.limit = inner, limit
        self.name, self.revision, self.prompt = inner.name, inner.revision, inner.prompt
        self.max_new_tokens, self.dtype = inner.max_new_tokens, inner.dtype
        self.generate_kwargs: dict = {}
        self.batches: list[tuple[int, object]] = []

    def input_plan(self):
        return self.inner.input_plan()

    def caption(self, images):
        return self.inner.caption(images)

    def stack(self, rows, pin):
        return self.inner.stack(rows, pin)

    def caption_pixels(self, rows):
        self.batches.append((len(rows), self.generate_kwargs.get("min_new_tokens")))
        if len(rows) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner.caption_pixels(rows)


def test_the_probe_halves_on_out_of_memory_with_full_length_captions(blip2_captioner):
    captioner = _PretendGpuCaptioner(blip2_captioner, limit=30)
    assert probe_caption_batch_size(captioner, start=100) == 25
    assert [size for size, _ in captioner.batches] == [100, 50, 25]
    assert {forced for _, forced in captioner.batches} == {blip2_captioner.max_new_tokens}
    assert "min_new_tokens" not in captioner.generate_kwargs  # restored


def test_a_broken_captioner_stops_the_probe_with_one_message(blip2_captioner):
    captioner = _PretendGpuCaptioner(blip2_captioner, limit=30)
    captioner.caption_pixels = lambda rows: 1 / 0
    with pytest.raises(RunAborted, match="ZeroDivisionError"):
        probe_caption_batch_size(captioner, start=8)


def _manifest(out) -> dict:
    return json.loads((out / schema.MANIFEST_FILE).read_text())


def test_auto_is_recorded_and_a_resumed_run_reuses_it(gen_inputs, blip2_captioner, clap_scorer, tmp_path):
    options = dict(shard_size=3, chunk_size=3, fps=1.0, clip_seconds=4.0, num_workers=0, progress=False)
    options.update(rank=0, world_size=1, write_card=False)
    whole = tmp_path / "whole"
    first = _PretendGpuCaptioner(blip2_captioner, limit=5)
    summary = generate_triplets(gen_inputs["good_csv"], whole, first, clap_scorer, **options)
    assert summary.complete
    # Probe from a chunk's 3 clips x 4 frames: 12, 6, 3; then every full batch of the run is 3 frames.
    probe = [size for size, forced in first.batches if forced is not None]
    assert probe == [12, 6, 3]
    run = [size for size, forced in first.batches if forced is None][1:]  # after the preflight
    assert max(run) == 3 and _manifest(whole)["caption_batch_size"] == 3

    # The resumed run has more memory free: it still uses the recorded size, and writes the same bytes.
    (whole / schema.STATS_DIR / "shard-00001_stats.json").unlink()
    second = _PretendGpuCaptioner(blip2_captioner, limit=1000)
    before = (whole / schema.DATA_DIR / "shard-00001.parquet").read_bytes()
    generate_triplets(gen_inputs["good_csv"], whole, second, clap_scorer, **options)
    assert all(forced is None for _, forced in second.batches), "a resumed run must not probe"
    assert max(size for size, _ in second.batches) == 3
    assert (whole / schema.DATA_DIR / "shard-00001.parquet").read_bytes() == before


def test_auto_on_the_cpu_is_the_default_size(gen_inputs, blip2_captioner, clap_scorer, tmp_path):
    out = tmp_path / "out"
    generate_triplets(
        gen_inputs["good_csv"],
        out,
        blip2_captioner,
        clap_scorer,
        num_workers=0,
        progress=False,
        rank=0,
        world_size=1,
    )
    assert _manifest(out)["caption_batch_size"] == DEFAULT_CAPTION_BATCH_SIZE


@pytest.mark.parametrize("value", [0, -4, "big", 2.5, True])
def test_a_caption_batch_size_must_be_positive_or_auto(value):
    with pytest.raises(UsageError, match="caption-batch-size"):
        GenerationOptions(caption_batch_size=value)


def test_the_command_line_takes_auto_or_a_number():
    import argparse

    from avt_core.dataclass_cli import add_options, options_from_any

    parser = argparse.ArgumentParser()
    add_options(parser, GenerationOptions)
    assert GenerationOptions().caption_batch_size == "auto"
    assert (
        options_from_any(
            GenerationOptions, parser.parse_args(["--caption-batch-size", "64"])
        ).caption_batch_size
        == 64
    )
    assert (
        options_from_any(
            GenerationOptions, parser.parse_args(["--caption-batch-size", "AUTO"])
        ).caption_batch_size
        == "auto"
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["--caption-batch-size", "lots"])
