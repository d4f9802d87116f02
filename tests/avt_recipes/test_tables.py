"""Tables: ours next to the paper's number in every cell, read from the result files, with the paper's sources."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from avt_recipes import RECIPES
from avt_recipes.experiments import Plan
from avt_recipes.inputs import Models, Sources
from avt_recipes.paper import CAV_MAE_RELEASE, LG_CAV_MAE, lgcavmae_tables, paper_value
from avt_recipes.settings import PAPER
from avt_recipes.tables import CLASSIFICATION_COLUMNS, Outcome, Table, recall_columns, render, write

REPO = Path(__file__).resolve().parents[2]
# The project's transcription (issue 17.7): ../shared/paper beside the main checkout; absent in a user's copy.
SHARED_PAPER = next(
    (folder / "shared" / "paper" for folder in REPO.parents if (folder / "shared" / "paper").is_dir()), None
)


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
    # The paper's CAV-MAE row: recall@10 from its Table 5, classification from its Table 6.
    assert cells == ["43.2 (48.0)", "50.0 (50.5)", "25.0 (25.7)", "– (28.9)", "62.5 (58.9)", "– (38.4)"]
    assert f"paper numbers: {LG_CAV_MAE}, Table 5" in text and f"paper numbers: {LG_CAV_MAE}, Table 6" in text
    assert "pretrained on VGGSound alone" in text and CAV_MAE_RELEASE in text  # how the rows differ, said
    assert "paper (–)" not in text

    record = json.loads(write(table, tmp_path / "tables").read_text())
    assert record["rows"][0]["ours"][:3] == [43.21, 50.0, 25.0]
    assert record["rows"][0]["paper"][4] == {"value": 58.9, "source": f"{LG_CAV_MAE}, Table 6"}
    assert (tmp_path / "tables" / "cavmae.md").read_text() == text


def test_a_model_not_evaluated_yet_has_no_numbers(tmp_path):
    outcome = Outcome(retrieval=tmp_path / "missing.json")
    assert outcome.recall("VGGSound", "audio_to_visual", 10) is None
    assert outcome.classification_metric("vggsound") is None


def test_the_papers_tables_ship_in_the_package_as_transcribed():
    """Issue 17.7: the recipes read the paper's Tables 1-6 from the package (a user install has no ../shared)."""
    cell = paper_value("table5", "LG-CAV-MAE", "VGGSound A→V R@10")  # the paper's "Ours (+K 30%)"
    assert cell is not None and cell.value == 54.5 and cell.source == f"{LG_CAV_MAE}, Table 5"
    if SHARED_PAPER is None:
        pytest.skip("../shared/paper is absent: the shipped copy cannot be compared with the transcription")
    shared = json.loads((SHARED_PAPER / "lgcavmae_tables.json").read_text())
    assert lgcavmae_tables() == shared
    cells = {
        ("table5", "LG-CAV-MAE", "VGGSound A→V R@10"): shared["table5"]["audio_to_visual"]["Ours (+K 30%)"]["VGGSound R@10"],
        ("table1", "λ2 = 0.1", "AudioSet V→A R@10"): shared["table1"]["visual_to_audio"]["0.1"]["AudioSet-20K R@10"],
        ("table2", "LLaVA-1.5", "VGGSound V→A R@10"): shared["table2"]["visual_to_audio"]["LLaVa1.5"]["VGGSound R@10"],
        ("table3", "K top50", "AudioSet A→V R@10"): shared["table3"]["audio_to_visual"]["K (50%)"]["AudioSet-20K R@10"],
        ("table3", "K (all)", "VGGSound V→A R@10"): shared["table3"]["visual_to_audio"]["K"]["VGGSound R@10"],
        ("table4", "VS + K random30", "AudioSet A→V R@10"): shared["table4"]["audio_to_visual"]["+ K (rand. 30%)"]["AudioSet-20K R@10"],
        ("table5", "CAV-MAE", "AudioSet V→A R@1"): shared["table5"]["visual_to_audio"]["CAV-MAE"]["AudioSet-20K R@1"],
        ("table6", "LG-CAV-MAE", "AudioSet-20K mAP"): shared["table6"]["rows"]["LG-CAV-MAE (VS + K 30%)"]["AudioSet-20K mAP"],
    }  # fmt: skip
    assert {key: paper_value(*key).value for key in cells} == cells


def test_every_recipe_table_has_the_papers_number_wherever_the_paper_reports_one(tmp_path):
    """No ``–`` for the paper where it has a figure: only the rows the paper has no counterpart for."""
    plan = Plan(tmp_path, 8, PAPER, Sources(), Models())
    missing = []
    for key, name in RECIPES.items():
        table = importlib.import_module(name).build(plan)
        for label, _, paper in table.values():
            missing += [(key, label, column.label) for column, p in zip(table.columns, paper) if p is None]
    assert {(key, label) for key, label, _ in missing} == {
        ("table1", "λ2 = 0 (CAV-MAE)"),
        ("table3", "VS + K"),
    }
