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


def _files(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("offline", [False, True])
def test_publish_without_network_is_one_line_and_changes_nothing(offline, small_output, monkeypatch, capsys):
    """Issue 8.12: no 72-line httpx traceback; the user learns that nothing was pushed or changed."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    before = _files(small_output.root)
    assert (
        cli.main(["publish", str(small_output.root), "--repo-id", "someone/triplets", "--token", "hf_x"]) == 2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: the Hub at http://127.0.0.1:9 could not be reached"
    )
    assert lines[0].endswith("nothing was pushed and the local files are unchanged")
    assert _files(small_output.root) == before


def test_publish_refuses_folders_avt_did_not_write_or_cannot_write(
    tmp_path, small_output, make_read_only, capsys
):
    theirs = tmp_path / "project"
    (theirs / "data").mkdir(parents=True)
    (theirs / "README.md").write_text("# mine\n")
    assert cli.main(["publish", str(theirs), "--repo-id", "someone/x"]) == 2
    assert "not an avt generation output" in capsys.readouterr().err
    assert (theirs / "README.md").read_text() == "# mine\n"
    make_read_only(small_output.root)
    assert cli.main(["publish", str(small_output.root), "--repo-id", "someone/x"]) == 2
    assert "cannot write to" in capsys.readouterr().err


def test_the_token_reaches_no_file_and_no_output(local_hub, small_output, capfd):
    """Issue 8.9: the token goes to huggingface_hub only (compare the finetune leak through training_args.bin)."""
    repo_id = local_hub.repo_id("triplets-token")
    assert (
        cli.main(["publish", str(small_output.root), "--repo-id", repo_id, "--token", local_hub.token]) == 0
    )
    captured = capfd.readouterr()
    assert local_hub.token not in captured.out + captured.err
    written = _files(small_output.root)
    assert written and all(local_hub.token.encode() not in data for data in written.values())
    remote = HfApi(token=local_hub.token)
    for path in remote.list_repo_files(repo_id, repo_type="dataset"):
        data = open(remote.hf_hub_download(repo_id, path, repo_type="dataset"), "rb").read()
        assert local_hub.token.encode() not in data, path
