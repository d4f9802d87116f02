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

from avt import cli

pytest.importorskip("s3fs", reason="object storage tests need s3fs")
moto_server = pytest.importorskip("moto.server", reason="object storage tests need moto[server]")

from support.s3_server import SECRET, moto_s3, objects  # noqa: E402


@pytest.fixture(scope="module")
def s3(gen_inputs):
    """A moto S3 server with the test videos and the mixed clip list in s3://inputs; ``{"env", "options"}``."""
    with moto_s3(("inputs", "outputs"), {"inputs": gen_inputs["root"]}) as server:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in server["env"].items():
                patch.setenv(key, value)
            yield server


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
        "generate", "s3://inputs/mixed.csv", "--output-dir", url, "--storage-options", options_json,
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
    from avt_triplets import layout, shards

    client, url = s3["client"], "s3://outputs/run"
    argv = generate_argv(url, tiny_blip2, tiny_clap, json.dumps(s3["options"]))
    env = {**subprocess_env, **s3["env"]}
    env.pop("AWS_SECRET_ACCESS_KEY")  # the subprocess gets its credentials from --storage-options only
    log = tmp_path / "killed.log"
    with open(log, "wb") as stderr:
        killed = subprocess.Popen([sys.executable, "-m", "avt.cli", *argv], env=env, stderr=stderr)
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
        expected.update(rows_of(shards.read_table(layout.data_path(reference_run, index))))
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


def wrong_secret_options(s3) -> tuple[dict, str]:
    """Storage options with a real key id (moto's IAM) and a wrong secret, and that secret."""
    import uuid

    import boto3

    iam = boto3.client("iam")
    user = f"avt-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    wrong = "wrong-" + SECRET
    return {"key": key_id, "secret": wrong, "endpoint_url": s3["env"]["AWS_ENDPOINT_URL"]}, wrong


@pytest.mark.parametrize(
    "command, bucket",
    [("generate-local", "inputs"), ("generate-ray", "inputs"), ("filter", "outputs")],
)
def test_a_wrong_secret_key_is_one_line_naming_the_bucket_and_the_operation(
    s3, tiny_blip2, tiny_clap, capsys, command, bucket
):
    """Issue 18 §13: with IAM checks on (a real S3 answers SignatureDoesNotMatch), a wrong secret for a real key id
    is one ``error:`` line with the bucket, the refused operation and the reason; no secret, no traceback."""
    import json

    from moto.core.authorization import enable_iam_authentication

    options, wrong = wrong_secret_options(s3)
    if command == "filter":
        argv = ["filter", "s3://outputs/run", "--top", "50", "--storage-options", json.dumps(options)]
    else:
        argv = generate_argv("s3://outputs/wrong-secret", tiny_blip2, tiny_clap, json.dumps(options))
        argv += ["--distributor", command.removeprefix("generate-")]
    with enable_iam_authentication():
        code = cli.main(argv)
    printed = capsys.readouterr()
    lines = printed.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, printed.err
    assert lines[0].startswith(f"error: s3://{bucket}: the store refused "), lines[0]
    assert "signature does not match" in lines[0]
    assert wrong not in printed.err + printed.out and SECRET not in printed.err + printed.out
