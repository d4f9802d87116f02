"""Tables: ours next to the paper's number in every cell, read from the result files, with the paper's sources."""

from __future__ import annotations

import json

from recipes.paper import CAV_MAE_RELEASE
from recipes.tables import CLASSIFICATION_COLUMNS, Outcome, Table, recall_columns, render, write


def _retrieval(path, recalls):
    """An `avt evaluate retrieval` report: one entry per dataset, recall@10 per direction."""
    metrics: dict[str, dict] = {}
    for (dataset, direction), value in recalls.items():
        metrics.setdefault(dataset, {})[direction] = {"R@10": value}
    entries = [{"model": "m", "dataset": dataset, "metrics": m} for dataset, m in metrics.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"task": "retrieval", "entries": entries}))
    return path


def test_cells_read_the_result_files_and_show_the_papers_number_with_its_source(tmp_path):
    retrieval = _retrieval(
        tmp_path / "r.json",
        {
            ("VGGSound", "audio_to_visual"): 0.4321,
            ("VGGSound", "visual_to_audio"): 0.5,
            ("AudioSet", "audio_to_visual"): 0.25,
        },
    )
    vgg = tmp_path / "vgg.json"
    vgg.write_text(
        json.dumps(
            {
                "entries": [
                    {
                        "metric": "accuracy",
                        "single_frame": {"accuracy": 0.5},
                        "multi_frame": {"accuracy": 0.625},
                    }
                ]
            }
        )
    )
    outcome = Outcome(
        retrieval=retrieval, classification={"vggsound": vgg, "audioset": tmp_path / "not-yet.json"}
    )
    table = Table(
        "cavmae",
        "CAV-MAE baseline",
        [*recall_columns((10,)), *CLASSIFICATION_COLUMNS],
        [("CAV-MAE", outcome)],
    )
    text = render(table)
    row = next(line for line in text.splitlines() if line.startswith("| CAV-MAE"))
    cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
    # VGGSound A→V, V→A; AudioSet A→V, V→A (not evaluated: –); VGGSound acc (multi-frame); AudioSet mAP (missing).
    assert cells == ["43.2 (–)", "50.0 (–)", "25.0 (–)", "– (–)", "62.5 (65.5)", "– (42.0)"]
    assert f"paper numbers: {CAV_MAE_RELEASE}" in text
    assert "paper (–): not transcribed yet" in text

    record = json.loads(write(table, tmp_path / "tables").read_text())
    assert record["rows"][0]["ours"][:3] == [43.21, 50.0, 25.0]
    assert record["rows"][0]["paper"][4] == {"value": 65.5, "source": CAV_MAE_RELEASE}
    assert (tmp_path / "tables" / "cavmae.md").read_text() == text


def test_a_model_not_evaluated_yet_has_no_numbers(tmp_path):
    outcome = Outcome(retrieval=tmp_path / "missing.json")
    assert outcome.recall("VGGSound", "audio_to_visual", 10) is None
    assert outcome.classification_metric("vggsound") is None
