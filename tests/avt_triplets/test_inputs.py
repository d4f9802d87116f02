"""Input listing: folders, CSV/JSONL lists, VGGSound rows, clip ids, duplicates, digest."""

from __future__ import annotations

import json

import pytest

from avt_triplets.inputs import InputListError, inputs_digest, list_video_folder, load_inputs, read_clip_list


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_is_recursive_sorted_and_ids_are_relative_paths(tmp_path):
    for name in ["b/z.mp4", "a.MKV", "b/a.webm", "notes.txt", ".hidden/x.mp4", "c/.x.mp4"]:
        _touch(tmp_path / name)
    clips, skipped = list_video_folder(tmp_path)
    assert [c.video_path for c in clips] == ["a.MKV", "b/a.webm", "b/z.mp4"]
    assert skipped == ["notes.txt"]  # hidden files and folders are neither clips nor "skipped"
    assert [c.clip_id for c in clips] == ["a", "b/a", "b/z"]
    assert all(c.start_s == 0.0 and c.labels == () for c in clips)
    assert clips[0].source == str((tmp_path / "a.MKV").resolve())


def test_csv_with_header_start_and_labels(tmp_path):
    _touch(tmp_path / "v/a.mp4")
    (tmp_path / "list.csv").write_text("video_path,start_s,labels\nv/a.mp4,0,dog;bark\nv/a.mp4,30,cat\n")
    clips = read_clip_list(tmp_path / "list.csv")
    assert [c.clip_id for c in clips] == ["v/a_000000", "v/a_000030"]  # same file, two windows
    assert [c.start_s for c in clips] == [0.0, 30.0]
    assert [c.labels for c in clips] == [("dog", "bark"), ("cat",)]
    assert clips[1].source == str((tmp_path / "v/a.mp4").absolute())


def test_jsonl_labels_as_list_or_string(tmp_path):
    rows = [{"video_path": "a.mp4", "labels": ["x", "y"]}, {"path": "b.mp4", "start": 2.5, "label": "z"}]
    (tmp_path / "l.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    clips = read_clip_list(tmp_path / "l.jsonl")
    assert [(c.clip_id, c.start_s, c.labels) for c in clips] == [
        ("a", 0.0, ("x", "y")),
        ("b", 2.5, ("z",)),
    ]


def test_vggsound_rows_map_to_local_files(tmp_path):
    (tmp_path / "vggsound.csv").write_text('---g-f_I2yQ,1,"people marching",test\nabc,30,dog barking,train\n')
    clips = read_clip_list(
        tmp_path / "vggsound.csv", path_template="clips/{ytid}_{start:06d}.mp4", split="all"
    )
    assert [c.clip_id for c in clips] == ["---g-f_I2yQ_000001", "abc_000030"]
    assert clips[0].video_path == "clips/---g-f_I2yQ_000001.mp4"
    assert clips[0].labels == ("people marching",)
    assert clips[1].start_s == 0.0  # downloaded clips already start at the row's start
    untrimmed = read_clip_list(
        tmp_path / "vggsound.csv", path_template="{ytid}.mp4", trimmed=False, split="all"
    )
    assert untrimmed[1].start_s == 30.0 and untrimmed[1].video_path == "abc.mp4"


def test_one_window_per_file_keeps_the_plain_path_id(tmp_path):
    (tmp_path / "l.csv").write_text("video_path,start_s\nv/a.mp4,1.5\nv/b.mp4,0\n")
    assert [c.clip_id for c in read_clip_list(tmp_path / "l.csv")] == ["v/a", "v/b"]


def test_duplicates_are_all_reported_up_front(tmp_path):
    (tmp_path / "l.csv").write_text("video_path\na.mp4\na.mkv\nb.mp4\nb.mp4\nc.mp4\n")
    with pytest.raises(InputListError) as caught:
        load_inputs(tmp_path / "l.csv")
    assert "'a' x2" in str(caught.value) and "'b_000000' x2" in str(caught.value)  # same file, same window


def test_bad_rows_and_inputs_are_clear_errors(tmp_path):
    (tmp_path / "l.csv").write_text("video_path,start_s\na.mp4,soon\n")
    with pytest.raises(InputListError, match="l.csv:2"):
        read_clip_list(tmp_path / "l.csv")
    with pytest.raises(InputListError, match="does not exist"):
        load_inputs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputListError, match="no clips"):
        load_inputs(tmp_path / "empty")


