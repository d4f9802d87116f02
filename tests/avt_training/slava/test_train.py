"""`avt pretrain-slava`: every variant learns, the feature cache is reused and invalidated, and two processes train
exactly what one process with the global batch trains."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from avt.cli import build_parser, main
from eval.retrieval import paired_ranks, ranking_metrics, retrieval_ranks

REPO = Path(__file__).resolve().parents[3]
EPOCHS = 60  # 480 steps of 16 clips; a few seconds on one CPU thread


def heldout_recall_at_10(model, summary: dict, heldout: Path) -> dict[str, float]:
    """A->V and T->V recall@10 on the held-out clips, from their cached tower features and the model's projections."""
    import datasets

    from avt_training.slava.cache import assemble, read_parts

    directory = next(Path(s["directory"]) for s in summary["feature_cache"] if s["dataset"] == str(heldout))
    clip_ids = [str(c) for c in datasets.load_dataset(str(heldout), split="train")["clip_id"]]
    table = assemble(clip_ids, read_parts(directory))
    with torch.no_grad():
        audio = model.project_audio(torch.from_numpy(table.audio))
        visual = model.project_visual(torch.from_numpy(table.visual))
        text = model.project_text(torch.from_numpy(table.first_texts("av")))
    audio_to_visual, _ = paired_ranks(audio, visual)
    return {
        "A->V": ranking_metrics(audio_to_visual, (10,))["R@10"],
        "T->V": ranking_metrics(retrieval_ranks(text, visual), (10,))["R@10"],
    }


@pytest.mark.parametrize("variant", ["a&v", "av", "av+avloss", "audioclip", "wav2clip"])
def test_each_variant_learns_cross_modal_retrieval(
    variant, tmp_path, train_options, synthetic_heldout, single_thread
):
    from avt_training.slava.train import pretrain_slava
    from modeling_slava import SlavaModel

    output = pretrain_slava(
        {**train_options, "output_dir": str(tmp_path / "run"), "variant": variant, "num_epochs": EPOCHS}
    )
    summary = json.loads((output / "train_summary.json").read_text())
    chance = 10 / summary["eval_clips"]
    trained = heldout_recall_at_10(
        SlavaModel.from_pretrained(output, load_towers=False), summary, synthetic_heldout
    )
    untrained = heldout_recall_at_10(
        SlavaModel.from_towers(
            train_options["vision_model"], train_options["audio_model"], projection_dim=16
        ),
        summary,
        synthetic_heldout,
    )
    print(f"{variant}: held-out R@10 {trained} (untrained {untrained}, chance {chance:.3f})")
    assert untrained["A->V"] < 1.7 * chance, "an untrained model should be near chance"
    assert trained["A->V"] >= 2 * chance and trained["T->V"] >= 2 * chance, (trained, chance)
    assert summary["stage_steps"] == ([240, 240] if variant == "wav2clip" else [480])
    assert summary["best_step"] is not None and (output / "best" / "model.safetensors").exists()
    log = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    train_losses = [r["loss"] for r in log if "loss" in r]
    assert train_losses[-1] < 0.8 * train_losses[0]


def test_wav2clip_stage_two_keeps_the_visual_projection(tmp_path, train_options, single_thread):
    from avt_training.slava.parts import set_trainable
    from avt_training.slava.train import pretrain_slava
    from modeling_slava import SlavaModel

    options = {**train_options, "variant": "wav2clip", "eval_datasets": [], "num_epochs": 2}
    one_stage = pretrain_slava(
        {**options, "output_dir": str(tmp_path / "a"), "wav2clip_stage1_fraction": 0.5}
    )
    model = SlavaModel.from_pretrained(one_stage, load_towers=False)
    config = argparse.Namespace(variant="wav2clip", wav2clip_text_projection="frozen")
    trainable = set_trainable(model, config, stage=2)
    assert {id(p) for p in trainable} == {id(model.audio_projection.weight), id(model.logit_scale)}
    config.wav2clip_text_projection = "trainable"
    assert id(model.text_projection.weight) in {id(p) for p in set_trainable(model, config, stage=2)}
    assert {id(p) for p in set_trainable(model, config, stage=1)} == {
        id(model.visual_projection.weight),
        id(model.text_projection.weight),
        id(model.logit_scale),
    }


