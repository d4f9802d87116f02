"""Publishing a generation output round-trips through the (local) Hub, configs included."""

from __future__ import annotations

import json

import datasets
import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from avt import cli
from avt_triplets import layout, publish, schema, selection

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")


def test_publish_round_trips_every_config(local_hub, small_output, helpers, tmp_path):
    repo_id = local_hub.repo_id("triplets-full")
    url = publish.publish(small_output.root, repo_id, token=local_hub.token)
    assert url.endswith(f"datasets/{repo_id}")
    files = set(HfApi(token=local_hub.token).list_repo_files(repo_id, repo_type="dataset"))
    assert {"README.md", "subsets.json", "manifest.json", layout.HISTOGRAM_FILE} <= files
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
        "--push-to-hub",
        repo_id,
        "--metadata-only",
        "--hub-token",
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
        pq.read_table(layout.data_path(small_output.root, 2), columns=["clip_id"])["clip_id"].to_pylist()
    )
    layout.stats_path(small_output.root, 2).unlink()  # shard 2 is now unfinished: it must leave the Hub
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
        cli.main(
            ["publish", str(small_output.root), "--push-to-hub", "someone/triplets", "--hub-token", "hf_x"]
        )
        == 2
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
    assert cli.main(["publish", str(theirs), "--push-to-hub", "someone/x"]) == 2
    assert "not an avt generation output" in capsys.readouterr().err
    assert (theirs / "README.md").read_text() == "# mine\n"
    make_read_only(small_output.root)
    assert cli.main(["publish", str(small_output.root), "--push-to-hub", "someone/x"]) == 2
    assert "cannot write to" in capsys.readouterr().err


def test_the_token_reaches_no_file_and_no_output(local_hub, small_output, capfd):
    """Issue 8.9: the token goes to huggingface_hub only (compare the finetune leak through training_args.bin)."""
    repo_id = local_hub.repo_id("triplets-token")
    assert (
        cli.main(
            ["publish", str(small_output.root), "--push-to-hub", repo_id, "--hub-token", local_hub.token]
        )
        == 0
    )
    captured = capfd.readouterr()
    assert local_hub.token not in captured.out + captured.err
    written = _files(small_output.root)
    assert written and all(local_hub.token.encode() not in data for data in written.values())
    remote = HfApi(token=local_hub.token)
    for path in remote.list_repo_files(repo_id, repo_type="dataset"):
        data = open(remote.hf_hub_download(repo_id, path, repo_type="dataset"), "rb").read()
        assert local_hub.token.encode() not in data, path


def _manifest_with_local_paths(machine) -> dict:
    """A manifest as `avt generate` writes it for local model folders and a list file (no `input.root` yet)."""
    return {
        "format": "avt-triplets/1",
        "avt_version": "0.1.0",
        "captioner": {
            "name": str(machine / "models" / "tiny-blip2"),
            "revision": None,
            "weights_digest": "0adc120cc6206fc5770c940922d2c5ccadd01c80b8d03b2743b8e0d6b4cd14bd",
            "dtype": "float32",
            "prompt": None,
            "max_new_tokens": 30,
        },
        "scorer": {
            "name": "msclap:2023",
            "revision": None,
            "weights_digest": "497fd5145e13a48e36ab38740c6f084bfd5bf26ed1c39b946e31cf4632c41235",
            "dtype": "float32",
            "text_model": str(machine / "models" / "tiny-msclap" / "gpt2"),
            "text_model_revision": None,
            "text_model_digest": "6e91eab581955c1e321a2a6ffa6d8428d147cae25e31a9381c7a0fecb4c58169",
        },
        "captioned": True,
        "fps": 1.0,
        "clip_seconds": 10.0,
        "seed": 0,
        "input": {"source": str(machine / "videos" / "labels.csv"), "clips": 40, "digest": "bb2dfb66"},
        "num_shards": 4,
    }


