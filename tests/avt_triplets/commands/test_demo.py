"""README command 1 runs `avt demo`: the whole offline loop must keep working end to end, show that the model
learnt (loss curve, retrieval next to chance), and its output must publish to the Hub and load back."""

import json

import datasets
import pytest
from huggingface_hub import HfApi

from avt.cli import main


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo on 10 clips: two shards of the generation output (shards of 8), hence two byte-identical empty
    failure files."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    argv = ["demo", "--output-dir", str(out), "--num-classes", "2", "--clips-per-class", "5"]
    argv += ["--max-steps", "10", "--per-device-batch-size", "2"]
    return out, main(argv)


def test_demo_runs_the_whole_loop(demo_run, tmp_path):
    out, code = demo_run
    assert code == 0
    rows = datasets.load_dataset(str(out / "triplets"), split="train", cache_dir=str(tmp_path / "c"))
    assert len(rows) == 10
    top30 = datasets.load_dataset(
        str(out / "triplets"), "top30", split="train", cache_dir=str(tmp_path / "c")
    )
    assert len(top30) == round(0.3 * 10)
    report = json.loads((out / "report" / "retrieval.json").read_text())
    assert report, "the retrieval report is empty"
    assert (out / "report" / "retrieval_recall_at_k.png").stat().st_size > 0
    assert (out / "lgcavmae" / "model.safetensors").exists()


def test_demo_report_shows_learning(demo_run):
    out, _ = demo_run
    assert (out / "report" / "pretrain_loss.png").read_bytes().startswith(b"\x89PNG")
    log = [json.loads(line) for line in (out / "lgcavmae" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 11))  # a point per step of a short run
    lrs = [r["lr"] for r in log]
    assert max(lrs) == pytest.approx(2e-3) and lrs[-1] == 0.0  # warmup, then cosine to zero at the last step
    first, last = sum(r["loss"] for r in log[:2]) / 2, sum(r["loss"] for r in log[-2:]) / 2
    assert last < first, f"the loss did not fall: {first:.3f} -> {last:.3f}"
    learning = json.loads((out / "report" / "learning.json").read_text())
    assert learning["clips"] == 10 and learning["chance"]["R@1"] == pytest.approx(0.1)
    assert learning["loss_last"] == log[-1]["loss"] and "R@1" in learning["audio_to_visual"]


def test_demo_output_publishes_and_loads_back_from_the_hub(demo_run, local_hub, tmp_path, tmp_path_factory):
    out, _ = demo_run
    triplets = out / "triplets"
    repo_id = local_hub.repo_id("demo-triplets")
    assert main(["publish", str(triplets), "--push-to-hub", repo_id, "--hub-token", local_hub.token]) == 0
    api = HfApi(token=local_hub.token)
    files = api.list_repo_files(repo_id, repo_type="dataset")
    assert {"failures/shard-00000.parquet", "failures/shard-00001.parquet"} <= set(files)
    machine = str(tmp_path_factory.getbasetemp()).encode()
    for path in files:
        data = open(api.hf_hub_download(repo_id, path, repo_type="dataset"), "rb").read()
        assert machine not in data, f"{path} names the test's temporary root"

    configs = [c["config_name"] for c in api.dataset_info(repo_id).card_data["configs"]]
    assert {"all", "top30", "random30"} <= set(configs)
    for config in configs:
        cache = str(tmp_path / "cache")
        remote = datasets.load_dataset(repo_id, config, split="train", cache_dir=cache)
        local = datasets.load_dataset(str(triplets), config, split="train", cache_dir=cache)
        assert len(remote) and sorted(remote["clip_id"]) == sorted(local["clip_id"]), config
