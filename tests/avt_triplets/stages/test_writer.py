"""The writer stage on its own (avt_triplets/stages/writer.py): chunk results of a shard in, the shard's files out
(data, failures, stats last), directly or through the chunk parts other machines leave."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from support.stage_clips import chunk_of, decoded, specs

from avt_triplets import layout, shards
from avt_triplets.stages.reader import ShardPlan
from avt_triplets.stages.worker import PHASES, PackStep
from avt_triplets.stages.writer import (
    ShardWriterThread,
    WriterIdentity,
    commit_from_parts,
    finished_chunk_keys,
    write_chunk_part,
    write_shard,
)

PLAN = ShardPlan(3, specs(5))


def results(plan: ShardPlan, chunk_size: int = 2):
    """The worker stage's results for the plan's chunks (no models): clip 3 failed to decode."""
    for chunk in plan.chunks(chunk_size):
        items = [
            decoded(clip, i, [], [], failure=("not_media", "text file")) if clip.clip_id.endswith("03_000010")
            else decoded(clip, i, [20 + i], audio=[0.5])
            for i, clip in enumerate(chunk.clips, start=chunk.start)
        ]  # fmt: skip
        yield PackStep()(chunk_of(chunk.clips, chunk.shard, chunk.start), items)


def test_a_shard_is_written_in_chunk_order_and_marked_done_last(tmp_path):
    stats = write_shard(tmp_path, PLAN, results(PLAN), WriterIdentity("local", 1, 2), captioned=False)
    rows = shards.read_rows(layout.data_path(tmp_path, 3))
    assert [r["clip_id"] for r in rows] == [c.clip_id for i, c in enumerate(PLAN.clips) if i != 3]
    assert pq.ParquetFile(layout.data_path(tmp_path, 3)).metadata.row_group(0).num_rows == 4
    assert [f["reason"] for f in shards.read_failures(tmp_path, 3)] == ["not_media"]
    assert (stats["num_clips"], stats["num_triplets"], stats["failures_by_reason"]) == (
        5,
        4,
        {"not_media": 1},
    )
    assert (stats["distributor"], stats["rank"], stats["world_size"]) == ("local", 1, 2)
    assert set(stats["seconds"]) == set(PHASES) and stats["seconds"]["decode"] == pytest.approx(2.5)
    assert set(stats[shards.FILES_KEY]) == {"data/shard-00003.parquet", "failures/shard-00003.parquet"}
    assert shards.read_stats(tmp_path, 3) == stats and shards.done_shard_indices(tmp_path) == {3}
    assert shards.check_finished_shards(tmp_path).damaged == {}


def test_a_shard_missing_clips_is_not_committed(tmp_path):
    short = list(results(PLAN))[:2]  # decoding stopped after 4 of 5 clips
    with pytest.raises(RuntimeError, match="after 4 of 5 clips"):
        write_shard(tmp_path, PLAN, short, WriterIdentity(), captioned=False)
    assert not layout.stats_path(tmp_path, 3).exists() and not layout.data_path(tmp_path, 3).exists()
    assert not list((tmp_path / layout.DATA_DIR).glob("*.tmp"))


def test_committing_from_chunk_parts_writes_the_same_shard(tmp_path):
    direct, parted = tmp_path / "direct", tmp_path / "parted"
    write_shard(direct, PLAN, results(PLAN), WriterIdentity(), captioned=False)
    layout.parts_dir(parted, 3).mkdir(parents=True)
    written = list(results(PLAN))
    for result in reversed(written):  # parts finish in any order, on any machine
        write_chunk_part(parted, result, captioned=False)
    write_chunk_part(parted, written[0], captioned=False)  # a retried task writes its part again
    assert finished_chunk_keys(parted, 3) == {c.key for c in PLAN.chunks(2)}

    stats = commit_from_parts(parted, PLAN, 2, WriterIdentity("ray"), captioned=False)
    for path in (layout.data_path, layout.failures_path):
        assert path(parted, 3).read_bytes() == path(direct, 3).read_bytes()
    assert stats["distributor"] == "ray" and not layout.parts_dir(parted, 3).exists()
    again = commit_from_parts(parted, PLAN, 2, WriterIdentity("ray"), captioned=False)
    assert again == stats  # a shard committed already is left alone


def test_the_writer_thread_creates_nothing_before_its_first_result(tmp_path, monkeypatch):
    """A Ctrl-C can land while the model loop starts a shard's writer thread, before the ``try`` that would abort
    it: the process then exits with the thread idle, so that thread must not have opened the shard's temporary."""
    opened = []
    monkeypatch.setattr(shards.ShardWriter, "__init__", lambda self, *a, **k: opened.append(a))
    writer = ShardWriterThread(tmp_path, PLAN, WriterIdentity(), captioned=False)
    writer.abort()  # returns once the thread has ended: it read the abort as its first message
    assert opened == [] and list(tmp_path.rglob("*")) == []


def test_an_aborted_writer_thread_leaves_no_temporary_and_no_shard(tmp_path):
    writer = ShardWriterThread(tmp_path, PLAN, WriterIdentity(), captioned=False)
    writer.put(next(results(PLAN)))
    writer.abort()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert shards.done_shard_indices(tmp_path) == set()
