"""Labels outside `avt finetune --label-csv`'s class list: ignored and counted once (a clip left without a known
label is skipped), or a one-line error up front when so many are unknown that the list is likely the wrong one."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from avt.cli import main as avt_main
from avt_triplets.tiny.label_lists import AUDIOSET_CLASSES, VGGSOUND_CLASSES, write_class_labels_indices

UNKNOWN_LOG = "not in the class list"


def _finetune(model, train, test, classes, output, *extra) -> list[str]:
    argv = ["finetune", "--model", str(model), "--dataset", str(train), "--eval-dataset", str(test)]
    argv += [
        "--eval-split",
        "train",
        "--label-csv",
        str(classes),
        "--output-dir",
        str(output),
        "--max-steps",
        "1",
    ]
    argv += ["--per-device-batch-size", "4", "--per-device-eval-batch-size", "4", "--num-workers", "0"]
    return [*argv, "--report-to", "none", "--no-multi-frame-eval", *extra]


def _vggsound_classes(path, count: int):
    return write_class_labels_indices(
        path, [(f"/vgg/{i}", name) for i, name in enumerate(VGGSOUND_CLASSES[:count])]
    )


def test_collator_ignores_an_unknown_label_next_to_a_known_one():
    from avt_training.collators import ClassificationCollator

    label2id = {"Dog": 0, "/m/0bt9lr": 0, "Cat": 1}
    collator = ClassificationCollator(processor=None, label2id=label2id)
    assert collator.label_ids(["Dog", "Domestic animals, pets"]) == [0]
    assert collator.label_ids(["/m/0bt9lr", "Cat", "Speech"]) == [0, 1]
    with pytest.raises(ValueError, match="no label in the class list"):
        collator.label_ids(["Speech"])


def test_multi_label_rows_with_one_unknown_label_train_on_the_known_one(
    labelled_sets, fast_tiny_model, tmp_path, caplog, single_thread
):
    """AudioSet-style rows: two training clips and one eval clip carry a second label the class list lacks."""
    train, test = labelled_sets["audioset"]
    classes = write_class_labels_indices(
        tmp_path / "five.csv", AUDIOSET_CLASSES[:5]
    )  # no "Domestic animals, pets"
    caplog.set_level(logging.INFO)
    assert avt_main(_finetune(fast_tiny_model, train, test, classes, tmp_path / "ft")) == 0
    results = json.loads((tmp_path / "ft" / "eval_results.json").read_text())
    assert results["problem_type"] == "multi_label_classification" and results["num_classes"] == 5
    assert results["train_clips"] == 8 and "mAP" in results["single_frame"]
    assert results["unknown_labels"]["train"] == {
        "labels": 10,
        "unknown": 2,
        "clips_with_unknown": 2,
        "clips_skipped": 0,
        "names": ["Domestic animals, pets"],
    }
    assert results["unknown_labels"]["eval"]["unknown"] == 1
    reports = [r.getMessage() for r in caplog.records if UNKNOWN_LOG in r.getMessage()]
    assert len(reports) == 2, reports  # once for the training clips, once for the eval clips
    assert reports[0].startswith("training clips: 2 of 10 labels (20.0%)")


def test_single_label_clips_of_an_unknown_class_are_skipped_and_counted(
    labelled_sets, fast_tiny_model, tmp_path, single_thread
):
    train, test = labelled_sets["vggsound"]
    classes = _vggsound_classes(tmp_path / "three.csv", 3)
    assert avt_main(_finetune(fast_tiny_model, train, test, classes, tmp_path / "ft")) == 0
    results = json.loads((tmp_path / "ft" / "eval_results.json").read_text())
    assert results["problem_type"] == "single_label_classification" and results["num_classes"] == 3
    assert results["train_clips"] == 6
    assert results["unknown_labels"]["train"] == {
        "labels": 8,
        "unknown": 2,
        "clips_with_unknown": 2,
        "clips_skipped": 2,
        "names": [VGGSOUND_CLASSES[3]],
    }
    assert results["unknown_labels"]["eval"]["clips_skipped"] == 1


def test_mostly_unknown_labels_stop_the_run_up_front_unless_a_subset_is_meant(
    labelled_sets, fast_tiny_model, tmp_path, capsys, single_thread
):
    train, test = labelled_sets["vggsound"]
    classes = _vggsound_classes(tmp_path / "one.csv", 1)  # 6 of 8 training labels unknown: the wrong list?
    assert avt_main(_finetune(fast_tiny_model, train, test, classes, tmp_path / "ft")) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("error: ")
    assert "6 of 8 labels (75.0%) of the training clips are not in the class list" in error
    assert "--max-unknown-label-fraction" in error
    assert not (tmp_path / "ft").exists(), "nothing may start before the check"

    # a deliberate subset of classes trains (its 2 clips are one batch: fewer than one batch is refused)
    extra = ["--max-unknown-label-fraction", "1", "--per-device-batch-size", "2"]
    assert avt_main(_finetune(fast_tiny_model, train, test, classes, tmp_path / "subset", *extra)) == 0
    results = json.loads((tmp_path / "subset" / "eval_results.json").read_text())
    assert results["train_clips"] == 2 and results["unknown_labels"]["train"]["clips_skipped"] == 6


def test_unknown_label_fraction_option_is_checked():
    from avt_core.errors import UsageError
    from avt_training.finetune_config import FinetuneConfig

    base = {"model_name_or_path": "m", "datasets": ["d"], "output_dir": "o"}
    with pytest.raises(UsageError, match="--max-unknown-label-fraction"):
        FinetuneConfig.from_any({**base, "max_unknown_label_fraction": 1.5})
    assert np.isclose(FinetuneConfig.from_any(base).max_unknown_label_fraction, 0.5)