def test_feature_cache_is_reused_and_invalidated_by_a_changed_tower(tmp_path, train_options, single_thread):
    from avt_training.slava.train import pretrain_slava
    from avt_triplets.tiny import make_tiny_clip

    options = {
        **train_options,
        "eval_datasets": [],
        "feature_cache_dir": str(tmp_path / "cache"),
        "max_steps": 2,
    }

    def run(name: str, **changes) -> dict:
        output = pretrain_slava({**options, "output_dir": str(tmp_path / name), **changes})
        return json.loads((output / "train_summary.json").read_text())

    first, second = run("first"), run("second")
    assert [s["extracted"] for s in first["feature_cache"]] == [128]
    assert [(s["reused"], s["extracted"]) for s in second["feature_cache"]] == [(128, 0)]
    assert [s["directory"] for s in second["feature_cache"]] == [
        s["directory"] for s in first["feature_cache"]
    ]

    other_clip = make_tiny_clip(tmp_path / "other_clip", seed=1)  # same architecture, other weights
    changed = run("changed", vision_model=str(other_clip))
    assert [(s["reused"], s["extracted"]) for s in changed["feature_cache"]] == [(0, 128)]
    assert not set(s["directory"] for s in changed["feature_cache"]) & set(
        s["directory"] for s in first["feature_cache"]
    )
    towers_files = sorted((tmp_path / "cache").glob("*/towers.json"))
    assert len(towers_files) == 2


def test_cached_rows_follow_their_captions(tmp_path, train_options, synthetic_heldout, single_thread):
    """A row whose caption changed is extracted again; the others are reused."""
    import datasets

    from avt_training.slava.train import pretrain_slava

    folder = tmp_path / "edited"
    (folder / "data").mkdir(parents=True)
    rows = datasets.load_dataset(str(synthetic_heldout), split="train")
    options = {**train_options, "datasets": [str(folder)], "eval_datasets": [], "per_device_batch_size": 8}
    options.update(feature_cache_dir=str(tmp_path / "cache"), max_steps=1)
    rows.to_parquet(str(folder / "data" / "shard-00000.parquet"))
    pretrain_slava({**options, "output_dir": str(tmp_path / "one")})
    edited = rows.map(lambda row, i: {"caption": row["caption"] + (" 9" if i < 5 else "")}, with_indices=True)
    edited.to_parquet(str(folder / "data" / "shard-00000.parquet"))
    output = pretrain_slava({**options, "output_dir": str(tmp_path / "two")})
    stats = json.loads((output / "train_summary.json").read_text())["feature_cache"][0]
    assert (stats["reused"], stats["extracted"]) == (43, 5)


