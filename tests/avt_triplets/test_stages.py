"""The generation stages one at a time, without models or a distributor (issue 22): the reader cuts a run into
shards and chunks and finds what is left, the model-free worker turns decoded clips into rows or failures, the
writer commits a shard whose stats file comes last. The end-to-end runs (test_pipeline.py, distributors/) cover
them together."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from avt_triplets import layout, schema, shards
from avt_triplets.decoding import DecodedItem, DecodeJob, encode_audio
from avt_triplets.inputs import ClipSpec
from avt_triplets.stages.reader import ShardPlan, pending_work, plan_shards
from avt_triplets.stages.worker import PackStep
from avt_triplets.stages.writer import WriterIdentity, write_shard


def clip(name: str, split: str | None = None, labels: tuple[str, ...] = ("dog barking",)) -> ClipSpec:
    """A list row as `avt generate` reads it: a YouTube-named file under the input root."""
    return ClipSpec(
        clip_id=name,
        video_path=f"videos/{name}.mp4",
        source=f"/data/vggsound/videos/{name}.mp4",
        start_s=30.0,
        labels=labels,
        split=split,
    )


def decoded(spec: ClipSpec, shard: int, index: int) -> DecodedItem:
    """What a decode worker hands on for a clip it decoded: two JPEG frames and 16 kHz audio."""
    buffer = io.BytesIO()
    Image.new("RGB", (224, 224), (120, 30, 200)).save(buffer, format="JPEG")
    tone = (0.1 * np.sin(np.linspace(0, 880 * np.pi, 16000))).astype(np.float32)
    return DecodedItem(
        DecodeJob(index, shard, spec),
        seconds=0.01,
        start_s=0.0,
        end_s=1.0,
        frames_jpeg=[buffer.getvalue()] * 2,
        frame_times_s=[0.25, 0.75],
        audio_encoded=encode_audio(tone),
    )


def undecodable(spec: ClipSpec, shard: int, index: int) -> DecodedItem:
    detail = f"moov atom not found in {spec.source}"
    return DecodedItem(DecodeJob(index, shard, spec), seconds=0.01, failure=("undecodable", detail))


def test_the_reader_cuts_shards_at_split_changes_and_chunks_inside_them():
    clips = [clip(f"a{i:02d}_000030", "train") for i in range(5)] + [clip("b00_000030", "test")]
    shard_clips = plan_shards(clips, shard_size=2)
    assert [[c.clip_id for c in s] for s in shard_clips] == [
        ["a00_000030", "a01_000030"],
        ["a02_000030", "a03_000030"],
        ["a04_000030"],
        ["b00_000030"],  # a new split starts a new shard, however short the last one was
    ]
    chunks = ShardPlan(0, tuple(clips[:5])).chunks(2)
    assert [(c.start, len(c.clips)) for c in chunks] == [(0, 2), (2, 2), (4, 1)]
    other = ShardPlan(0, (clips[1], clips[0])).chunks(2)[0]
    assert chunks[0].key != other.key  # another plan's chunk never passes for this one


def test_the_worker_without_models_packs_rows_and_names_failures_relative_to_the_input_root():
    specs = [clip("a00_000030"), clip("a01_000030"), clip("a02_000030")]
    plan = ShardPlan(3, tuple(specs))
    items = [decoded(specs[0], 3, 0), undecodable(specs[1], 3, 1), decoded(specs[2], 3, 2)]
    result = PackStep()(plan.chunks(8)[0], iter(items))  # arriving as a stream
    assert [row["clip_id"] for row in result.rows] == ["a00_000030", "a02_000030"]
    assert result.rows[0]["labels"] == ["dog barking"] and result.rows[0]["original_start_s"] == 30.0
    assert not set(schema.CAPTION_COLUMNS) & set(result.rows[0])
    assert result.failures == [
        {
            "clip_id": "a01_000030",
            "video_path": "videos/a01_000030.mp4",
            "reason": "undecodable",
            "detail": "moov atom not found in videos/a01_000030.mp4",  # no machine folder in a published file
        }
    ]
    assert result.clips == 3 and result.seconds["decode"] == pytest.approx(0.03)


def test_the_writer_commits_a_shard_the_reader_then_skips(tmp_path):
    specs = [clip("a00_000030"), clip("a01_000030")]
    all_shards = plan_shards(specs, shard_size=1)
    plans = pending_work(tmp_path, all_shards, range(2), retry_failed=False)
    assert [(p.index, p.retry) for p in plans] == [(0, False), (1, False)]
    result = PackStep()(plans[0].chunks(4)[0], [decoded(specs[0], 0, 0)])
    stats = write_shard(tmp_path, plans[0], [result], WriterIdentity("local"), captioned=False)
    assert shards.is_done(tmp_path, 0) and not shards.is_done(tmp_path, 1)
    assert (
        json.loads(layout.stats_path(tmp_path, 0).read_text())["num_triplets"] == stats["num_triplets"] == 1
    )
    table = pq.read_table(next((tmp_path / layout.DATA_DIR).glob("*.parquet")))
    assert table.column("clip_id").to_pylist() == ["a00_000030"]
    assert [p.index for p in pending_work(tmp_path, all_shards, range(2), retry_failed=False)] == [1]


def test_the_writer_commits_nothing_when_clips_are_missing(tmp_path):
    specs = [clip("a00_000030"), clip("a01_000030")]
    plan = ShardPlan(0, tuple(specs))
    result = PackStep()(plan.chunks(1)[0], [decoded(specs[0], 0, 0)])  # the second chunk never came
    with pytest.raises(RuntimeError, match="decoding stopped after 1 of 2 clips"):
        write_shard(tmp_path, plan, [result], WriterIdentity("local"), captioned=False)
    assert not shards.is_done(tmp_path, 0) and not list(tmp_path.rglob("*.parquet"))
