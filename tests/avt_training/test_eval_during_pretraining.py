"""`avt pretrain --eval-dataset`: the official per-epoch validation (middle frame, no noise, still masked),
deterministic, kept as best/ by lowest eval loss, and invisible to the training trajectory."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

EVAL_KEYS = {
    "eval_loss",
    "eval_loss_reconstruction_audio",
    "eval_loss_reconstruction_visual",
    "eval_loss_contrastive",
    "eval_contrastive_accuracy",
    "eval_loss_audio_text",
    "eval_loss_visual_text",
    "eval_audio_text_accuracy",
    "eval_visual_text_accuracy",
}


def _config(dataset, model, output_dir, **overrides):
    from avt_training.pretrain import PretrainConfig

    values = dict(
        datasets=[str(dataset)],
        output_dir=str(output_dir),
        model_name_or_path=str(model),
        per_device_batch_size=16,  # 128 clips: 8 steps per epoch
        max_steps=10,  # an epoch end (step 8) and a mid-epoch stop (step 10)
        learning_rate=1e-3,
        save_steps=None,
        logging_steps=2,
        num_workers=0,
        report_to=[],
    )
    values.update(overrides)
    return PretrainConfig(**values)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fast_tiny_model, synthetic_train, synthetic_heldout):
    from avt_training.pretrain import pretrain

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("eval_runs")
        plain = pretrain(_config(synthetic_train, fast_tiny_model, root / "plain"))
        evaluated = pretrain(
            _config(
                synthetic_train,
                fast_tiny_model,
                root / "evaluated",
                eval_datasets=[str(synthetic_heldout)],
                eval_steps=4,
                per_device_eval_batch_size=16,  # 48 held-out clips: 3 batches
            )
        )
    finally:
        torch.set_num_threads(previous)
    return plain, evaluated


def _eval_records(output_dir):
    records = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "eval_loss" in r]


def _evaluate(model_dir, heldout, times=1):
    """Evaluate a saved model from scratch, outside the training run; ``times`` passes over one loader."""
    from accelerate import Accelerator

    from avt_training.data import load_triplet_datasets
    from avt_training.pretrain_eval import build_eval_loader, evaluate_pretraining
    from modeling_lgcavmae import LGCavMaeForPreTraining, LGCavMaeProcessor

    accelerator = Accelerator(cpu=True)
    model = LGCavMaeForPreTraining.from_pretrained(model_dir)
    processor = LGCavMaeProcessor.from_pretrained(model_dir)
    data = load_triplet_datasets([str(heldout)], columns=("audio", "frames", "text_embedding"))
    loader = build_eval_loader(data, model.config, processor, batch_size=16, seed=0)
    model, loader = accelerator.prepare(model, loader)
    results = [evaluate_pretraining(model, loader, accelerator) for _ in range(times)]
    return results if times > 1 else results[0]


def test_eval_metrics_logged_after_epochs_and_steps(runs):
    _, evaluated = runs
    records = _eval_records(evaluated)
    assert [r["step"] for r in records] == [4, 8, 10]  # every 4 steps, epoch end (8, once), end of training
    for record in records:
        assert EVAL_KEYS <= record.keys()
        assert all(torch.isfinite(torch.tensor(record[k])) for k in EVAL_KEYS)
        assert 0.0 <= record["eval_contrastive_accuracy"] <= 1.0
    assert records[1]["epoch"] == 1.0
    summary = json.loads((evaluated / "train_summary.json").read_text())
    assert summary["last_eval"]["eval_loss"] == records[-1]["eval_loss"]
    assert summary["best_eval_loss"] == min(r["eval_loss"] for r in records)


def test_evaluation_is_deterministic_and_matches_the_logged_one(runs, synthetic_heldout, single_thread):
    _, evaluated = runs
    # the same prepared loader twice: accelerate re-epochs a loader on each pass, masks must not follow
    first, second = _evaluate(evaluated, synthetic_heldout, times=2)
    assert first == second
    assert _evaluate(evaluated, synthetic_heldout) == first
    # the final model is the one evaluated at step 10 inside the training run
    logged = _eval_records(evaluated)[-1]
    for key in EVAL_KEYS:
        assert first[key] == pytest.approx(logged[key], rel=1e-5, abs=1e-6), key


def test_best_folder_holds_the_lowest_eval_loss_model(runs, synthetic_heldout, single_thread):
    _, evaluated = runs
    records = _eval_records(evaluated)
    best_record = min(records, key=lambda r: r["eval_loss"])
    saved = json.loads((evaluated / "best" / "eval_results.json").read_text())
    assert saved["step"] == best_record["step"]
    recomputed = _evaluate(evaluated / "best", synthetic_heldout)
    assert recomputed["eval_loss"] == pytest.approx(best_record["eval_loss"], rel=1e-5, abs=1e-6)
    assert all(recomputed["eval_loss"] <= r["eval_loss"] + 1e-6 for r in records)


def test_evaluation_does_not_change_training(runs):
    plain, evaluated = runs
    expected, actual = load_file(plain / "model.safetensors"), load_file(evaluated / "model.safetensors")
    different = [name for name in expected if not torch.equal(expected[name], actual[name])]
    assert not different, f"evaluation changed the trained weights: {different[:5]}"
    plain_log = [json.loads(x) for x in (plain / "metrics.jsonl").read_text().splitlines()]
    train_log = [
        json.loads(x)
        for x in (evaluated / "metrics.jsonl").read_text().splitlines()
        if '"eval_loss"' not in x
    ]
    assert [r["loss"] for r in train_log] == [r["loss"] for r in plain_log]


def test_resume_with_evaluation_in_between_is_exact(
    runs, tmp_path, monkeypatch, fast_tiny_model, synthetic_train, synthetic_heldout, single_thread
):
    from avt_training import checkpoints
    from avt_training.pretrain import pretrain

    _, evaluated = runs
    real_save = checkpoints.save_checkpoint

    def save_then_die(accelerator, output_dir, step, total_limit=None):
        path = real_save(accelerator, output_dir, step, total_limit)
        if step == 6:  # after the step-4 evaluation, before the epoch-end one
            raise RuntimeError("killed")
        return path

    overrides = dict(
        eval_datasets=[str(synthetic_heldout)], eval_steps=4, per_device_eval_batch_size=16, save_steps=6
    )
    monkeypatch.setattr(checkpoints, "save_checkpoint", save_then_die)
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(_config(synthetic_train, fast_tiny_model, tmp_path, **overrides))
    monkeypatch.setattr(checkpoints, "save_checkpoint", real_save)
    resumed = pretrain(_config(synthetic_train, fast_tiny_model, tmp_path, resume="latest", **overrides))

    expected, actual = load_file(evaluated / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert _eval_records(resumed) == _eval_records(evaluated)
