"""Issue 18 item 14: the closing summary counts what the output holds, not what this process saw.

After a Ray + S3 run resumed and finished every shard, its summary said `shards 1/4 done` and that the card was not
written: the driver had listed the bucket at start, and s3fs answered later listings from that memory while the
workers (other processes, other nodes) wrote the rest. Here other writers are a second S3 client (moto's server on
127.0.0.1), the driver is this process.
"""

from __future__ import annotations

import pytest
from support.fixtures.generation import labelled_argv

from avt import cli
from avt_core import storage
from avt_triplets import schema, selection
from avt_triplets.stages.writer import write_final_card
from avt_triplets.summary import summarize

pytest.importorskip("s3fs", reason="object storage tests need s3fs")
moto_server = pytest.importorskip("moto.server", reason="object storage tests need moto[server]")


@pytest.fixture(scope="module")
def bucket():
    """A moto S3 server with an empty bucket ``outputs``; ``(boto3 client, storage options)``."""
    import logging

    import boto3

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="avt",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="outputs")
    try:
        yield client, {"endpoint_url": endpoint, "key": "avt", "secret": "test"}
    finally:
        server.stop()


def upload(client, local, prefix: str, names: list[str]) -> None:
    for name in names:
        client.upload_file(str(local / name), "outputs", f"{prefix}/{name}")


def test_the_summary_and_card_count_shards_other_processes_wrote_after_this_one_listed(
    bucket, short_clips, tmp_path
):
    client, options = bucket
    local = tmp_path / "finished"
    assert cli.main(labelled_argv(short_clips, local)) == 0  # 3 shards of 2 clips
    shard_files = [
        f"{folder}/{schema.shard_name(i)}{suffix}"
        for i in range(3)
        for folder, suffix in (("data", ".parquet"), ("failures", ".parquet"), ("stats", "_stats.json"))
    ]
    prefix = (
        tmp_path.name
    )  # not "run": another test's server may have had this port, and fsspec caches per endpoint
    upload(
        client, local, prefix, [schema.MANIFEST_FILE, *shard_files[:3]]
    )  # shard 0 finished before the resume
    root = storage.as_path(f"s3://outputs/{prefix}", options)
    first = summarize(root)
    assert (first.shards_done, first.shards_total, first.clips) == (1, 3, 2)
    upload(client, local, prefix, shard_files[3:])  # the resumed run's workers commit shards 1 and 2
    summary = summarize(root)
    assert (summary.shards_done, summary.shards_total, summary.clips, summary.triplets) == (3, 3, 6, 6)
    assert summary.complete and "shards        3/3 done" in summary.format()
    card, error = write_final_card(root)  # the pipeline writes it once the summary is complete
    assert error is None and card is not None
    assert selection.read_subsets(root).data_files == [
        f"data/{schema.shard_name(i)}.parquet" for i in range(3)
    ]
