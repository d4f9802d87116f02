"""A real S3 API on 127.0.0.1 (moto's threaded server) with buckets and the credentials to reach it.

Used by the object storage tests (tests/avt_triplets/test_object_storage.py) and the Ray cluster tests, whose
workers must get the credentials from the driver (tests/avt_triplets/distributors/test_ray_cluster.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

SECRET = "not-a-real-secret-3f9a1c"  # moto accepts any credentials; this one must never be written anywhere


@contextlib.contextmanager
def moto_s3(buckets: tuple[str, ...], uploads: dict[str, Path] | None = None) -> Iterator[dict]:
    """A server with ``buckets``; ``uploads`` maps a bucket to a folder copied into it.

    Yields ``{"env": AWS_* variables, "options": --storage-options, "client": a boto3 S3 client}``.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "avt-test",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SECRET,
            region_name=env["AWS_DEFAULT_REGION"],
        )
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        for bucket, root in (uploads or {}).items():
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    client.upload_file(str(path), bucket, path.relative_to(root).as_posix())
        options = {"key": "avt-test", "secret": SECRET, "endpoint_url": env["AWS_ENDPOINT_URL"]}
        yield {"env": env, "options": options, "client": client}
    finally:
        server.stop()


def objects(client, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object of ``bucket`` under ``prefix``: key -> content."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return found
