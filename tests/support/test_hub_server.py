"""The local Hub round-trips models and datasets through the real huggingface_hub / transformers /
datasets clients, by repo id, exactly as a user's push_to_hub + from_pretrained/load_dataset would."""

from __future__ import annotations

import uuid

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _hub_answered_everything(local_hub):
    """Fail when a client called a route the local Hub lacks, or the server itself crashed."""
    yield
    unhandled, errors = list(local_hub.server.unhandled), list(local_hub.server.errors)
    local_hub.server.unhandled.clear()
    local_hub.server.errors.clear()
    assert not unhandled and not errors, (unhandled, errors)


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_model_round_trip_by_repo_id(local_hub, tmp_path):
    import torch
    from transformers import AutoModel, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    model = BertModel(config)
    repo_id = local_hub.repo_id(_unique("tiny-bert"))
    model.push_to_hub(repo_id)

    loaded = AutoModel.from_pretrained(repo_id)
    assert type(loaded) is BertModel
    original, reloaded = model.state_dict(), loaded.state_dict()
    assert original.keys() == reloaded.keys()
    for key in original:
        torch.testing.assert_close(reloaded[key], original[key], rtol=0, atol=0)


def test_upload_lists_and_downloads_files(local_hub, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    api = HfApi()
    repo_id = api.create_repo(_unique("files"), repo_type="dataset").repo_id
    assert repo_id.startswith(f"{local_hub.user}/")
    folder = tmp_path / "upload"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("hello hub\n")
    payload = np.random.default_rng(0).bytes(4096)
    (folder / "sub" / "blob.bin").write_bytes(payload)
    api.upload_folder(folder_path=folder, repo_id=repo_id, repo_type="dataset")

    files = set(api.list_repo_files(repo_id, repo_type="dataset"))
    assert {"notes.txt", "sub/blob.bin", ".gitattributes"} <= files
    tree = {entry.path: entry for entry in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)}
    assert tree["sub/blob.bin"].lfs is not None and tree["sub/blob.bin"].lfs.size == len(payload)
    assert tree["notes.txt"].lfs is None
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(repo_id, path_in_repo="missing", repo_type="dataset"))

    downloaded = hf_hub_download(repo_id, "sub/blob.bin", repo_type="dataset", cache_dir=tmp_path / "cache")
    assert open(downloaded, "rb").read() == payload
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.txt", repo_type="dataset", cache_dir=tmp_path / "cache")


def test_dataset_round_trip_by_repo_id(local_hub):
    from datasets import Dataset, load_dataset

    rows = {"clip_id": ["a", "b", "c"], "score": [0.5, 0.25, 0.125], "tags": [["x"], [], ["y", "z"]]}
    repo_id = local_hub.repo_id(_unique("tiny-ds"))
    Dataset.from_dict(rows).push_to_hub(repo_id)

    loaded = load_dataset(repo_id, split="train")
    assert loaded.to_dict() == rows


def test_dataset_with_images_round_trip(local_hub):
    from datasets import Dataset, Features, Image, Value, load_dataset
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8) for _ in range(3)]
    features = Features({"name": Value("string"), "image": Image()})
    dataset = Dataset.from_dict(
        {"name": ["p0", "p1", "p2"], "image": [PILImage.fromarray(a) for a in arrays]}, features=features
    )
    repo_id = local_hub.repo_id(_unique("tiny-images"))
    dataset.push_to_hub(repo_id)

    loaded = load_dataset(repo_id, split="train")
    assert loaded.features["image"] == Image()
    assert loaded["name"] == ["p0", "p1", "p2"]
    for array, image in zip(arrays, loaded["image"]):
        np.testing.assert_array_equal(np.asarray(image), array)  # PNG is lossless


def test_hub_api_surface_other_parts_rely_on(local_hub, tmp_path):
    """exist_ok, no-op uploads, model cards, branches, pull requests, deletions, private repos."""
    from huggingface_hub import HfApi, ModelCard, snapshot_download

    api = HfApi()
    repo_id = local_hub.repo_id(_unique("surface"))
    api.create_repo(repo_id)
    assert api.create_repo(repo_id, exist_ok=True).repo_id == repo_id
    assert api.repo_exists(repo_id) and not api.repo_exists(repo_id + "-missing")

    card = b"---\nlicense: mit\ntags:\n- avt\n---\n# Tiny\n"
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=repo_id)
    weights = bytes(range(256)) * 8
    api.upload_file(path_or_fileobj=weights, path_in_repo="w/a.bin", repo_id=repo_id)
    head = api.model_info(repo_id).sha
    api.upload_file(path_or_fileobj=weights, path_in_repo="w/a.bin", repo_id=repo_id)  # unchanged: no commit
    assert api.model_info(repo_id).sha == head
    assert api.model_info(repo_id).card_data.license == "mit"
    assert ModelCard.load(repo_id).data.tags == ["avt"]
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=b"---\n[unclosed\n---\n", path_in_repo="README.md", repo_id=repo_id)

    api.create_branch(repo_id, branch="dev")
    api.upload_file(path_or_fileobj=b"dev", path_in_repo="dev.txt", repo_id=repo_id, revision="dev")
    assert "dev.txt" in api.list_repo_files(repo_id, revision="dev")
    assert "dev.txt" not in api.list_repo_files(repo_id)
    pr = api.upload_file(path_or_fileobj=b"pr", path_in_repo="pr.txt", repo_id=repo_id, create_pr=True)
    assert pr.pr_revision == "refs/pr/1" and "pr.txt" in api.list_repo_files(repo_id, revision=pr.pr_revision)

    snapshot = snapshot_download(repo_id, cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache").exists() and open(f"{snapshot}/w/a.bin", "rb").read() == weights
    assert [c.title for c in api.list_repo_commits(repo_id)][-1] == "initial commit"

    api.delete_file("w/a.bin", repo_id)
    assert not api.file_exists(repo_id, "w/a.bin") and api.file_exists(repo_id, "README.md")
    api.delete_repo(repo_id)
    assert not api.repo_exists(repo_id)

    private_id = local_hub.repo_id(_unique("private"))
    api.create_repo(private_id, private=True)
    assert api.model_info(private_id).private
    assert not HfApi(token=False).repo_exists(private_id)  # anonymous readers don't see it


def test_writes_need_the_token(local_hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    with pytest.raises(HfHubHTTPError) as info:
        HfApi(token="hf_wrong").create_repo(_unique("denied"))
    assert info.value.response.status_code == 401


def test_identical_lfs_files_upload_in_one_commit(local_hub, tmp_path):
    """As on the real Hub: storage is content-addressed, so byte-identical files (e.g. a run's empty failure
    shards) upload together, and uploading an object again is a no-op."""
    from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download

    api = HfApi()
    repo_id = api.create_repo(_unique("same-bytes"), repo_type="dataset").repo_id
    payload = b"PAR1" + bytes(range(256)) * 4 + b"PAR1"
    operations = [
        CommitOperationAdd(path_in_repo=f"failures/shard-{i:05d}.parquet", path_or_fileobj=payload)
        for i in range(5)
    ]
    api.create_commit(repo_id, operations, commit_message="five identical files", repo_type="dataset")
    again = [CommitOperationAdd(path_in_repo="copy.parquet", path_or_fileobj=payload)]
    api.create_commit(repo_id, again, commit_message="once more", repo_type="dataset")
    for path in [op.path_in_repo for op in operations] + ["copy.parquet"]:
        assert open(hf_hub_download(repo_id, path, repo_type="dataset"), "rb").read() == payload
