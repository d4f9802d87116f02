"""Issue 18 §13: the storage credentials a driver resolves from its own environment, for workers that lack it.

``storage.with_driver_credentials`` is what the ray distributor hands its tasks (in memory); the end-to-end run on
a cluster whose nodes have no credentials is in tests/avt_triplets/distributors/test_ray_cluster.py.
"""

from __future__ import annotations

import json

import pytest

from avt_core import storage

pytest.importorskip("botocore", reason="S3 credentials are resolved with botocore (s3fs needs it)")


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Credentials in the environment only (no ~/.aws files are read)."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "AKIA-driver",
        "AWS_SECRET_ACCESS_KEY": "driver-secret",
        "AWS_SESSION_TOKEN": "driver-session",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_DEFAULT_REGION": "eu-west-3",
    }.items():
        monkeypatch.setenv(key, value)


def test_s3_credentials_of_the_drivers_environment_become_storage_options(aws_env):
    options = storage.with_driver_credentials(None, {"s3"})
    assert options == {
        "key": "AKIA-driver",
        "secret": "driver-secret",
        "token": "driver-session",
        "endpoint_url": "http://127.0.0.1:9",
        "client_kwargs": {"region_name": "eu-west-3"},
    }


def test_explicit_storage_options_win_over_the_environment(aws_env):
    given = {"key": "given-key", "secret": "given-secret", "endpoint_url": "http://store.example:9000"}
    assert storage.with_driver_credentials(given, {"s3"}) == given
    assert storage.with_driver_credentials(None, set()) is None  # local paths: nothing to forward


def test_gcs_service_account_file_and_hub_token_travel_as_their_content(monkeypatch, tmp_path):
    account = {"type": "service_account", "client_email": "avt@example.iam.gserviceaccount.com"}
    (tmp_path / "account.json").write_text(json.dumps(account))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "account.json"))
    assert storage.with_driver_credentials(None, {"gs"}) == {"token": account}
    monkeypatch.setenv("HF_TOKEN", "hf_driver_token")
    assert storage.with_driver_credentials({"block_size": 0}, {"hf"}) == {
        "block_size": 0,
        "token": "hf_driver_token",
    }


def test_only_refusals_by_the_store_become_one_line():
    class ClientError(Exception):  # botocore's shape: response["Error"] and operation_name
        response = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}
        operation_name = "PutObject"

    try:
        raise PermissionError("Access Denied") from ClientError()
    except PermissionError as error:
        line = storage.refused_access(error, "s3://bucket/run/data")
    assert line == (
        "s3://bucket: the store refused PutObject (s3://bucket/run/data): access denied; check the credentials "
        "(--storage-options or the environment)"
    )
    assert storage.refused_access(FileNotFoundError("gone"), "s3://bucket/run") is None
