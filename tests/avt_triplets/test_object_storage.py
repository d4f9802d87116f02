"""Issue 9 §3: inputs and outputs in S3 buckets, through a real S3 API (moto's server on 127.0.0.1).

The videos and the clip list are uploaded to one bucket, the output goes to another: `avt generate` (killed
mid-run and resumed), `avt filter`, ``avt_data.hf_dataset.load_dataset(url, config, storage_options=...)`` and the
in-place reader of training all work there, and the credentials given with --storage-options appear in no object,
no output line and no log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from avt_triplets import cli

pytest.importorskip("s3fs", reason="object storage tests need s3fs")
moto_server = pytest.importorskip("moto.server", reason="object storage tests need moto[server]")

SECRET = "not-a-real-secret-3f9a1c"  # moto accepts any credentials; this one must never be written anywhere


@pytest.fixture(scope="module")
def s3(gen_inputs):
    """A moto S3 server with the test videos and the mixed clip list in s3://inputs; ``{"env", "options"}``."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "avt-test",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        import boto3

        client = boto3.client("s3")
        for bucket in ("inputs", "outputs"):
            client.create_bucket(Bucket=bucket)
        root = gen_inputs["root"]
        for path in sorted(root.rglob("*")):
            if path.is_file():
                client.upload_file(str(path), "inputs", path.relative_to(root).as_posix())
        options = {"key": "avt-test", "secret": SECRET, "endpoint_url": env["AWS_ENDPOINT_URL"]}
        try:
            yield {"env": env, "options": options, "client": client}
        finally:
            server.stop()


def objects(client, bucket: str, prefix: str = "") -> dict[str, bytes]:
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return found


def rows_of(table) -> dict[str, dict]:
    return {row["clip_id"]: row for row in table.to_pylist()}


def assert_same_rows(actual: dict[str, dict], expected: dict[str, dict]) -> None:
    assert sorted(actual) == sorted(expected)
    for clip_id, row in expected.items():
        got = actual[clip_id]
        for key in ("video_path", "captions", "caption", "caption_index", "frame_times_s", "labels", "audio"):
            assert got[key] == row[key], (clip_id, key)
        for key in ("caption_scores", "text_embedding", "clap_score"):  # one torch thread in the subprocess
            np.testing.assert_allclose(got[key], row[key], atol=1e-6)


def generate_argv(url: str, tiny_blip2, tiny_clap, options_json: str) -> list[str]:
    return [
        "generate", "s3://inputs/mixed.csv", "--output", url, "--storage-options", options_json,
        "--captioner", str(tiny_blip2), "--scorer", str(tiny_clap), "--device", "cpu", "--max-new-tokens", "4",
        "--shard-size", "3", "--caption-batch-size", "8", "--score-batch-size", "4", "--num-workers", "0",
        "--no-progress",
    ]  # fmt: skip


def test_generate_filter_and_load_in_buckets_with_a_kill_and_resume(
    s3, tiny_blip2, tiny_clap, reference_run, subprocess_env, capsys, monkeypatch, tmp_path
):
    import json

    import datasets

    from avt_data.hf_dataset import load_dataset
    from avt_data.parquet_rows import open_parquet_triplets
    from avt_triplets import schema, shards

    client, url = s3["client"], "s3://outputs/run"
    argv = generate_argv(url, tiny_blip2, tiny_clap, json.dumps(s3["options"]))
    env = {**subprocess_env, **s3["env"]}
    env.pop("AWS_SECRET_ACCESS_KEY")  # the subprocess gets its credentials from --storage-options only
    log = tmp_path / "killed.log"
    with open(log, "wb") as stderr:
        killed = subprocess.Popen([sys.executable, "-m", "avt_triplets.cli", *argv], env=env, stderr=stderr)
        try:
            deadline = time.monotonic() + 180
            while not objects(client, "outputs", "run/stats/") and killed.poll() is None:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.1)
            assert killed.poll() is None, log.read_text()[-3000:]
            os.kill(killed.pid, signal.SIGKILL)  # a shard is committed, the others are not
        finally:
            killed.kill()
            killed.wait()
    done_at_kill = len(objects(client, "outputs", "run/stats/"))
    assert 1 <= done_at_kill < 5

    assert cli.main(argv) == 0  # resumes in the bucket
    assert cli.main(["filter", url, "--top", "50", "--storage-options", json.dumps(s3["options"])]) == 0
    printed = capsys.readouterr()

    written = objects(client, "outputs", "run/")
    assert len([k for k in written if k.startswith("run/stats/")]) == 5
    assert not [k for k in written if "/.parts/" in k or k.endswith(".tmp")]
    expected = {}
    for index in range(5):
        expected.update(rows_of(shards.read_table(schema.data_path(reference_run, index))))
    store = {"key": "avt-test", "secret": SECRET, "endpoint_url": s3["env"]["AWS_ENDPOINT_URL"]}
    # The suite runs with HF_HUB_OFFLINE, which makes datasets refuse every URL; this store is on 127.0.0.1.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    everything = load_dataset(url, storage_options=store)
    assert_same_rows(rows_of(everything.data.table), expected)
    top = load_dataset(url, "top50", storage_options=store)
    assert len(top) == round(len(expected) / 2)
    in_place = open_parquet_triplets([f"{url}:top50"], ["clip_id", "clap_score"], storage_options=store)
    assert sorted(in_place["clip_id"]) == sorted(top["clip_id"])  # what pretraining reads
    assert top[0]["audio"]["sampling_rate"] == 16_000 and top[0]["frames"][0].size[1] == 224

    leaks = [key for key, data in written.items() if SECRET.encode() in data]
    leaks += [name for name, text in (("stdout", printed.out), ("stderr", printed.err)) if SECRET in text]
    leaks += ["killed run's stderr"] if SECRET in log.read_text() else []
    assert not leaks and "subsets.json" in str(sorted(written))
    assert b"from avt_data.hf_dataset import load_dataset" in written["run/README.md"]
    manifest = json.loads(written["run/manifest.json"])
    assert manifest["input"]["source"] == "s3://inputs/mixed.csv"


def test_an_unreachable_bucket_is_refused_before_any_model_loads(s3, tiny_blip2, tiny_clap, capsys):
    import json

    argv = generate_argv("s3://no-such-bucket/run", tiny_blip2, tiny_clap, json.dumps(s3["options"]))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "error: cannot write to s3://no-such-bucket/run" in err and SECRET not in err
