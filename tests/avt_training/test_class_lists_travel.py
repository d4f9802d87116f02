"""The class list travels from the list to the data to the model, end to end through the `avt` command.

docs/reproduce.md's AudioSet classification path: segment CSVs as Google ships them generated WITHOUT --label-csv
(labels stay mids), `avt finetune --label-csv class_labels_indices.csv` (the head's classes named by display
name), then `avt evaluate classification` on the mid-labelled eval set. VGGSound's: a partial download's train
split fine-tunes a head of every class of `vggsound.csv`, so a test label absent from the downloaded train clips is
still a class."""

from __future__ import annotations

import json

from support.vggsound_lists import EVERY_CLASS, write_partial_vggsound_download

from avt.cli import main as avt_main
from avt_triplets.tiny.label_lists import AUDIOSET_CLASSES


def _generate(listing, output, *extra) -> None:
    argv = ["generate", str(listing), "-o", str(output), "--captioner", "none", "--num-workers", "0"]
    assert avt_main([*argv, "--no-progress", *extra]) == 0


def _finetune(model, train, test, output, *extra) -> dict:
    argv = ["finetune", "--model", str(model), "--dataset", str(train), "--eval-dataset", str(test)]
    argv += ["--eval-split", "train", "--output-dir", str(output), "--max-steps", "2", "--num-workers", "0"]
    argv += ["--per-device-batch-size", "2", "--per-device-eval-batch-size", "4", "--report-to", "none"]
    assert avt_main([*argv, "--no-multi-frame-eval", *extra]) == 0
    return json.loads((output / "eval_results.json").read_text())


def _evaluate_classification(model, test, report, *extra) -> dict:
    argv = ["evaluate", "classification", "--model", str(model), "--dataset", f"set={test}"]
    argv += [
        "--device",
        "cpu",
        "--no-progress",
        "--per-device-eval-batch-size",
        "4",
        "--output-dir",
        str(report),
    ]
    assert avt_main([*argv, *extra]) == 0
    (entry,) = json.loads((report / "classification.json").read_text())["entries"]
    return entry


def test_mid_labelled_sets_finetune_and_evaluate_with_the_class_list(
    label_lists, fast_tiny_model, tmp_path, single_thread, capsys
):
    train, test = tmp_path / "audioset_20k", tmp_path / "audioset_eval"
    _generate(label_lists["balanced_train"], train)
    _generate(label_lists["eval"], test)

    model = tmp_path / "finetuned"
    results = _finetune(fast_tiny_model, train, test, model, "--label-csv", str(label_lists["class_labels"]))
    assert results["num_classes"] == len(AUDIOSET_CLASSES)
    assert results["unknown_labels"]["eval"]["unknown"] == 0  # finetune's own evaluation mapped the mids

    entry = _evaluate_classification(model, test, tmp_path / "report")
    assert entry["num_clips"] == len(label_lists["clips"]["test"]) and entry["num_without_known_label"] == 0
    assert entry["metric"] == "mAP" and entry["problem_type"] == "multi_label_classification"
    assert 0.0 <= entry["multi_frame"]["mAP"] <= 1.0

    # how it knew: the fine-tuned config records the classes' ids beside their display names
    config = json.loads((model / "config.json").read_text())
    names = [config["id2label"][str(i)] for i in range(len(AUDIOSET_CLASSES))]
    assert names == [name for _, name in AUDIOSET_CLASSES]
    assert config["class_mids"] == [mid for mid, _ in AUDIOSET_CLASSES]

    # a classifier fine-tuned before avt recorded class ids (config.json with id2label only): one error line
    # saying why, and `--label-csv` bridges the mids to its display names
    del config["class_mids"]
    (model / "config.json").write_text(json.dumps(config))
    refused = ["evaluate", "classification", "--model", str(model), "--dataset", f"set={test}"]
    assert avt_main([*refused, "--device", "cpu", "--output-dir", str(tmp_path / "refused")]) == 2
    error = capsys.readouterr().err
    assert "no clip has a label the model knows" in error and "--label-csv" in error and "/m/" in error
    listed = ["--label-csv", str(label_lists["class_labels"])]
    entry = _evaluate_classification(model, test, tmp_path / "report_listed", *listed)
    assert entry["num_clips"] == len(label_lists["clips"]["test"]) and entry["num_without_known_label"] == 0


def test_a_model_whose_classes_are_mids_evaluates_a_set_labelled_with_display_names(
    label_lists, fast_tiny_model, tmp_path, single_thread
):
    """The reverse: fine-tuned without --label-csv on mids, evaluated on a set made with --label-csv, whose manifest
    records the class list (ids and names) that bridges the two."""
    train, named_test = tmp_path / "audioset_20k", tmp_path / "audioset_eval_named"
    _generate(label_lists["balanced_train"], train)
    _generate(label_lists["eval"], named_test, "--label-csv", str(label_lists["class_labels"]))

    model = tmp_path / "finetuned"
    results = _finetune(fast_tiny_model, train, named_test, model)
    assert results["unknown_labels"]["eval"]["unknown"] == 0
    config = json.loads((model / "config.json").read_text())
    mids = {mid for mid, _ in AUDIOSET_CLASSES}
    assert set(config["id2label"].values()) <= mids  # the head knows mids only

    entry = _evaluate_classification(model, named_test, tmp_path / "report")
    assert entry["num_clips"] == len(label_lists["clips"]["test"]) and entry["num_without_known_label"] == 0


def test_a_partial_vggsound_download_fine_tunes_every_class_of_the_list(
    fast_tiny_model, tmp_path, single_thread
):
    listing = write_partial_vggsound_download(tmp_path / "clips")
    train, test = tmp_path / "vgg_train", tmp_path / "vgg_test"
    _generate(listing, train, "--split", "train")
    _generate(listing, test, "--split", "test")

    model = tmp_path / "finetuned"
    results = _finetune(fast_tiny_model, train, test, model)  # no --label-csv: the data's recorded list
    assert results["num_classes"] == len(EVERY_CLASS) and results["train_clips"] == 4
    assert (
        results["unknown_labels"]["eval"]["unknown"] == 0
    )  # "engine accelerating..." is not in train's clips
    config = json.loads((model / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(EVERY_CLASS))] == EVERY_CLASS

    entry = _evaluate_classification(model, test, tmp_path / "report")
    assert entry["num_clips"] == 2 and entry["num_without_known_label"] == 0 and entry["metric"] == "accuracy"
