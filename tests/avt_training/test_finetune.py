"""Fine-tuning on transformers.Trainer: learns on labelled synthetic clips, reports single- and multi-frame
metrics of the right kind, and follows the official optimiser and schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avt_training.finetune import (
    FinetuneConfig,
    finetune,
    infer_problem_type,
    metrics_from_logits,
)
from avt_training.finetune_trainer import official_step_lambda
from avt_triplets.labels import read_class_table
from eval.classification import average_per_clip


def _config(model, train, heldout, output_dir, **overrides) -> FinetuneConfig:
    values = dict(
        model_name_or_path=str(model),
        datasets=[str(train)],
        eval_datasets=[str(heldout)],
        eval_split="train",  # the held-out folder's only split
        output_dir=str(output_dir),
        per_device_batch_size=16,
        per_device_eval_batch_size=16,
        num_epochs=3,
        learning_rate=1e-3,
        head_lr_multiplier=10.0,
        lr_decay_start_epoch=2,
        num_workers=0,
        logging_steps=1,
        report_to=["none"],
    )
    values.update(overrides)
    return FinetuneConfig(**values)


@pytest.mark.slow
def test_finetune_single_label_learns_with_official_recipe(
    tmp_path, fast_tiny_model, synthetic_train, synthetic_heldout, single_thread
):
    output = finetune(_config(fast_tiny_model, synthetic_train, synthetic_heldout, tmp_path / "ft"))
    results = json.loads((output / "eval_results.json").read_text())
    assert results["problem_type"] == "single_label_classification" and results["num_classes"] == 8
    chance = 1 / 8
    print("fine-tuning:", results["single_frame"], results["multi_frame"])
    assert results["single_frame"]["accuracy"] >= 4 * chance
    assert results["multi_frame"]["accuracy"] >= 4 * chance
    assert results["multi_frame"]["frames_evaluated"] == 48 * 3  # every frame of every held-out clip

    # The saved model and processor reload; the head covers the 8 classes.
    from modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeProcessor

    model = LGCavMaeForAudioVisualClassification.from_pretrained(output)
    assert model.config.num_labels == 8 and model.config.id2label[0] == "class_0"
    assert LGCavMaeProcessor.from_pretrained(output).audio_length == 128

    # Official schedule: 8 steps per epoch (128 clips / 16), lr halved from epoch 3 on (decay start epoch 2).
    state = json.loads((output / "checkpoint-24" / "trainer_state.json").read_text())
    lr = {r["step"]: r["learning_rate"] for r in state["log_history"] if "learning_rate" in r}
    assert all(lr[step] == pytest.approx(1e-3) for step in range(1, 17))
    assert all(lr[step] == pytest.approx(5e-4) for step in range(17, 25))


@pytest.mark.slow
def test_finetune_multi_label_reports_map(tmp_path, fast_tiny_model, single_thread):
    from avt_training.synthetic import make_synthetic_triplets

    kwargs = dict(num_classes=4, seconds=1.3, frame_size=48, parity_label=True)
    train = make_synthetic_triplets(tmp_path / "train", clips_per_class=8, seed=1, **kwargs)
    heldout = make_synthetic_triplets(tmp_path / "heldout", clips_per_class=3, seed=2, **kwargs)
    output = finetune(
        _config(fast_tiny_model, train, heldout, tmp_path / "ft", num_epochs=1, save_strategy="no")
    )
    results = json.loads((output / "eval_results.json").read_text())
    assert results["problem_type"] == "multi_label_classification" and results["num_classes"] == 6
    for key in ("single_frame", "multi_frame"):
        assert 0.0 <= results[key]["mAP"] <= 1.0 and results[key]["num_classes_scored"] == 6
        assert "accuracy" not in results[key]


def test_class_list_from_official_csv_maps_mids_and_names(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text('index,mid,display_name\n1,/m/b,"Dog, bark"\n0,/m/a,Speech\n')
    classes = read_class_table(csv_path)
    assert classes.names == ("Speech", "Dog, bark") and classes.mids == ("/m/a", "/m/b")
    assert classes.index == {"/m/a": 0, "Speech": 0, "/m/b": 1, "Dog, bark": 1}
    assert infer_problem_type([["a"], ["b"]]) == "single_label_classification"
    assert infer_problem_type([["a"], ["a", "b"]]) == "multi_label_classification"


def test_official_epoch_step_schedule():
    factor = official_step_lambda(steps_per_epoch=4, start_epoch=2, step_epochs=1, gamma=0.5)
    # MultiStepLR(milestones=range(2, 1000)) stepped after each epoch: epochs 1-2 at lr, epoch 3 lr/2, epoch 4 lr/4.
    assert [factor(s) for s in range(16)] == [1.0] * 8 + [0.5] * 4 + [0.25] * 4


def test_the_multistep_schedule_counts_epochs_in_trainers_steps():
    """With --max-steps the schedule's epoch length is Trainer's: 10 batches at accumulation 3 are 4 optimizer steps
    (the last, incomplete accumulation steps too), not 3, or the lr decays drift earlier every epoch."""
    from types import SimpleNamespace

    from avt_training.finetune_trainer import LGCavMaeTrainer

    trainer = SimpleNamespace(
        get_train_dataloader=lambda: range(10), args=SimpleNamespace(gradient_accumulation_steps=3)
    )
    assert LGCavMaeTrainer._steps_per_epoch(trainer) == 4


def test_metrics_and_multi_frame_averaging_are_the_official_ones():
    # Two clips with 2 and 1 frames; single-label accuracy from averaged softmax outputs.
    logits = np.array([[4.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    clip_of_row = np.array([0, 0, 1])
    scores = average_per_clip(logits, clip_of_row, "single_label_classification")
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(scores, [(softmax[0] + softmax[1]) / 2, softmax[2]])
    targets = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert metrics_from_logits(
        scores.argmax(1)[:, None] * np.array([[-1.0, 1.0]]), targets, "single_label_classification"
    ) == {"accuracy": 0.5}
    # Multi-label: sigmoid averaged; mAP over classes with positives.
    ml = metrics_from_logits(
        np.array([[2.0, -1.0], [-1.0, 2.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), "multi_label_classification"
    )
    assert ml["mAP"] == pytest.approx(1.0)
