"""Labelled lists as VGGSound and AudioSet publish them: headerless / commented CSVs, quoting, spaces after commas,
the split column, ontology ids mapped to display names through a class list."""

from __future__ import annotations

import pytest

from avt_core.errors import UsageError
from avt_triplets.inputs import InputListError, load_inputs, read_clip_list
from avt_triplets.labels import read_class_table
from avt_triplets.tiny.label_lists import (
    AUDIOSET_CLASSES,
    YoutubeClip,
    write_audioset_segments,
    write_class_labels_indices,
    write_vggsound_csv,
)

CLIPS = [
    YoutubeClip("---g-f_I2yQ", 1, 0, "test"),
    YoutubeClip("0_8-g2rof7E", 49, 1, "train"),
    YoutubeClip("-XxUW9gW6mc", 60, 3, "train"),
    YoutubeClip("glLQrEijrKg", 300, 2, "test"),
]


def test_vggsound_csv_split_column_selects_rows_and_quoted_labels_keep_their_commas(tmp_path):
    listing = write_vggsound_csv(tmp_path / "vggsound.csv", CLIPS)
    text = listing.read_text()
    assert text.splitlines()[1] == '0_8-g2rof7E,49,"heart sounds, heartbeat",train'  # the real file's quoting
    train = read_clip_list(listing, split="train")
    assert [(c.clip_id, c.labels) for c in train] == [
        ("0_8-g2rof7E_000049", ("heart sounds, heartbeat",)),
        ("-XxUW9gW6mc_000060", ("engine accelerating, revving, vroom",)),
    ]
    assert train[0].video_path == "0_8-g2rof7E_000049.mp4"
    test = read_clip_list(listing, split="test")
    assert [c.clip_id for c in test] == ["---g-f_I2yQ_000001", "glLQrEijrKg_000300"]
    assert len(read_clip_list(listing, split="all")) == 4


def test_a_list_with_several_splits_needs_one_and_a_missing_split_is_named(tmp_path):
    listing = write_vggsound_csv(tmp_path / "vggsound.csv", CLIPS)
    with pytest.raises(InputListError, match=r"splits test \(2 rows\), train \(2 rows\): pass --split"):
        load_inputs(listing)
    with pytest.raises(InputListError, match=r"--split val: no row .* has that split; it has test"):
        load_inputs(listing, split="val")
    one_split = write_vggsound_csv(tmp_path / "train.csv", [c for c in CLIPS if c.split == "train"])
    assert len(load_inputs(one_split).clips) == 2  # a single split needs no --split
    with pytest.raises(InputListError, match="applies to a list"):
        load_inputs(tmp_path, split="train")


def test_audioset_segments_with_comment_header_map_ids_to_display_names(tmp_path):
    segments = write_audioset_segments(
        tmp_path / "eval_segments.csv", CLIPS, extra_labels={"glLQrEijrKg": [1]}
    )
    assert segments.read_text().splitlines()[3] == '---g-f_I2yQ, 1.000, 11.000, "/m/09x0r"'
    raw = read_clip_list(segments)
    assert [c.clip_id for c in raw] == [
        "---g-f_I2yQ_000001",
        "0_8-g2rof7E_000049",
        "-XxUW9gW6mc_000060",
        "glLQrEijrKg_000300",
    ]
    assert raw[3].labels == ("/m/04rlf", "/m/05zppz")  # ids stay ids without a class list
    assert raw[3].video_path == "glLQrEijrKg_000300.mp4" and raw[3].start_s == 0.0  # trimmed downloads

    classes = read_class_table(write_class_labels_indices(tmp_path / "class_labels_indices.csv"))
    assert classes.names[1] == "Male speech, man speaking" and len(classes) == len(AUDIOSET_CLASSES)
    named = read_clip_list(segments, classes=classes)
    assert named[3].labels == ("Music", "Male speech, man speaking")
    assert named[0].labels == ("Speech",)
    inputs = load_inputs(segments, label_csv=tmp_path / "class_labels_indices.csv")
    assert [c.labels for c in inputs.clips] == [c.labels for c in named]
    with pytest.raises(InputListError, match="has no split column .*AudioSet's split is the file"):
        load_inputs(segments, split="train")


def test_labels_missing_from_the_class_list_and_bad_class_lists_are_errors(tmp_path):
    segments = write_audioset_segments(tmp_path / "balanced_train_segments.csv", CLIPS)
    short = write_class_labels_indices(tmp_path / "short.csv", AUDIOSET_CLASSES[:2])
    with pytest.raises(InputListError, match=r"2 label\(s\) are neither .* '/m/04rlf', '/m/0bt9lr'"):
        load_inputs(segments, label_csv=short)
    (tmp_path / "no_mid.csv").write_text("index,display_name\n0,Speech\n")
    with pytest.raises(UsageError, match="needs the columns index, mid, display_name"):
        load_inputs(segments, label_csv=tmp_path / "no_mid.csv")
    (tmp_path / "gap.csv").write_text('index,mid,display_name\n0,/m/09x0r,"Speech"\n2,/m/04rlf,"Music"\n')
    with pytest.raises(UsageError, match="0..N-1"):
        load_inputs(segments, label_csv=tmp_path / "gap.csv")
    with pytest.raises(UsageError, match="missing.csv"):
        load_inputs(segments, label_csv=tmp_path / "missing.csv")
