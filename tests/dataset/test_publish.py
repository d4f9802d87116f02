"""Publishing a generation output round-trips through the (local) Hub, configs included."""

from __future__ import annotations

import datasets
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from avt_triplets import cli, publish, schema, selection

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")


def test_publish_round_trips_every_config(local_hub, small_output, helpers, tmp_path):
    repo_id = local_hub.repo_id("triplets-full")
    url = publish.publish(small_output.root, repo_id, token=local_hub.token)
    assert url.endswith(f"datasets/{repo_id}")
    files = set(HfApi(token=local_hub.token).list_repo_files(repo_id, repo_type="dataset"))
    assert {"README.md", "subsets.json", "manifest.json", publish.HISTOGRAM_FILE} <= files
    assert {f"data/shard-0000{i}.parquet" for i in range(3)} <= files
    assert "data/shard-00003.parquet" not in files  # unfinished: not published
    assert "failures/shard-00000.parquet" in files and "stats/shard-00000_stats.json" in files

    cache = str(tmp_path / "cache")
    everything = datasets.load_dataset(repo_id, split="train", cache_dir=cache)
    assert set(everything["clip_id"]) == set(small_output.scores)
    assert everything[0]["audio"].get_all_samples().sample_rate == 16_000
    top30 = datasets.load_dataset(repo_id, "top30", split="train", cache_dir=cache)
    assert set(top30["clip_id"]) == helpers.top_ids(small_output.scores, 10)
    random30 = datasets.load_dataset(repo_id, "random30", split="train", cache_dir=cache)
    local = datasets.load_dataset(str(small_output.root), "random30", split="train", cache_dir=cache)
    assert random30["clip_id"] == local["clip_id"] and len(random30) == 10


def test_publish_metadata_only_from_the_command_line(local_hub, small_output, helpers, tmp_path, capsys):
    repo_id = local_hub.repo_id("triplets-meta")
    argv = [
        "publish",
        str(small_output.root),
        "--repo-id",
        repo_id,
        "--metadata-only",
        "--token",
        local_hub.token,
    ]
    assert cli.main(argv) == 0
    assert "metadata-only" in capsys.readouterr().out
    cache = str(tmp_path / "cache")
    top30 = datasets.load_dataset(repo_id, "top30", split="train", cache_dir=cache)
    assert "audio" not in top30.column_names and "frames" not in top30.column_names
    assert set(top30["clip_id"]) == helpers.top_ids(small_output.scores, 10)
    everything = datasets.load_dataset(repo_id, split="train", cache_dir=cache)
    assert set(everything["clip_id"]) == set(small_output.scores)
    card = HfApi(token=local_hub.token).hf_hub_download(repo_id, "README.md", repo_type="dataset")
    assert "metadata-only" in open(card, encoding="utf-8").read()
    # The local output keeps its media.
    assert (
        "audio" in datasets.load_dataset(str(small_output.root), split="train", cache_dir=cache).column_names
    )


def test_publish_to_a_branch_after_filter(local_hub, small_output, helpers, tmp_path):
    repo_id = local_hub.repo_id("triplets-branch")
    assert cli.main(["filter", str(small_output.root), "--top", "20", "--random", "20", "--seed", "1"]) == 0
    publish.publish(small_output.root, repo_id, token=local_hub.token, revision="v1", private=True)
    assert HfApi(token=local_hub.token).repo_info(repo_id, repo_type="dataset").private
    cache = str(tmp_path / "cache")
    top20 = datasets.load_dataset(repo_id, "top20", split="train", revision="v1", cache_dir=cache)
    assert set(top20["clip_id"]) == helpers.top_ids(small_output.scores, selection.subset_size(20, 34))
    branches = {
        b.name for b in HfApi(token=local_hub.token).list_repo_refs(repo_id, repo_type="dataset").branches
    }
    assert "v1" in branches


def test_republish_removes_shards_that_are_no_longer_published(local_hub, small_output, tmp_path):
    repo_id = local_hub.repo_id("triplets-republish")
    publish.publish(small_output.root, repo_id, token=local_hub.token)
    dropped = set(
        pq.read_table(schema.data_path(small_output.root, 2), columns=["clip_id"])["clip_id"].to_pylist()
    )
    schema.stats_path(small_output.root, 2).unlink()  # shard 2 is now unfinished: it must leave the Hub
    publish.publish(small_output.root, repo_id, token=local_hub.token)
    files = set(HfApi(token=local_hub.token).list_repo_files(repo_id, repo_type="dataset"))
    assert "data/shard-00002.parquet" not in files and "stats/shard-00002_stats.json" not in files
    assert "data/shard-00000.parquet" in files
    everything = datasets.load_dataset(repo_id, split="train", cache_dir=str(tmp_path / "cache"))
    assert set(everything["clip_id"]) == set(small_output.scores) - dropped
    top30 = datasets.load_dataset(repo_id, "top30", split="train", cache_dir=str(tmp_path / "cache"))
    assert len(top30) == selection.subset_size(30, len(everything))
