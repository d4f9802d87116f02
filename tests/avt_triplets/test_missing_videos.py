"""Missing videos (issue 17 §4): counted with a stat per row before any model loads, a run missing more than
--max-missing-fraction exits non-zero after writing what it could, naming root, template, one expected path and
one file that is there; a rerun picks up the clips that were missing and are there now."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from avt.cli import main as avt_main
from avt_triplets import layout, schema
from avt_triplets.inputs import load_inputs
from avt_triplets.missing_videos import find_missing
from avt_triplets.stages.reader import pending_work, plan_shards

TEMPLATE = "{ytid}_{start:06d}.mp4"


@pytest.fixture
def no_models(monkeypatch):
    from avt_triplets import models, preflight

    def refuse(*args, **kwargs):
        raise AssertionError("no model may load in these runs")

    monkeypatch.setattr(models, "load_models", refuse)
    monkeypatch.setattr(preflight, "check_models", refuse)


def _download(label_lists, folder, count):
    """A VGGSound download of which only the first ``count`` test clips arrived, listed by the real vggsound.csv."""
    folder.mkdir(exist_ok=True)
    shutil.copy(label_lists["vggsound"], folder / "vggsound.csv")
    names = [TEMPLATE.format(ytid=c.ytid, start=c.start) for c in label_lists["clips"]["test"]]
    for name in names[:count]:
        shutil.copy(label_lists["root"] / name, folder / name)
    return folder / "vggsound.csv", names


def _generate(listing, out, *extra):
    argv = ["generate", str(listing), "-o", str(out), "--captioner", "none", "--split", "test"]
    return avt_main([*argv, "--num-workers", "0", "--no-progress", *extra])


def test_most_videos_missing_writes_what_it_could_then_exits_1_and_a_rerun_picks_up_the_new_ones(
    tmp_path, label_lists, no_models, capsys
):
    listing, names = _download(label_lists, tmp_path / "vggsound", 1)
    out = tmp_path / "out"
    assert _generate(listing, out) == 1
    err = capsys.readouterr().err
    root = tmp_path / "vggsound"
    assert (
        f"3 of 4 listed videos are missing under {root} (--path-template {TEMPLATE}); first missing: " in err
    )
    error = [line for line in err.splitlines() if line.startswith("error: ")]
    assert error == [
        f"error: 3 of 4 listed videos (75%) are missing under {root} (--path-template {TEMPLATE}): expected "
        f"{root / names[1]}, while {root / names[0]} is there. Check --input-root and --path-template, or pass "
        "--max-missing-fraction 0.75 to accept it (now 0.5)"
    ]
    rows = pq.read_table(out / "data" / "shard-00000.parquet").to_pylist()
    assert [r["video_path"] for r in rows] == [names[0]]  # what it could
    failures = pq.read_table(out / "failures" / "shard-00000.parquet").to_pylist()
    assert sorted(f["reason"] for f in failures) == ["unreadable_path"] * 3

    for name in names[1:]:  # the rest of the download arrives; the same command is run again
        shutil.copy(label_lists["root"] / name, root / name)
    assert _generate(listing, out) == 0
    rows = pq.read_table(out / "data" / "shard-00000.parquet").to_pylist()
    assert sorted(r["video_path"] for r in rows) == sorted(names)
    assert (
        not (out / "failures" / "shard-00000.parquet").exists()
        or not pq.read_table(out / "failures" / "shard-00000.parquet").num_rows
    )


def test_a_fraction_within_the_limit_exits_0_and_everything_missing_stops_before_models(
    tmp_path, label_lists, no_models, capsys
):
    listing, names = _download(label_lists, tmp_path / "vggsound", 3)
    assert _generate(listing, tmp_path / "out") == 0
    assert "1 of 4 listed videos are missing" in capsys.readouterr().err

    # the files are there, but in another layout than the template: nothing resolves
    elsewhere = tmp_path / "elsewhere"
    listing, names = _download(label_lists, elsewhere, 0)
    (elsewhere / "videos").mkdir()
    shutil.copy(label_lists["root"] / names[2], elsewhere / "videos" / "clip.mp4")
    assert _generate(listing, tmp_path / "out2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        f"error: 4 of 4 listed videos (100%) are missing under {elsewhere} (--path-template "
    )
    assert f"expected {elsewhere / names[0]}, while {elsewhere / 'videos' / 'clip.mp4'} is there" in err[-1]
    assert not (tmp_path / "out2" / "data").exists()
    assert _generate(listing, tmp_path / "out3", "--max-missing-fraction", "1") == 1  # allowed: runs, no rows


def test_a_finished_shard_whose_failures_are_missing_files_is_rerun_for_those_that_appeared(
    tmp_path, label_lists
):
    listing, names = _download(label_lists, tmp_path / "vggsound", 2)
    clips = load_inputs(listing, split="test").clips
    out = tmp_path / "out"
    (out / layout.STATS_DIR).mkdir(parents=True)
    layout.stats_path(out, 0).write_text('{"failures_by_reason": {"unreadable_path": 2}}')
    from avt_triplets.shards import write_rows

    failures = [
        {"clip_id": c.clip_id, "video_path": c.video_path, "reason": "unreadable_path", "detail": "gone"}
        for c in clips[2:]
    ]
    write_rows(layout.failures_path(out, 0), failures, schema.FAILURE_FEATURES)
    write_rows(layout.data_path(out, 0), [], schema.triplet_features(with_captions=False))  # a finished shard
    shards = plan_shards(clips, 10)
    assert pending_work(out, shards, [0], retry_failed=False) == []  # nothing new yet
    shutil.copy(label_lists["root"] / names[3], tmp_path / "vggsound" / names[3])
    (plan,) = pending_work(out, shards, [0], retry_failed=False)
    assert plan.retry and [c.clip_id for c in plan.clips] == [clips[3].clip_id]


def test_the_stat_check_counts_each_row_and_finds_a_present_video(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.mp4").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    sources = [str(tmp_path / f"{i}.mp4") for i in range(300)] + [str(tmp_path / "a" / "b" / "x.mp4")]
    report = find_missing(sources, tmp_path, TEMPLATE, {".mp4"})
    assert (report.total, report.missing, report.first_missing) == (301, 300, sources[0])
    assert report.one_present == str(tmp_path / "a" / "b" / "x.mp4") and report.exceeds(0.5)
    assert find_missing(["s3://bucket/x.mp4"], tmp_path, None, {".mp4"}) is None
