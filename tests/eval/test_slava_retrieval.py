"""`avt evaluate retrieval` on SLAVA checkpoints (next to LG-CAV-MAE) and the `--report avcaps` table."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch

from avt.cli import main
from avt_training.slava.cache import assemble, read_parts
from eval.retrieval import paired_ranks, ranking_metrics


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
    from avt_training.slava.train import pretrain_slava
    from modeling_slava import SlavaModel

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
    # LG-CAV-MAE queries with stored CLAP embeddings: the visual captions' (visual_text_embedding, written with
    # the frame captions), not the audio captions added here as strings only
    assert set(lgcavmae["metrics"]) == standard | {"visual_caption_to_audio", "visual_caption_to_visual"}
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
    lines = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in table_ii.splitlines()
        if line.startswith("| ")
    }
    assert set(lines) >= {"Visual ← visual captions", "Audio ← audio captions", "Visual ← audio"}
    # LG-CAV-MAE cannot embed caption strings: no audio_text_embedding, no audio-caption cell
    assert lines["Visual ← audio captions"][2] == "–"
    assert lines["Visual ← visual captions"][2] != "–"
    assert lines["Visual ← audio-visual captions"][2] != "–"
    assert lines["Visual ← audio"][6] == "52.0"  # SLAVA A&V's published recall@10, beside ours


def test_slava_checkpoints_do_not_classify(tmp_path, train_options, synthetic_heldout, single_thread, capsys):
    from avt_training.slava.train import pretrain_slava

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


def test_slava_retrieval_on_a_labelled_only_output_is_audio_visual_with_a_note(
    tmp_path, tiny_clip, tiny_clap, labelled_sets, capsys
):
    """`avt generate --captioner none` writes no caption column: A<->V retrieval still runs, text is skipped with
    the note LG-CAV-MAE's evaluation gives, and the ranks are those of the model's own embeddings."""
    from avt_data.rows import decode_audio, decode_frame, undecoded_media
    from modeling_slava import SlavaModel

    model = SlavaModel.from_towers(str(tiny_clip), str(tiny_clap), projection_dim=16)
    model.save_pretrained(tmp_path / "slava")
    _, test = labelled_sets["vggsound"]
    report = tmp_path / "report"
    code = main(
        ["evaluate", "retrieval", "--model", f"SLAVA={tmp_path / 'slava'}", "--dataset", f"vggsound={test}",
         "--protocol", "full", "--no-progress", "--output-dir", str(report)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (entry,) = json.loads((report / "retrieval.json").read_text())["entries"]
    assert entry["model_kind"] == "slava" and entry["num_clips"] == 4 and entry["num_skipped"] == 0
    assert set(entry["metrics"]) == {"audio_to_visual", "visual_to_audio"}
    (note,) = entry["notes"]
    assert note.startswith("no text retrieval") and "--captioner none" in note
    assert note in (report / "retrieval.md").read_text()

    rows = undecoded_media(datasets.load_dataset(str(test), split="train"))
    inputs = model.get_processor()(
        audio=[decode_audio(r["audio"]) for r in rows],
        images=[[decode_frame(f) for f in r["frames"]] for r in rows],
    )
    with torch.no_grad():
        ranks, _ = paired_ranks(
            model.get_audio_features(inputs["audio_values"], inputs["windows_mask"]),
            model.get_visual_features(inputs["pixel_values"], inputs["frames_mask"]),
        )
    assert ranking_metrics(ranks, (1,)) == pytest.approx(entry["metrics"]["audio_to_visual"], abs=1e-6)


def test_pretraining_slava_on_a_labelled_only_output_is_refused_before_the_towers_load(
    tmp_path, labelled_sets, capsys
):
    train, _ = labelled_sets["vggsound"]
    missing = (
        tmp_path / "broken_tower"
    )  # passes the option checks, but would fail to load: the check comes first
    missing.mkdir()
    (missing / "config.json").write_text('{"model_type": "clip"}')
    code = main(
        ["pretrain-slava", "--dataset", str(train), "--vision-model", str(missing), "--audio-model", str(missing),
         "--output-dir", str(tmp_path / "run"), "--report-to", "none", "--no-progress"]
    )  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("error: ")
    assert str(train) in error and "SLAVA trains on captions" in error and "--captioner none" in error


def test_a_clip_without_caption_is_a_retrieval_target_not_a_skip(
    tmp_path, tiny_clip, tiny_clap, synthetic_heldout
):
    from modeling_slava import SlavaModel

    rows = datasets.load_dataset(str(synthetic_heldout), split="train")
    (tmp_path / "partial" / "data").mkdir(parents=True)
    rows.map(lambda row, i: {"caption": None if i < 8 else row["caption"]}, with_indices=True).to_parquet(
        str(tmp_path / "partial" / "data" / "shard-00000.parquet")
    )
    SlavaModel.from_towers(str(tiny_clip), str(tiny_clap), projection_dim=16).save_pretrained(
        tmp_path / "slava"
    )
    code = main(
        ["evaluate", "retrieval", "--model", str(tmp_path / "slava"), "--dataset", str(tmp_path / "partial"),
         "--protocol", "full", "--no-progress", "--output-dir", str(tmp_path / "report")]
    )  # fmt: skip
    assert code == 0
    (entry,) = json.loads((tmp_path / "report" / "retrieval.json").read_text())["entries"]
    assert entry["num_clips"] == 48 and entry["num_skipped"] == 0 and entry["notes"] == []
    assert entry["metrics"]["audio_to_visual"]["num_queries"] == 48
    assert entry["metrics"]["text_to_visual"]["num_queries"] == 40  # the 8 uncaptioned clips are targets only


def test_the_avcaps_report_prints_slavas_published_recall_at_10_beside_ours():
    """Issue 17.7: each task row ends with SLAVA's Table II figures (one column per model of the paper)."""
    from eval.avcaps_report import avcaps_table, slava_table_ii

    metrics = {"audio_to_visual": {"R@10": 0.5}, "visual_caption_to_visual": {"R@10": 0.25}}
    text = avcaps_table([{"model": "ours", "dataset": "AVCaps", "metrics": metrics}])
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    cells = {
        row.split("|")[1].strip(): [c.strip() for c in row.strip("|").split("|")][1:] for row in rows[1:]
    }
    assert set(cells) == {"Visual ← audio", "Visual ← visual captions"}  # the tasks we evaluated
    assert header[1] == "ours" and header[5] == "SLAVA A&V (published)"
    assert cells["Visual ← audio"][:1] == ["50.0"] and cells["Visual ← audio"][4] == "52.0"
    assert cells["Visual ← visual captions"] == ["25.0", "84.0", "82.0", "69.0", "81.0", "83.0", "81.0"]
    assert "SLAVA" in text.splitlines()[-1] and "2505.14562" in text  # where the published numbers come from
    shared = next(
        (
            p / "shared" / "paper"
            for p in Path(__file__).resolve().parents
            if (p / "shared" / "paper").is_dir()
        ),
        None,
    )
    if shared is None:
        pytest.skip("../shared/paper is absent: the shipped copy cannot be compared with the transcription")
    assert slava_table_ii() == json.loads((shared / "slava_table2.json").read_text())