def test_limit_and_digest(tmp_path):
    for name in ["a.mp4", "b.mp4", "c.mp4"]:
        _touch(tmp_path / "in" / name)
    inputs = load_inputs(tmp_path / "in", limit=2)
    clips = inputs.clips
    assert [c.clip_id for c in clips] == ["a", "b"] and inputs.root == tmp_path / "in"
    moved = tmp_path / "elsewhere"
    (tmp_path / "in").rename(moved)
    same = load_inputs(moved, limit=2).clips
    assert inputs_digest(same) == inputs_digest(clips)  # absolute location does not matter
    assert inputs_digest(load_inputs(moved).clips) != inputs_digest(clips)


def test_paths_are_stored_relative_to_the_input_root_never_absolute(tmp_path):
    """Issue 8.5: clip ids and video paths never carry this machine's folders."""
    inside = _touch(tmp_path / "lists" / "v" / "a.mp4")
    outside = _touch(tmp_path / "elsewhere" / "b.mp4")
    listing = tmp_path / "lists" / "l.csv"
    listing.write_text(f"video_path\n{inside}\n{outside}\n")
    with pytest.raises(InputListError, match=r"l\.csv:3: .*b\.mp4 is outside the input root"):
        read_clip_list(listing)
    (tmp_path / "lists" / "up.csv").write_text("video_path\n../elsewhere/b.mp4\n")
    with pytest.raises(InputListError, match="outside the input root"):
        read_clip_list(tmp_path / "lists" / "up.csv")

    clips = read_clip_list(listing, input_root=tmp_path)  # a root holding both
    assert [(c.clip_id, c.video_path) for c in clips] == [
        ("lists/v/a", "lists/v/a.mp4"),
        ("elsewhere/b", "elsewhere/b.mp4"),
    ]
    assert clips[1].source == str(outside)

    allowed = read_clip_list(listing, allow_absolute_paths=True)
    assert allowed[0].video_path == "v/a.mp4" and allowed[1].video_path == str(outside)
    inputs = load_inputs(listing, input_root=tmp_path)
    assert not any(str(tmp_path) in c.clip_id + c.video_path for c in inputs.clips)


@pytest.mark.parametrize("start", ["nan", "inf", "-inf", "-1", "NaN"])
def test_non_finite_or_negative_starts_are_errors_naming_the_line(start, tmp_path):
    (tmp_path / "l.csv").write_text(f"video_path,start_s\na.mp4,0\nb.mp4,{start}\n")
    with pytest.raises(InputListError, match=r"l\.csv:3: .*start"):
        read_clip_list(tmp_path / "l.csv")
    (tmp_path / "l.jsonl").write_text('{"video_path": "a.mp4"}\n{"video_path": "b.mp4", "start_s": NaN}\n')
    with pytest.raises(InputListError, match=r"l\.jsonl:2: .*not a finite number"):
        read_clip_list(tmp_path / "l.jsonl")


def test_a_folder_input_reports_the_files_it_skipped(tmp_path):
    for name in ["a.mp4", "sound.m4a", "notes.txt", ".DS_Store", "sub/b.mkv", "sub/readme.md"]:
        _touch(tmp_path / name)
    inputs = load_inputs(tmp_path)
    assert [c.video_path for c in inputs.clips] == ["a.mp4", "sub/b.mkv"]
    assert inputs.skipped == ("notes.txt", "sound.m4a", "sub/readme.md")
    (tmp_path / "only_audio").mkdir()
    _touch(tmp_path / "only_audio" / "x.m4a")
    with pytest.raises(InputListError, match=r"no clips found .*\(1 files skipped: not video files\)"):
        load_inputs(tmp_path / "only_audio")
