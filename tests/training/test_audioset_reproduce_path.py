"""docs/reproduce.md's AudioSet classification path, end to end through the `avt` command: segment CSVs as Google
ships them generated WITHOUT --label-csv (labels stay mids), `avt finetune --label-csv class_labels_indices.csv`
(the head's classes named by display name), then `avt evaluate classification` on the mid-labelled eval set."""

from __future__ import annotations

import json

from avt_triplets.cli import main as avt_main
from avt_triplets.tiny.label_lists import AUDIOSET_CLASSES


def _generate(listing, output) -> None:
    argv = ["generate", str(listing), "-o", str(output), "--captioner", "none", "--num-workers", "0"]
    assert avt_main([*argv, "--no-progress"]) == 0


def test_mid_labelled_sets_finetune_and_evaluate_with_the_class_list(
    label_lists, fast_tiny_model, tmp_path, single_thread
):
    train, test = tmp_path / "audioset_20k", tmp_path / "audioset_eval"
    _generate(label_lists["balanced_train"], train)
    _generate(label_lists["eval"], test)

    model = tmp_path / "finetuned"
    finetune = [
        "finetune",
        "--model",
        str(fast_tiny_model),
        "--dataset",
        str(train),
        "--eval-dataset",
        str(test),
    ]
    finetune += ["--eval-split", "train", "--label-csv", str(label_lists["class_labels"])]
    finetune += ["--output-dir", str(model), "--max-steps", "2", "--per-device-batch-size", "4"]
    finetune += ["--per-device-eval-batch-size", "4", "--num-workers", "0", "--report-to", "none"]
    assert avt_main([*finetune, "--no-multi-frame-eval"]) == 0
    results = json.loads((model / "eval_results.json").read_text())
    assert results["num_classes"] == len(AUDIOSET_CLASSES)
    assert results["unknown_labels"]["eval"]["unknown"] == 0  # finetune's own evaluation mapped the mids

    report = tmp_path / "report"
    evaluate = ["evaluate", "classification", "--model", str(model), "--dataset", f"audioset={test}"]
    evaluate += ["--device", "cpu", "--no-progress", "--batch-size", "4", "--output-dir", str(report)]
    assert avt_main(evaluate) == 0
    (entry,) = json.loads((report / "classification.json").read_text())["entries"]
    assert entry["num_clips"] == len(label_lists["clips"]["test"]) and entry["num_without_known_label"] == 0
    assert entry["metric"] == "mAP" and entry["problem_type"] == "multi_label_classification"
    assert 0.0 <= entry["multi_frame"]["mAP"] <= 1.0

    # how it knew: the fine-tuned config records the classes' ids beside their display names
    config = json.loads((model / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(AUDIOSET_CLASSES))] == [
        n for _, n in AUDIOSET_CLASSES
    ]
    assert config["class_mids"] == [mid for mid, _ in AUDIOSET_CLASSES]