def _uploaded(repo_id: str, token: str) -> dict[str, bytes]:
    api = HfApi(token=token)
    return {
        path: open(api.hf_hub_download(repo_id, path, repo_type="dataset"), "rb").read()
        for path in api.list_repo_files(repo_id, repo_type="dataset")
    }


def test_nothing_published_names_a_local_path(local_hub, helpers, tmp_path, tmp_path_factory):
    machine = (
        tmp_path_factory.getbasetemp()
    )  # the test's temporary root: models, videos and output live there
    shards = [[(f"vid/{i:03d}", i / 20) for i in range(s * 6, s * 6 + 6)] for s in range(3)]
    out = helpers.write_output(tmp_path / "out", shards, manifest=_manifest_with_local_paths(tmp_path))
    repo_id = local_hub.repo_id("no-local-paths")
    publish.publish(out.root, repo_id, token=local_hub.token)
    uploaded = _uploaded(repo_id, local_hub.token)
    assert {"README.md", "manifest.json", "data/shard-00000.parquet"} <= set(uploaded)
    leaking = [path for path, data in uploaded.items() if str(machine).encode() in data]
    assert not leaking, leaking
    manifest = json.loads(uploaded["manifest.json"])
    assert manifest["captioner"]["name"] == "tiny-blip2" and manifest["captioner"]["weights_digest"]
    assert manifest["scorer"]["text_model"] == "gpt2" and manifest["input"]["source"] == "labels.csv"
    assert json.loads((out.root / "manifest.json").read_text())["captioner"]["name"].startswith(str(tmp_path))


def test_publish_refuses_files_holding_the_input_root(local_hub, helpers, tmp_path, capsys):
    """Failures written by an avt that kept the decoder's message as is: `no such file: /abs/path`."""
    shards = [[("vid/000", 0.1), ("vid/001", 0.2)], [("vid/002", 0.3)]]
    out = helpers.write_output(tmp_path / "out", shards, manifest=_manifest_with_local_paths(tmp_path))
    missing = tmp_path / "videos" / "bad" / "missing.mp4"
    table = pq.read_table(layout.failures_path(out.root, 1)).to_pylist()
    table.append({"clip_id": "bad/missing", "video_path": "bad/missing.mp4", "reason": "unreadable_path"})
    table[-1]["detail"] = f"no such file: {missing}"
    datasets.Dataset.from_list(table, features=schema.FAILURE_FEATURES).to_parquet(
        str(layout.failures_path(out.root, 1))
    )
    repo_id = local_hub.repo_id("refused")
    argv = ["publish", str(out.root), "--push-to-hub", repo_id, "--hub-token", local_hub.token]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: refusing to publish 1 file(s)")
    assert "failures/shard-00001.parquet" in err[0] and "data/" not in err[0]
    assert str(tmp_path / "videos") in err[0]
    assert "data/shard-00000.parquet" not in HfApi(token=local_hub.token).list_repo_files(
        repo_id, repo_type="dataset"
    )


def test_a_failure_names_its_file_relative_to_the_input_root(tmp_path):
    """The decoder's message names the absolute file (`no such file: /abs/...`); the failures table must not."""
    from avt_triplets.decoding import DecodedItem, DecodeJob
    from avt_triplets.inputs import ClipSpec
    from avt_triplets.media import MediaError, probe
    from avt_triplets.stages.worker import failure_record

    missing = tmp_path / "videos" / "bad" / "missing.mp4"
    clip = ClipSpec(clip_id="bad/missing", video_path="bad/missing.mp4", source=str(missing))
    with pytest.raises(MediaError) as raised:
        probe(missing)
    reason, detail = raised.value.reason, raised.value.detail
    assert str(missing) in detail
    record = failure_record(DecodedItem(DecodeJob(0, 0, clip), 0.0, (reason, detail)), reason, detail)
    assert str(tmp_path) not in record["detail"] and "bad/missing.mp4" in record["detail"]