def test_output_folder_has_a_card_with_the_runs_facts(
    tmp_path, train_options, synthetic_train, single_thread
):
    """README.md is SLAVA's card for this run: variant, towers, datasets, steps, the best validation loss."""
    from huggingface_hub import ModelCard

    from avt_training.slava.train import pretrain_slava

    output = pretrain_slava(
        {**train_options, "output_dir": str(tmp_path / "run"), "variant": "av", "num_epochs": 2}
    )
    summary = json.loads((output / "train_summary.json").read_text())
    card = ModelCard.load(output / "README.md")
    assert "slava" in card.data.tags and card.data.library_name == "transformers"
    text = card.content
    assert "# SLAVA (av)" in text and f"- vision: `{train_options['vision_model']}`" in text
    assert f"`{synthetic_train}` (split `train`): 128 clips" in text
    assert f"- {summary['steps']} steps (per stage: [16]; epochs per stage: [2])" in text
    assert f"best validation loss {summary['best_eval_loss']:.4f} at step {summary['best_step']}" in text
    assert not [s["directory"] for s in summary["feature_cache"] if s["directory"] in text]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains_on_the_global_batch(
    tmp_path, train_options, single_thread
):
    from avt_training.slava.train import pretrain_slava

    common = [
        "--dataset", train_options["datasets"][0], "--vision-model", train_options["vision_model"],
        "--audio-model", train_options["audio_model"], "--projection-dim", "16", "--learning-rate", "1e-2",
        "--max-steps", "12", "--num-workers", "0", "--report-to", "none", "--no-progress", "--seed", "3",
    ]  # fmt: skip
    single = pretrain_slava(
        {**train_options, "eval_datasets": [], "output_dir": str(tmp_path / "one"), "per_device_batch_size": 16,
         "max_steps": 12, "seed": 3, "weight_decay": 0.1}
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "avt.cli", "pretrain-slava", *common,
        "--per-device-batch-size", "8", "--output-dir", str(tmp_path / "two"),
        "--feature-cache-dir", str(tmp_path / "cache2"),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "two" / "train_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_batch_size"] == 16 and summary["steps"] == 12
    # both processes extracted their half of the clips into one cache; the rows equal one process's
    assert sum(s["extracted"] for s in summary["feature_cache"]) == 128
    single_summary = json.loads((single / "train_summary.json").read_text())
    tables = [_table(s["feature_cache"][0]) for s in (summary, single_summary)]
    for name in ("audio", "visual"):
        assert np.array_equal(getattr(tables[0], name), getattr(tables[1], name))
    one, two = load_file(single / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    start = load_file(_initial_weights(train_options, tmp_path))
    for key in one:
        assert not torch.allclose(one[key], start[key]), f"{key} did not train"
        torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-6)


def _table(stats: dict):
    import datasets

    from avt_training.slava.cache import assemble, read_parts

    clip_ids = [str(c) for c in datasets.load_dataset(stats["dataset"], split="train")["clip_id"]]
    return assemble(clip_ids, read_parts(Path(stats["directory"])))


def _initial_weights(train_options, tmp_path) -> Path:
    """The weights both runs start from (seed 3), for checking that they trained at all."""
    from accelerate.utils import set_seed

    from modeling_slava import SlavaModel

    set_seed(3)
    model = SlavaModel.from_towers(
        train_options["vision_model"], train_options["audio_model"], projection_dim=16
    )
    model.save_pretrained(tmp_path / "initial")
    return tmp_path / "initial" / "model.safetensors"


def test_every_option_has_help(capsys):
    parser = build_parser(only="pretrain-slava")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "pretrain-slava"
    ]
    assert not [a.dest for a in sub._actions if a.dest != "help" and not (a.help or "").strip()]
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain-slava", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "a&v" in text and "wav2clip" in text and "Feature cache" in text


def test_too_few_clips_is_a_usage_error(tmp_path, train_options, capsys):
    code = main(
        ["pretrain-slava", "--dataset", train_options["datasets"][0], "--vision-model", train_options["vision_model"],
         "--audio-model", train_options["audio_model"], "--per-device-batch-size", "1000", "--output-dir",
         str(tmp_path / "run"), "--feature-cache-dir", train_options["feature_cache_dir"], "--num-workers", "0",
         "--report-to", "none", "--no-progress", "--projection-dim", "16"]
    )  # fmt: skip
    assert code == 2
    assert "fewer than one global batch" in capsys.readouterr().err


def test_unusable_datasets_stop_with_one_error_line(tmp_path, train_options, synthetic_heldout, capsys):
    import datasets

    rows = datasets.load_dataset(str(synthetic_heldout), split="train")
    (tmp_path / "uncaptioned" / "data").mkdir(parents=True)
    rows.remove_columns(["caption", "captions", "visual_caption", "visual_captions"]).to_parquet(
        str(tmp_path / "uncaptioned/data/shard-00000.parquet")
    )
    common = ["--vision-model", train_options["vision_model"], "--audio-model", train_options["audio_model"],
              "--output-dir", str(tmp_path / "run"), "--num-workers", "0", "--report-to", "none", "--no-progress"]  # fmt: skip
    assert main(["pretrain-slava", "--dataset", str(tmp_path / "uncaptioned"), *common]) == 2
    assert "none of the caption columns" in capsys.readouterr().err
    assert main(["pretrain-slava", "--dataset", str(tmp_path / "missing"), *common]) == 2
    assert "error: dataset" in capsys.readouterr().err
    assert main(["pretrain-slava", "--dataset", str(synthetic_heldout), "--learning-rate", "0", *common]) == 2
    assert "--learning-rate must be positive" in capsys.readouterr().err


