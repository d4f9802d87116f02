"""Where avt reads and writes: local folders, or fsspec URLs (``s3://``, ``gs://``, ``hf://datasets/...``).

A location becomes a path object once, here: a :class:`pathlib.Path` for a local folder (or ``file://``), a
``upath.UPath`` (pathlib's API over fsspec) for a URL, carrying the storage options (credentials, endpoint) it was
opened with, so every path derived from it (``root / "data"``) reaches the same store. The rest of avt uses the
path API and the few helpers below, and works the same on both.

Credentials come from the environment (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``HF_TOKEN``) or from
``--storage-options`` (JSON), and live only in these objects: ``str(path)`` is the bare URL, which is all that
manifests, cards, stats and logs ever record.

Crash safety: a local file is written to a hidden temporary and renamed; an object store has no rename, but an
object appears only once its upload completed, so it is written in place (an interrupted upload leaves nothing,
or an unfinished shard that readers ignore because its stats object, written last, is missing).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from avt_core.errors import UsageError

LOCAL_PROTOCOLS = ("", "file", "local")


def temporary_path(path: Path) -> Path:
    """A hidden sibling of ``path`` that no reader picks up: ``.name.<pid>.<random>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def is_url(location: Any) -> bool:
    text = str(location)
    return "://" in text and not text.startswith("file://")


