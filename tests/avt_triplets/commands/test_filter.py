"""`avt filter`: subsets.json and the card's configs."""

from __future__ import annotations

import json

import datasets
import pytest

from avt import cli
from avt_triplets import schema, selection

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


def test_new_configs_are_added_to_the_existing_ones_unless_replace(small_output, capsys):
    """Issue 8.4: `avt filter --top 100` keeps top10/30/50 (what `avt generate` recorded)."""
    root = small_output.root
    assert cli.main(["filter", str(root)]) == 0  # what the end of `avt generate` records: the defaults
    assert cli.main(["filter", str(root), "--top", "100"]) == 0
    recorded = selection.read_subsets(root)
    assert recorded.top == [10, 30, 50, 100] and recorded.random == [10, 30, 50]
    card = (root / schema.CARD_FILE).read_text()
    assert "config_name: top10" in card and "config_name: top100" in card
    assert cli.main(["filter", str(root), "--replace", "--top", "100"]) == 0
    recorded = selection.read_subsets(root)
    assert (
        recorded.top == [100] and recorded.random == [] and [s.name for s in recorded.subsets] == ["top100"]
    )
    with pytest.raises(SystemExit):  # a bare --top used to drop every top config silently
        cli.main(["filter", str(root), "--top"])
    assert cli.main(["filter", str(root), "--replace"]) == 2
    assert "none were given" in capsys.readouterr().err


def test_a_k_that_selects_no_row_is_refused(helpers, tmp_path, capsys):
    output = helpers.write_output(tmp_path / "out", [[("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.4)]])
    assert cli.main(["filter", str(output.root), "--top", "50"]) == 0
    before = (output.root / schema.SUBSETS_FILE).read_bytes()
    assert cli.main(["filter", str(output.root), "--top", "10", "--random", "5"]) == 2
    assert "top10, random5 would select no row of the 4 finished clips" in capsys.readouterr().err
    assert (output.root / schema.SUBSETS_FILE).read_bytes() == before  # nothing was written
    # Recorded defaults that are empty on so few clips never become configs load_dataset cannot read.
    card = (output.root / schema.CARD_FILE).read_text()
    assert "config_name: top50" in card and "config_name: top10" not in card


def test_filter_on_an_unfinished_run_says_how_many_shards_are_missing(helpers, tmp_path, capsys):
    shards = [[(f"s{i}_{j}", 0.1 * j) for j in range(4)] for i in range(4)]
    manifest = {**helpers.default_manifest(), "num_shards": 6}  # 2 shards never started, 1 unfinished
    output = helpers.write_output(tmp_path / "out", shards, done=[True, True, True, False], manifest=manifest)
    assert cli.main(["filter", str(output.root), "--top", "50"]) == 0
    assert "warning: 3 of 6 shard(s) are not finished" in capsys.readouterr().err


def test_filter_never_rewrites_a_folder_avt_did_not_write(tmp_path, capsys):
    """Issue 8.2: a folder with a data/ subfolder is not enough; only a folder with an avt manifest."""
    theirs = tmp_path / "project"
    (theirs / "data").mkdir(parents=True)
    (theirs / "README.md").write_text("# my project\n")
    assert cli.main(["filter", str(theirs), "--top", "30"]) == 2
    assert "not an avt generation output" in capsys.readouterr().err
    assert (theirs / "README.md").read_text() == "# my project\n"
    assert sorted(p.name for p in theirs.iterdir()) == ["README.md", "data"]


def test_filter_on_a_read_only_output_is_a_usage_error(small_output, make_read_only, capsys):
    make_read_only(small_output.root)
    assert cli.main(["filter", str(small_output.root), "--top", "30"]) == 2
    assert f"cannot write to {small_output.root}" in capsys.readouterr().err


KILL_AFTER_FIRST_OF_CARD_AND_SUBSETS = """
import os, signal, sys
from avt_triplets import publish, selection
from avt import cli
pair = ("README.md", "subsets.json")

def write_then_die(path, data, _write=publish.atomic_write_bytes):
    written = _write(path, data)
    if str(path).endswith(pair):
        os.kill(os.getpid(), signal.SIGKILL)  # killed right after the first file of the pair
    return written

publish.atomic_write_bytes = selection.atomic_write_bytes = write_then_die
sys.exit(cli.main(sys.argv[1:]))
"""


def card_configs(root) -> set[str]:
    from huggingface_hub import DatasetCard

    return {entry["config_name"] for entry in DatasetCard.load(root / schema.CARD_FILE).data["configs"]}


def recorded_configs(root) -> set[str]:
    return {subset.name for subset in selection.read_subsets(root).subsets}


def test_a_filter_killed_between_card_and_subsets_leaves_no_config_the_card_lacks_and_a_rerun_repairs_it(
    small_output, subprocess_env, tmp_path
):
    import signal
    import subprocess
    import sys

    root = small_output.root
    assert cli.main(["filter", str(root), "--top", "30"]) == 0
    argv = [sys.executable, "-c", KILL_AFTER_FIRST_OF_CARD_AND_SUBSETS, "filter", str(root), "--top", "20"]
    killed = subprocess.run(argv, env=subprocess_env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert recorded_configs(root) <= card_configs(root)  # whatever subsets.json names, load_dataset finds
    for config in recorded_configs(root):
        datasets.load_dataset(str(root), config, split="train", cache_dir=str(tmp_path / "c"))
    assert cli.main(["filter", str(root), "--top", "20"]) == 0  # the rerun finishes what was killed
    assert recorded_configs(root) == card_configs(root) - {"all"} and "top20" in recorded_configs(root)
    top20 = datasets.load_dataset(str(root), "top20", split="train", cache_dir=str(tmp_path / "c"))
    assert len(top20) == selection.read_subsets(root).get("top20").size
