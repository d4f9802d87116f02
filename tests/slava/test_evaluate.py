"""`avt evaluate retrieval` on SLAVA checkpoints (next to LG-CAV-MAE) and the `--report avcaps` table."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch

from avt_triplets.cli import main
from eval.retrieval import paired_ranks, ranking_metrics
from training.slava.cache import assemble, read_parts


def _heldout_with_caption_columns(heldout, folder):
    """The held-out triplets plus AVCaps-style columns: audio captions (lists) and visual captions (strings)."""
    rows = datasets.load_dataset(str(heldout), split="train")
    sounds = ["a low pitched tone", "a high pitched tone"]

    def add(row):
        k = int(row["labels"][0].split("_")[1])
        return {
            "audio_caption": [f"{sounds[k % 2]} {k}", f"a tone of colour {k}"],
            "visual_caption": f"a {'circle' if k % 2 == 0 else 'square'} of colour {k}",
        }

    (folder / "data").mkdir(parents=True)
    rows.map(add).to_parquet(str(folder / "data" / "shard-00000.parquet"))
    return folder


def test_evaluate_retrieval_works_for_slava_next_to_lgcavmae(
    tmp_path, train_options, synthetic_heldout, tiny_lgcavmae, single_thread, capsys
):
    from modeling_slava import SlavaModel
    from training.slava.train import pretrain_slava

    output = pretrain_slava({**train_options, "output_dir": str(tmp_path / "slava"), "num_epochs": 30})
    dataset = _heldout_with_caption_columns(synthetic_heldout, tmp_path / "heldout_captions")
    code = main(
        ["evaluate", "retrieval", "--model", f"SLAVA={output}", "--model", f"LG-CAV-MAE={tiny_lgcavmae}",
         "--dataset", f"synthetic={dataset}", "--protocol", "full", "--report", "avcaps", "--no-progress",
         "--output-dir", str(tmp_path / "eval")]
    )  # fmt: skip
    assert code == 0
    record = json.loads((tmp_path / "eval" / "retrieval.json").read_text())
    slava, lgcavmae = record["entries"]
    assert slava["model_kind"] == "slava" and slava["num_clips"] == 48 and slava["num_skipped"] == 0
    standard = {"audio_to_visual", "visual_to_audio", "text_to_audio", "text_to_visual"}
    columns = {
        "audio_caption_to_audio",
        "audio_caption_to_visual",
        "visual_caption_to_audio",
        "visual_caption_to_visual",
    }
    assert set(slava["metrics"]) == standard | columns
    assert set(lgcavmae["metrics"]) == standard
    assert {"R@1", "R@5", "R@10", "MR"} <= set(slava["metrics"]["text_to_visual"])
    assert slava["metrics"]["audio_caption_to_visual"]["num_queries"] == 96  # two audio captions per clip
    assert slava["metrics"]["audio_to_visual"]["R@10"] >= 2 * 10 / 48

    # The evaluation path (decode, towers, projections) gives what the training cache gives.
    summary = json.loads((output / "train_summary.json").read_text())
    directory = next(
        s["directory"] for s in summary["feature_cache"] if s["dataset"] == str(synthetic_heldout)
    )
    ids = [str(c) for c in datasets.load_dataset(str(synthetic_heldout), split="train")["clip_id"]]
    table = assemble(ids, read_parts(Path(directory)))
    model = SlavaModel.from_pretrained(output, load_towers=False)
    with torch.no_grad():
        ranks, _ = paired_ranks(
            model.project_audio(torch.from_numpy(table.audio)),
            model.project_visual(torch.from_numpy(table.visual)),
        )
    assert ranking_metrics(ranks) == pytest.approx(slava["metrics"]["audio_to_visual"], abs=1e-9)

    text = capsys.readouterr().out
    assert "SLAVA's Table II" in text
    table_ii = text[text.index("SLAVA's Table II") :]
    lines = {line.split("|")[1].strip(): line for line in table_ii.splitlines() if line.startswith("| ")}
    assert set(lines) >= {"Visual ← visual captions", "Audio ← audio captions", "Visual ← audio"}
    # LG-CAV-MAE has no caption-column tasks (it cannot embed caption strings): its cell is empty
    assert lines["Visual ← audio captions"].rstrip(" |").endswith("–")
    assert not lines["Visual ← audio-visual captions"].rstrip(" |").endswith("–")


def test_slava_checkpoints_do_not_classify(tmp_path, train_options, synthetic_heldout, single_thread, capsys):
    from training.slava.train import pretrain_slava

    output = pretrain_slava(
        {**train_options, "eval_datasets": [], "output_dir": str(tmp_path / "s"), "max_steps": 1}
    )
    code = main(
        [
            "evaluate",
            "classification",
            "--model",
            str(output),
            "--dataset",
            str(synthetic_heldout),
            "--output-dir",
            str(tmp_path / "e"),
        ]
    )
    assert code == 2 and "supports `avt evaluate retrieval` only" in capsys.readouterr().err