def as_path(location: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> Path:
    """``location`` as a path: :class:`Path` when local, ``UPath`` (with ``storage_options``) for a URL."""
    if is_remote(location):
        return location  # already a store path: keeps its own options
    text = os.fspath(location) if not isinstance(location, str) else location
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    if not is_url(text):
        return Path(text)
    from upath import UPath

    return UPath(text, **(storage_options or {}))


def is_remote(path: Any) -> bool:
    """True for a path on an fsspec store other than the local disk."""
    protocol = getattr(path, "protocol", None)
    return protocol is not None and protocol not in LOCAL_PROTOCOLS


def forget_listings(path: Path) -> None:
    """Drop what the store's filesystem object cached about listings (s3fs, gcsfs keep them per process), so
    what other processes and nodes wrote since is seen: counting finished shards must list the store, not a memory."""
    if is_remote(path):
        path.fs.invalidate_cache()


def names(folder: Path) -> list[str]:
    """The entries of ``folder`` (one fresh listing, also on a store whose listings are cached); [] when it does
    not exist."""
    if is_remote(folder):
        folder.fs.invalidate_cache(folder.path)
    try:
        return [entry.name for entry in folder.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def size(path: Path) -> int | None:
    """The size of the file ``path`` in bytes; None when there is none."""
    try:
        if is_remote(path):
            path.fs.invalidate_cache(path.path)  # a listing cached earlier in this process would be stale
        return path.stat().st_size if path.is_file() else None
    except FileNotFoundError:
        return None


def remove_tree(folder: Path) -> None:
    """Delete ``folder`` and everything under it, if it exists."""
    if is_remote(folder):
        with contextlib.suppress(FileNotFoundError):
            folder.fs.rm(folder.path, recursive=True)
    else:
        shutil.rmtree(folder, ignore_errors=True)


def unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def makedirs(folder: Path) -> None:
    """Create a local folder (with parents); object stores have no folders to create."""
    if not is_remote(folder):
        folder.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A binary stream whose content becomes ``path`` only if the block ends without an error."""
    if is_remote(path):
        handle = path.open("wb")
        try:
            yield handle
        except BaseException:
            discard = getattr(handle, "discard", None)  # s3fs/gcsfs: abort the upload, nothing appears
            if discard is not None:
                discard()
            else:
                handle.close()
                unlink(path)
            raise
        handle.close()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def open_for_reading(path: Path) -> Iterator[Any]:
    """What pyarrow reads, for the block: the local path itself, or an fsspec file closed afterwards."""
    if not is_remote(path):
        yield path
        return
    with path.open("rb") as handle:
        yield handle


def protocol_of(location: Any) -> str:
    """``s3`` for ``s3://bucket/key`` (or a store path), "" for a local path."""
    if is_remote(location):
        protocol = location.protocol
        return protocol[0] if isinstance(protocol, tuple) else protocol
    return str(location).split("://", 1)[0] if is_url(location) else ""


def _s3_credentials(given: dict[str, Any]) -> dict[str, Any]:
    """What botocore's chain (environment, ``~/.aws`` files, instance role) resolves here, for s3fs."""
    import botocore.session

    found: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_url" not in given:
        found["endpoint_url"] = endpoint
    if given.get("anon") or "key" in given or "secret" in given:
        return found
    session = botocore.session.Session(profile=given.get("profile"))
    credentials = session.get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        found.update(key=frozen.access_key, secret=frozen.secret_key)
        if frozen.token:
            found["token"] = frozen.token
    region = session.get_config_variable("region")
    if region and "region_name" not in given.get("client_kwargs", {}):
        found["client_kwargs"] = {**given.get("client_kwargs", {}), "region_name": region}
    return found


def _gcs_credentials(given: dict[str, Any]) -> dict[str, Any]:
    """The service account file named by ``GOOGLE_APPLICATION_CREDENTIALS``, as the token gcsfs takes."""
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if "token" in given or not path or not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return {"token": json.load(handle)}


def _hf_credentials(given: dict[str, Any]) -> dict[str, Any]:
    from huggingface_hub import get_token

    token = None if "token" in given else get_token()
    return {"token": token} if token else {}


_RESOLVERS = {"s3": _s3_credentials, "s3a": _s3_credentials, "gs": _gcs_credentials, "gcs": _gcs_credentials}
_RESOLVERS["hf"] = _hf_credentials


def with_driver_credentials(
    storage_options: dict[str, Any] | None, protocols: Iterable[str]
) -> dict[str, Any] | None:
    """``storage_options`` plus the credentials this process resolves for ``protocols`` from its environment.

    Processes on other machines (Ray workers) do not see this process's environment or files: the options
    travel to them in memory, inside the path objects and decode settings (never written to a file or a log).
    Options given explicitly win. Temporary credentials are taken as they are now.
    """
    options = dict(storage_options or {})
    for protocol in sorted(set(protocols)):
        resolver = _RESOLVERS.get(protocol)
        if resolver is not None:
            options.update(resolver(options))
    return options or storage_options


_REFUSALS = {
    "AccessDenied": "access denied",
    "SignatureDoesNotMatch": "signature does not match (wrong secret key)",
    "InvalidAccessKeyId": "unknown access key id",
    "ExpiredToken": "the session token expired",
    "InvalidToken": "invalid session token",
}


def refused_access(error: BaseException, location: Any) -> str | None:
    """One line for a store that refused this process's credentials (bucket, operation, reason; never the
    credentials), or None when ``error`` is something else."""
    cause: BaseException | None = error
    while cause is not None:
        response = getattr(cause, "response", None)
        details = response.get("Error", {}) if isinstance(response, dict) else {}
        if details.get("Code") in _REFUSALS:
            url = str(location)
            bucket = details.get("BucketName") or url.split("://", 1)[-1].split("/", 1)[0]
            operation = getattr(cause, "operation_name", None) or "a request"
            return (
                f"{protocol_of(location) or 's3'}://{bucket}: the store refused {operation} ({url}): "
                f"{_REFUSALS[details['Code']]}; check the credentials (--storage-options or the environment)"
            )
        cause = cause.__cause__ or cause.__context__
    if isinstance(error, PermissionError) and is_url(location):
        detail = str(error).strip().splitlines()[0] if str(error).strip() else "no detail"
        return f"{location}: access denied by the store ({detail})"
    return None


@contextlib.contextmanager
def access_refusals_as_usage_errors(location: Any) -> Iterator[None]:
    """In the block, a store refusing the credentials becomes one ``error:`` line (:class:`UsageError`)."""
    try:
        yield
    except OSError as error:
        message = refused_access(error, location)
        if message is None:
            raise
        raise UsageError(message) from error


__all__ = [
    "access_refusals_as_usage_errors",
    "as_path",
    "atomic_output",
    "forget_listings",
    "is_remote",
    "is_url",
    "makedirs",
    "names",
    "open_for_reading",
    "protocol_of",
    "refused_access",
    "remove_tree",
    "size",
    "temporary_path",
    "unlink",
    "with_driver_credentials",
]
