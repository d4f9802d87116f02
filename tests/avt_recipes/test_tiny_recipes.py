"""Every recipe runs end to end on synthetic clips with tiny models, and prints its table filled with numbers."""

from __future__ import annotations

import json
import re

import pytest

from avt_recipes import RECIPES

# The paper's layout of each table: row labels and number of columns.
LAYOUT = {
    "table1": (["λ2 = 0 (CAV-MAE)", "λ2 = 0.001", "λ2 = 0.01", "λ2 = 0.1"], 4),
    "table2": (["BLIP-2", "LLaVA-1.5"], 4),
    "table3": (
        [
            "VS (all)",
            "K top10",
            "K top30",
            "K top50",
            "K (all)",
            "VS + K top10",
            "VS + K top30",
            "VS + K top50",
            "VS + K",
        ],
        4,
    ),
    "table4": (["VS + K random30", "VS + K top30"], 4),
    "table5": (["CAV-MAE", "LG-CAV-MAE"], 12),
    "table6": (["CAV-MAE", "LG-CAV-MAE"], 2),
    "cavmae": (["CAV-MAE"], 6),
}
CELL = re.compile(r"^(?P<ours>\d+\.\d) \((?P<paper>\d+\.\d|–)\)$")
MAIN = "vs+k-top30.blip2.l2-0.01"
BASELINE = "vs+k-top30.blip2.l2-0"


def printed_table(stdout: str, title_start: str) -> tuple[list[str], list[list[str]]]:
    """Header cells and rows (cells) of the Markdown table printed under the title starting with ``title_start``."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title_start) and "ours (paper)" in line)
    table = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    return table[0], table[2:]


def test_the_layout_covers_every_recipe():
    assert set(LAYOUT) == set(RECIPES)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_prints_its_table_with_every_cell_a_number(tiny_recipes, name):
    import importlib

    work_dir, runs = tiny_recipes
    assert runs["all"].returncode == 0, runs["all"].stderr[-3000:]
    run = runs[name]
    assert run.returncode == 0, run.stderr[-3000:]
    assert "$ avt" not in run.stdout  # every step of this recipe was one of `all`'s, finished and unchanged
    module = importlib.import_module(RECIPES[name])
    title = module.TITLE.split(":")[0]
    assert printed_table(run.stdout, title) == printed_table(runs["all"].stdout, title)
    header, rows = printed_table(run.stdout, title)
    labels, num_columns = LAYOUT[name]
    assert [row[0] for row in rows] == labels
    assert len(header) == num_columns + 1 and all(len(row) == num_columns + 1 for row in rows)
    for row in rows:
        for cell in row[1:]:
            match = CELL.match(cell)
            assert match, f"{name}, {row[0]}: {cell!r} is not 'ours (paper)' with our number filled in"
            assert 0.0 <= float(match["ours"]) <= 100.0
    written = json.loads((work_dir / "tables" / f"{module.KEY}.json").read_text())
    assert [r["label"] for r in written["rows"]] == labels
    assert all(value is not None for r in written["rows"] for value in r["ours"])


@pytest.mark.slow
def test_rows_read_the_results_of_their_own_models(tiny_recipes):
    """Table 5's rows are the λ2 = 0 and λ2 = 0.01 models' retrieval; Table 6's their fine-tuned scores."""
    work_dir, runs = tiny_recipes
    _, rows = printed_table(runs["table5"].stdout, "Table 5")
    for row, model in zip(rows, (BASELINE, MAIN)):
        report = json.loads((work_dir / "eval" / "retrieval" / model / "retrieval.json").read_text())
        entry = next(e for e in report["entries"] if e["dataset"] == "AudioSet")
        printed = float(CELL.match(row[12])["ours"])  # AudioSet V→A R@10
        assert printed == pytest.approx(100 * entry["metrics"]["visual_to_audio"]["R@10"], abs=0.05)
    _, rows = printed_table(runs["table6"].stdout, "Table 6")
    for row, model in zip(rows, (BASELINE, MAIN)):
        report = json.loads(
            (work_dir / "eval" / "classification" / f"{model}.audioset" / "classification.json").read_text()
        )
        entry = report["entries"][0]
        assert entry["metric"] == "mAP" and entry["problem_type"] == "multi_label_classification"
        assert float(CELL.match(row[2])["ours"]) == pytest.approx(100 * entry["multi_frame"]["mAP"], abs=0.05)


@pytest.mark.slow
def test_each_model_was_trained_as_its_row_says(tiny_recipes):
    """λ2 reaches the saved model config, and each Table 3/4 model trained on exactly the clips its row names."""
    work_dir, _ = tiny_recipes
    for model, weight in ((BASELINE, 0.0), (MAIN, 0.01), ("vs+k-top30.blip2.l2-0.1", 0.1)):
        config = json.loads((work_dir / "pretrain" / model / "config.json").read_text())
        assert config["text_contrastive_weight"] == pytest.approx(weight)
    vggsound = json.loads((work_dir / "data" / "vggsound-train.blip2" / "subsets.json").read_text())["total"]
    kinetics = json.loads((work_dir / "data" / "kinetics.blip2" / "subsets.json").read_text())
    size = {name: subset["size"] for name, subset in kinetics["subsets"].items()}
    expected = {
        "vs": vggsound,
        "k": kinetics["total"],
        "k-top10": size["top10"],
        "vs+k-top50": vggsound + size["top50"],
        "vs+k-random30": vggsound + size["random30"],
        "vs+k": vggsound + kinetics["total"],
    }
    assert size["top10"] < size["top50"] < kinetics["total"]
    for data, clips in expected.items():
        summary = json.loads(
            (work_dir / "pretrain" / f"{data}.blip2.l2-0.01" / "train_summary.json").read_text()
        )
        assert summary["clips"] == clips, data


@pytest.mark.slow
def test_a_rerun_skips_every_finished_step_and_remakes_a_deleted_one(tiny_recipes, recipe_process):
    import shutil

    work_dir, runs = tiny_recipes
    steps = [line for line in runs["table5"].stdout.splitlines() if re.match(r"^\[\d+/\d+\] ", line)]
    assert len(steps) == 10 and all("done earlier, skipped" in line for line in steps)

    shutil.rmtree(work_dir / "eval" / "retrieval" / MAIN)
    again = recipe_process(RECIPES["table5"], work_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("$ avt") == 1 and f"$ avt evaluate retrieval --model {MAIN}=" in again.stdout
    assert printed_table(again.stdout, "Table 5") == printed_table(runs["table5"].stdout, "Table 5")
