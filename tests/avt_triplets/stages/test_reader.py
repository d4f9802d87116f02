"""The reader stage on its own (avt_triplets/stages/reader.py): clips cut into shards and chunks, chunk names and
seeds, and which shards a rerun still has to do."""

from __future__ import annotations

import dataclasses

from support.stage_clips import specs

from avt_triplets import layout, shards
from avt_triplets.stages.reader import ShardPlan, chunk_seed, pending_work, plan_shards


def test_shards_are_cut_at_the_shard_size_and_where_the_split_changes():
    clips = specs(7)
    split = [dataclasses.replace(c, split="train" if i < 5 else "test") for i, c in enumerate(clips)]
    assert [len(s) for s in plan_shards(clips, 3)] == [3, 3, 1]
    assert [[c.split for c in s] for s in plan_shards(split, 3)] == [
        ["train"] * 3,
        ["train"] * 2,
        ["test"] * 2,
    ]


def test_chunks_of_a_shard_are_named_by_their_clips_and_seeded_apart():
    plan = ShardPlan(4, specs(5))
    chunks = plan.chunks(2)
    assert [(c.shard, c.start, len(c.clips)) for c in chunks] == [(4, 0, 2), (4, 2, 2), (4, 4, 1)]
    assert all(c.key.startswith(layout.shard_name(4) + "-") for c in chunks)
    assert len({c.key for c in chunks}) == 3
    other_clips = ShardPlan(4, specs(6)[1:]).chunks(2)[0]  # same shard, position and size, other clips
    assert other_clips.key != chunks[0].key
    assert chunks[0].key == ShardPlan(4, specs(5)).chunks(2)[0].key  # stable across runs
    assert chunk_seed(7, 4, 0) == 11 and len({chunk_seed(7, 4, c.start) for c in chunks}) == 3


def _finish(root, index, clips, failed=()):
    """Shard ``index`` finished as the writer leaves it: rows of the clips that worked, failures, stats last."""
    writer = shards.ShardWriter(root, index, features=None)
    for clip in clips:
        if clip.clip_id in failed:
            writer.add_failure(clip.clip_id, clip.video_path, "unreadable_path", "missing")
    writer.commit({"shard": index, "failures_by_reason": {"unreadable_path": len(failed)} if failed else {}})


def test_a_rerun_does_the_unfinished_and_damaged_shards_and_the_clips_that_appeared(tmp_path):
    root = tmp_path / "out"
    all_shards = plan_shards(specs(6), 2)
    appeared = tmp_path / "videos" / "late.mp4"
    late = dataclasses.replace(all_shards[2][0], source=str(appeared))
    all_shards = [all_shards[0], all_shards[1], (late, all_shards[2][1])]
    _finish(root, 0, all_shards[0])
    _finish(root, 1, all_shards[1])
    _finish(root, 2, all_shards[2], failed={late.clip_id})
    with layout.data_path(root, 1).open("ab") as handle:  # damaged after it was finished
        handle.write(b"\0")
    assert pending_work(root, all_shards, range(3), retry_failed=False) == [ShardPlan(1, all_shards[1])]
    assert not layout.stats_path(root, 1).exists()  # unmarked, so it is redone like an unfinished one

    appeared.parent.mkdir()
    appeared.write_bytes(b"now it is there")
    plans = pending_work(root, all_shards, [0, 2], retry_failed=False)
    assert plans == [ShardPlan(2, (late,), retry=True)]
    assert pending_work(root, all_shards, [0], retry_failed=True) == []  # nothing failed in shard 0
