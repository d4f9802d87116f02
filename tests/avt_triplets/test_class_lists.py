"""Class lists travel with the data: one mapping of ids, display names and indices onto class indices
(`ClassTable.indices`), and VGGSound's class index derived from every row of `vggsound.csv`, the same for every
split whatever is on disk, recorded in the manifest and declared to `load_dataset` as `Sequence(ClassLabel)`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import datasets
import numpy as np
from support.vggsound_lists import (
    EVERY_CLASS,
    TEST_ON_DISK,
    TRAIN_ON_DISK,
    write_partial_vggsound_download,
)

from avt.cli import main as avt_main
from avt_triplets.labels import ClassTable, read_class_table
from avt_triplets.tiny.label_lists import AUDIOSET_CLASSES, write_class_labels_indices
from eval.classify import encode_targets


def test_ids_names_and_indices_map_to_one_class_index(tmp_path):
    table = read_class_table(write_class_labels_indices(tmp_path / "class_labels_indices.csv"))
    known, unknown = table.indices(["/m/09x0r", "Male speech, man speaking", np.int64(3), "/m/nope", 99])
    assert known == [0, 1, 3] and unknown == ["/m/nope", 99]
    assert table.indices(["Speech", "/m/09x0r"]) == ([0], [])  # a class named twice counts once
    assert table.display_name("/m/04rlf") == "Music" and table.display_name(True) is None


def test_a_model_config_carries_ids_and_names_back_to_the_mapping(tmp_path):
    table = read_class_table(write_class_labels_indices(tmp_path / "class_labels_indices.csv"))
    fields = table.config_fields()
    config = SimpleNamespace(num_labels=len(table), **fields)
    assert fields["id2label"][1] == "Male speech, man speaking" and fields["class_mids"][0] == "/m/09x0r"
    restored = ClassTable.from_model_config(config)
    assert restored.names == table.names and restored.mids == table.mids
    # a set labelled with mids against a model whose classes are display names
    targets, kept, unknown = encode_targets(
        [["/m/09x0r", "/m/05zppz"], ["/m/unknown"], ["Music"]], restored, multi_label=True
    )
    assert kept == [0, 2] and unknown == ["/m/unknown"]
    assert targets[0].tolist() == [1, 1, 0, 0, 0, 0] and targets[1].tolist() == [0, 0, 1, 0, 0, 0]
    # checkpoints saved before class_mids: names only, ids are unknown (counted, as before)
    older = ClassTable.from_model_config(SimpleNamespace(num_labels=len(table), id2label=fields["id2label"]))
    assert older.mids == () and older.indices(["/m/09x0r"]) == ([], ["/m/09x0r"])


def test_another_lists_ids_and_names_bridge_to_a_table_that_knows_one_of_them(tmp_path):
    class_list = read_class_table(write_class_labels_indices(tmp_path / "class_labels_indices.csv"))
    mids_only = ClassTable.from_labels([["/m/04rlf"], ["/m/09x0r", "/m/0bt9lr"]])  # a head fine-tuned on mids
    assert mids_only.indices(["Speech", "Dog"]) == ([], ["Speech", "Dog"])
    bridged = mids_only.bridged(class_list)
    assert bridged.names == mids_only.names and bridged.indices(["Speech", "Dog", "Cat"]) == ([1, 2], ["Cat"])
    names_only = ClassTable.from_labels([["Music", "Speech"]])  # the reverse
    assert names_only.bridged(class_list).indices(["/m/09x0r", "/m/04rlf"]) == ([1, 0], [])
    assert mids_only.bridged(None) is mids_only


def test_every_vggsound_split_gets_the_class_index_of_the_whole_list(tmp_path):
    listing = write_partial_vggsound_download(tmp_path / "clips")
    assert '"heart sounds, heartbeat"' in listing.read_text()
    outputs = {}
    for split in ("test", "train"):
        outputs[split] = tmp_path / f"vgg_{split}"
        argv = ["generate", str(listing), "--split", split, "-o", str(outputs[split]), "--captioner", "none"]
        assert avt_main([*argv, "--num-workers", "0", "--no-progress"]) == 0

    for split, on_disk in (("train", TRAIN_ON_DISK), ("test", TEST_ON_DISK)):
        manifest = json.loads((outputs[split] / "manifest.json").read_text())
        assert manifest["classes"]["names"] == EVERY_CLASS and manifest["classes"]["num_classes"] == 5
        assert "vggsound.csv (all splits)" in manifest["classes"]["source"]
        assert str(tmp_path) not in manifest["classes"]["source"]  # published with the data
        card = (outputs[split] / "README.md").read_text()
        assert "class_label:" in card and "Class list: 5 classes" in card

        loaded = datasets.load_dataset(str(outputs[split]), split="train")
        feature = loaded.features["labels"].feature
        assert isinstance(feature, datasets.ClassLabel) and feature.names == EVERY_CLASS
        by_clip = dict(zip(loaded["clip_id"], loaded["labels"]))
        assert len(by_clip) == len(on_disk)  # the missing videos are failures, not rows
        assert sorted(EVERY_CLASS[i] for row in by_clip.values() for i in row) == sorted(on_disk)

    # at a URL (datasets reads no card there) avt_data.hf_dataset declares the same features
    from avt_data.hf_dataset import load_dataset as load_at_url

    at_url = load_at_url(outputs["test"].as_uri())
    assert at_url.features["labels"].feature.names == EVERY_CLASS and at_url["labels"] == loaded["labels"]

    # the in-place reader training and evaluation use still sees the label strings
    from avt_data.parquet_rows import load_triplets

    rows = load_triplets([str(outputs["test"])], columns=["labels"])
    assert sorted(label for row in rows["labels"] for label in row) == sorted(TEST_ON_DISK)


def test_lists_without_splits_or_class_lists_keep_plain_string_labels(label_lists, tmp_path):
    """AudioSet's segment files without --label-csv: no class list is known, so none is claimed."""
    output = tmp_path / "as_eval"
    argv = ["generate", str(label_lists["eval"]), "-o", str(output), "--captioner", "none"]
    assert avt_main([*argv, "--num-workers", "0", "--no-progress"]) == 0
    assert json.loads((output / "manifest.json").read_text())["classes"] is None
    loaded = datasets.load_dataset(str(output), split="train")
    assert loaded.features["labels"].feature == datasets.Value("string")
    assert {label for row in loaded["labels"] for label in row} <= {mid for mid, _ in AUDIOSET_CLASSES}
