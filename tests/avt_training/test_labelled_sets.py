"""Labelled sets made without captioning (`avt generate --captioner none`) from VGGSound- and AudioSet-style lists
fine-tune (`avt finetune`) and evaluate (`avt evaluate classification|retrieval`, text retrieval skipped with a
note); pretraining with text refuses them with the reason."""

from __future__ import annotations

import json

import pytest

from avt.cli import main as avt_main
from avt_triplets.tiny.label_lists import AUDIOSET_CLASSES


@pytest.mark.parametrize(
    ("source", "problem_type", "num_classes", "metric"),
    [
        ("vggsound", "single_label_classification", 4, "accuracy"),
        ("audioset", "multi_label_classification", len(AUDIOSET_CLASSES), "mAP"),
    ],
)
def test_labelled_outputs_finetune_and_evaluate(
    source,
    problem_type,
    num_classes,
    metric,
    labelled_sets,
    label_lists,
    fast_tiny_model,
    tmp_path,
    single_thread,
):
    train, test = labelled_sets[source]
    finetune = [
        "finetune",
        "--model",
        str(fast_tiny_model),
        "--dataset",
        str(train),
        "--eval-dataset",
        str(test),
    ]
    finetune += ["--eval-split", "train", "--output-dir", str(tmp_path / "ft"), "--max-steps", "2"]
    finetune += ["--per-device-batch-size", "4", "--per-device-eval-batch-size", "4", "--num-workers", "0"]
    finetune += ["--report-to", "none", "--no-multi-frame-eval"]
    if source == "audioset":  # the class list fixes the head's classes and order
        finetune += ["--label-csv", str(label_lists["class_labels"])]
    assert avt_main(finetune) == 0
    results = json.loads((tmp_path / "ft" / "eval_results.json").read_text())
    assert results["problem_type"] == problem_type and results["num_classes"] == num_classes
    assert results["train_clips"] == 8 and metric in results["single_frame"]

    common = [
        "--dataset",
        f"{source}={test}",
        "--device",
        "cpu",
        "--no-progress",
        "--per-device-eval-batch-size",
        "4",
    ]
    report = tmp_path / "report"
    assert (
        avt_main(
            [
                "evaluate",
                "classification",
                "--model",
                str(tmp_path / "ft"),
                *common,
                "--output-dir",
                str(report),
            ]
        )
        == 0
    )
    (entry,) = json.loads((report / "classification.json").read_text())["entries"]
    assert entry["num_clips"] == 4 and entry["metric"] == metric and entry["problem_type"] == problem_type

    retrieval = ["evaluate", "retrieval", "--model", str(fast_tiny_model), *common, "--protocol", "full"]
    assert avt_main([*retrieval, "--output-dir", str(report)]) == 0
    (entry,) = json.loads((report / "retrieval.json").read_text())["entries"]
    assert set(entry["metrics"]) == {"audio_to_visual", "visual_to_audio"} and entry["num_clips"] == 4
    assert entry["notes"] and "no text_embedding column" in entry["notes"][0]
    assert (
        "no text retrieval: the dataset has no text_embedding column" in (report / "retrieval.md").read_text()
    )


def test_an_eval_dataset_without_the_eval_split_is_an_error_not_a_silent_skip(
    labelled_sets, fast_tiny_model, tmp_path, capsys
):
    train, test = labelled_sets["vggsound"]
    argv = ["finetune", "--model", str(fast_tiny_model), "--dataset", str(train), "--eval-dataset", str(test)]
    argv += ["--eval-split", "test"]  # named: it must exist
    assert avt_main([*argv, "--output-dir", str(tmp_path), "--max-steps", "1", "--report-to", "none"]) == 2
    error = capsys.readouterr().err
    assert "no 'test' split" in error and "pass --eval-split train" in error


def test_the_default_eval_split_is_one_the_eval_dataset_has(
    labelled_sets, fast_tiny_model, tmp_path, single_thread
):
    """`avt generate --split test` makes an output whose only split is `train`: the default evaluates on it."""
    train, test = labelled_sets["vggsound"]
    argv = ["finetune", "--model", str(fast_tiny_model), "--dataset", str(train), "--eval-dataset", str(test)]
    argv += ["--output-dir", str(tmp_path / "ft"), "--max-steps", "1", "--report-to", "none"]
    argv += ["--per-device-batch-size", "4", "--per-device-eval-batch-size", "4", "--num-workers", "0"]
    assert avt_main([*argv, "--no-multi-frame-eval", "--save-strategy", "no"]) == 0
    results = json.loads((tmp_path / "ft" / "eval_results.json").read_text())
    assert "accuracy" in results["single_frame"] and results["unknown_labels"]["eval"]["labels"] > 0


def test_pretraining_with_text_names_why_a_labelled_output_cannot_serve(
    labelled_sets, fast_tiny_model, tmp_path, capsys
):
    train, _ = labelled_sets["vggsound"]
    argv = [
        "pretrain",
        "--model-name-or-path",
        str(fast_tiny_model),
        "--dataset",
        str(train),
        "--output-dir",
        str(tmp_path),
    ]
    assert avt_main([*argv, "--max-steps", "1", "--report-to", "none"]) == 2
    error = capsys.readouterr().err
    assert "lacks column(s) ['text_embedding']" in error and "--captioner none" in error
