"""`avt evaluate` refuses evaluations that could only mislead: recall@K over fewer than K clips (100 % by
construction), and classification scores of a checkpoint that has no classifier head (a random head)."""

from __future__ import annotations

import json

from avt.cli import main as avt_main


def _retrieval(model, dataset, out, *extra: str) -> list[str]:
    return [
        "evaluate", "retrieval", "--model", f"tiny={model}", "--dataset", f"Toy={dataset}", "--protocol", "full",
        "--output-dir", str(out), "--device", "cpu", "--no-progress", *extra,
    ]  # fmt: skip


def test_recall_at_k_is_reported_only_for_k_below_the_clip_count(tmp_path, tiny_lgcavmae, tiny_triplets):
    out = tmp_path / "report"
    assert avt_main(_retrieval(tiny_lgcavmae, tiny_triplets, out, "--max-clips", "3")) == 0
    (entry,) = json.loads((out / "retrieval.json").read_text())["entries"]
    assert entry["num_clips"] == 3 and entry["omitted_ks"] == [5, 10]
    for direction in ("audio_to_visual", "visual_to_audio", "text_to_audio", "text_to_visual"):
        metrics = entry["metrics"][direction]
        assert "R@1" in metrics and "R@5" not in metrics and "R@10" not in metrics
        assert len(entry["recall_curves"][direction]) == 2  # K = 1, 2: K = 3 would be 100 % by construction
    markdown = (out / "retrieval.md").read_text()
    assert "R@5, R@10 not reported (only 3 clips)" in markdown
    assert "| tiny | " in markdown and " – | – |" in markdown


def test_retrieval_over_one_clip_is_refused(tmp_path, capsys, tiny_lgcavmae, tiny_triplets):
    assert avt_main(_retrieval(tiny_lgcavmae, tiny_triplets, tmp_path / "r", "--max-clips", "1")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "at least 2 clips" in err
    assert not (tmp_path / "r" / "retrieval.json").exists()


def test_classification_of_a_pretraining_checkpoint_says_it_has_no_head(
    tmp_path, capsys, tiny_lgcavmae, tiny_triplets
):
    argv = [
        "evaluate", "classification", "--model", str(tiny_lgcavmae), "--dataset", str(tiny_triplets),
        "--output-dir", str(tmp_path / "c"), "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    assert avt_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "LGCavMaeForPreTraining" in err and "no classifier head" in err
