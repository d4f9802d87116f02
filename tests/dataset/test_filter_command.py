"""`avt filter`: subsets.json and the card's configs."""

from __future__ import annotations

import json

import datasets
import pytest

from avt_triplets import cli, schema, selection

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")


def test_filter_writes_subsets_and_configs(small_output, helpers, tmp_path, capsys):
    root = small_output.root
    argv = ["filter", str(root), "--top", "20", "50", "--random", "20", "--seed", "3"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "top20" in captured.out and "random20" in captured.out
    assert "warning: 1 shard(s) are not finished" in captured.err
    subsets = json.loads((root / schema.SUBSETS_FILE).read_text())
    assert subsets["seed"] == 3 and subsets["top"] == [20, 50] and subsets["random"] == [20]
    assert subsets["total"] == 34
    assert subsets["excluded_files"] == ["data/shard-00003.parquet"]
    assert {name: s["size"] for name, s in subsets["subsets"].items()} == {
        "top20": 7,
        "top50": 17,
        "random20": 7,
    }
    top20 = subsets["subsets"]["top20"]
    assert top20["threshold"]["clap_score"] == pytest.approx(
        sorted(small_output.scores.values(), reverse=True)[6], abs=1e-6
    )
    card = (root / schema.CARD_FILE).read_text()
    assert "config_name: top20" in card and "config_name: top30" not in card
    top = datasets.load_dataset(str(root), "top20", split="train", cache_dir=str(tmp_path / "c"))
    assert set(top["clip_id"]) == helpers.top_ids(small_output.scores, 7)
    rand = datasets.load_dataset(str(root), "random20", split="train", cache_dir=str(tmp_path / "c"))
    assert len(rand) == 7 and set(rand["clip_id"]) <= set(small_output.scores)
    # A second run with another seed moves only the random subset.
    assert cli.main(["filter", str(root), "--top", "20", "50", "--random", "20", "--seed", "4"]) == 0
    again = datasets.load_dataset(str(root), "random20", split="train", cache_dir=str(tmp_path / "c"))
    assert len(again) == 7 and set(again["clip_id"]) != set(rand["clip_id"])
    assert selection.read_subsets(root).get("top20").threshold == top20["threshold"]


def test_filter_rejects_bad_input(tmp_path, capsys):
    assert cli.main(["filter", str(tmp_path)]) == 2
    assert "avt generate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["filter", str(tmp_path), "--top", "0"])
    with pytest.raises(SystemExit):
        cli.main(["filter", str(tmp_path), "--random", "150"])


def test_filter_defaults_keep_what_was_recorded(small_output):
    root = small_output.root
    assert cli.main(["filter", str(root), "--top", "30"]) == 0
    recorded = selection.read_subsets(root)
    assert recorded.seed == 7  # the generation run's seed from manifest.json
    assert recorded.top == [30] and recorded.random == [10, 30, 50]
    assert cli.main(["filter", str(root), "--random", "20", "--seed", "2"]) == 0
    recorded = selection.read_subsets(root)
    assert recorded.top == [30] and recorded.random == [10, 20, 30, 50] and recorded.seed == 2
    assert cli.main(["filter", str(root), "--replace", "--random", "20"]) == 0
    recorded = selection.read_subsets(root)
    assert recorded.top == [] and recorded.random == [20] and recorded.seed == 2
    assert [s.name for s in recorded.subsets] == ["random20"]