def _batches_by_kind(monkeypatch) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Record `(caption kind, clip rows, text features)` of every batch the SLAVA loop trains on."""
    from avt_training.slava.data import TrainingFeatures

    seen, original = [], TrainingFeatures.batch

    def recording(self, indices, kind, caption_rows):
        batch = original(self, indices, kind, caption_rows)
        seen.append((kind, indices.clone(), batch["text_tower_features"].clone()))
        return batch

    monkeypatch.setattr(TrainingFeatures, "batch", recording)
    return seen


def _cached_texts(output: Path, dataset: Path) -> dict[str, torch.Tensor]:
    """Per caption kind, the cached text-tower features of every clip's (only) caption, in dataset order."""
    import datasets

    from avt_training.slava.cache import assemble, read_parts

    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["clips_excluded"] == 0  # training rows are the dataset's rows
    directory = Path(summary["feature_cache"][0]["directory"])
    clip_ids = [str(c) for c in datasets.load_dataset(str(dataset), split="train")["clip_id"]]
    table = assemble(clip_ids, read_parts(directory))
    return {kind: torch.from_numpy(table.first_texts(kind)) for kind in ("av", "audio", "visual")}


def test_a_and_v_trains_audio_and_visual_batches_on_their_own_captions(
    tmp_path, train_options, synthetic_modality, synthetic_train, monkeypatch, caplog, single_thread
):
    """Issue 21: on a dataset with audio and visual caption columns the two batch types of `a&v` see different
    texts (each its own kind's captions); without the audio column both see the same text, and the run says so."""
    from avt_training.slava.train import pretrain_slava

    options = {**train_options, "variant": "a&v", "eval_datasets": [], "max_steps": 2}
    seen = _batches_by_kind(monkeypatch)
    with caplog.at_level("WARNING", logger="avt_training.slava.train"):
        output = pretrain_slava(
            {**options, "datasets": [str(synthetic_modality)], "output_dir": str(tmp_path / "modality")}
        )
    assert not [r for r in caplog.records if "fall back" in r.getMessage()]
    summary = json.loads((output / "train_summary.json").read_text())
    captions = {"av": "av_caption", "audio": "audio_caption", "visual": "visual_caption"}
    assert summary["feature_cache"][0]["captions"] == captions
    assert [kind for kind, _, _ in seen] == ["audio", "visual"]
    texts = _cached_texts(output, synthetic_modality)
    for kind, rows, text in seen:  # each batch reads its own kind's captions, clip by clip
        torch.testing.assert_close(text, texts[kind][rows])
    assert not torch.allclose(
        texts["audio"], texts["visual"], atol=1e-3
    )  # "a tone of pitch k" vs "a circle ..."
    first_rows = seen[0][1]
    assert not torch.allclose(texts["audio"][first_rows], texts["visual"][first_rows], atol=1e-3)

    seen.clear()
    caplog.clear()
    with caplog.at_level("WARNING", logger="avt_training.slava.train"):
        output = pretrain_slava(
            {**options, "datasets": [str(synthetic_train)], "output_dir": str(tmp_path / "caption")}
        )
    warned = [r.getMessage() for r in caplog.records if "fall back" in r.getMessage()]
    assert (
        len(warned) == 1 and "no audio_caption column: the audio captions fall back to caption" in warned[0]
    )
    texts = _cached_texts(output, synthetic_train)
    torch.testing.assert_close(texts["audio"], texts["visual"])  # one text for both batch types
    for kind, rows, text in seen:
        torch.testing.assert_close(text, texts[kind][rows])
