"""`avt generate --split all` keeps each clip's split as a column and exposes the list's splits to `load_dataset`
(the card names each split's shards; shards never mix splits), so `avt finetune` finds a `test` split to evaluate
on and `load_dataset(DIR, split="test")` is the held-out set."""

from __future__ import annotations

import datasets
import pytest
import yaml

from avt.cli import main as avt_main
from avt_triplets.inputs import ALL_SPLITS, read_clip_list
from avt_triplets.stages.reader import plan_shards


@pytest.fixture(scope="module")
def interleaved_list(tmp_path_factory):
    """VGGSound's csv as published: sorted by YouTube id, so train and test rows interleave."""
    from avt_triplets.tiny.label_lists import make_youtube_clips, write_vggsound_csv

    root = tmp_path_factory.mktemp("split_all")
    clips = make_youtube_clips(root / "clips", {"train": 8, "test": 4}, num_classes=4)
    return write_vggsound_csv(root / "clips" / "vggsound.csv", sorted(clips, key=lambda clip: clip.ytid))


@pytest.fixture(scope="module")
def split_all_output(interleaved_list, tmp_path_factory):
    output = tmp_path_factory.mktemp("split_all_out") / "vgg"
    argv = ["generate", str(interleaved_list), "-o", str(output), "--captioner", "none", "--num-workers", "0"]
    assert avt_main([*argv, "--no-progress", "--split", ALL_SPLITS, "--shard-size", "5"]) == 0
    return output


def test_split_all_clips_keep_their_split_and_shards_hold_one_split(interleaved_list):
    rows = [line.rsplit(",", 1)[1].strip() for line in interleaved_list.read_text().splitlines()]
    assert rows != sorted(rows, key=rows.index)  # the list really interleaves
    clips = read_clip_list(interleaved_list, split=ALL_SPLITS)
    assert [clip.split for clip in clips] == ["train"] * 8 + ["test"] * 4
    assert [[clip.split for clip in shard] for shard in plan_shards(clips, 5)] == [
        ["train"] * 5,
        ["train"] * 3,
        ["test"] * 4,
    ]
    assert all(clip.split is None for clip in read_clip_list(interleaved_list, split="test"))


def test_load_dataset_sees_the_list_splits_with_a_split_column(split_all_output):
    loaded = datasets.load_dataset(str(split_all_output))
    assert sorted(loaded) == ["test", "train"]
    assert loaded["train"]["split"] == ["train"] * 8 and loaded["test"]["split"] == ["test"] * 4
    card = yaml.safe_load((split_all_output / "README.md").read_text().split("---")[1])
    default = next(c for c in card["configs"] if c.get("default"))
    assert [entry["split"] for entry in default["data_files"]] == ["train", "test"]


def test_training_reads_the_test_split_in_place(split_all_output):
    from avt_training.data import load_triplet_datasets

    held_out = load_triplet_datasets([str(split_all_output)], columns=("labels", "split"), split="test")
    assert len(held_out) == 4 and set(held_out["split"]) == {"test"}


def test_other_outputs_have_no_split_column(interleaved_list, tmp_path):
    output = tmp_path / "test_only"
    argv = ["generate", str(interleaved_list), "-o", str(output), "--captioner", "none", "--num-workers", "0"]
    assert avt_main([*argv, "--no-progress", "--split", "test"]) == 0
    loaded = datasets.load_dataset(str(output))
    assert list(loaded) == ["train"] and "split" not in loaded["train"].column_names
