"""README command 1 runs `avt demo`: the whole offline loop must keep working end to end."""

import json

import datasets

from avt_triplets.cli import main


def test_demo_runs_the_whole_loop(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--output-dir",
            str(out),
            "--num-classes",
            "2",
            "--clips-per-class",
            "3",
            "--steps",
            "4",
            "--batch-size",
            "2",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"report:   {out / 'report'}" in printed

    rows = datasets.load_dataset(str(out / "triplets"), split="train")
    assert len(rows) == 6
    assert len(datasets.load_dataset(str(out / "triplets"), "top30", split="train")) == round(0.3 * 6)
    report = json.loads((out / "report" / "retrieval.json").read_text())
    assert report, "the retrieval report is empty"
    assert (out / "report" / "retrieval_recall_at_k.png").stat().st_size > 0
    assert (out / "lgcavmae" / "model.safetensors").exists()
