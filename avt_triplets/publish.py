"""``avt publish``: a generation output pushed to the Hub (its card updated in place, files holding a local path
refused), and the metadata-only export (no audio, no frames) it can push instead. The card itself is
:mod:`avt_triplets.dataset_card`'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import datasets
import pyarrow.parquet as pq

from avt_core.errors import UsageError
from avt_triplets import layout, schema, selection
from avt_triplets.cards import CardLicense
from avt_triplets.dataset_card import (
    SIDE_FILES,
    data_features,
    read_manifest,
    render_dataset_card,
    write_dataset_card,
)
from avt_triplets.public import files_holding, private_roots, public_manifest

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# Metadata-only export and upload


def export_metadata_only(root: str | Path, out_dir: str | Path) -> Path:
    """Copy a generation output without ``audio`` and ``frames`` (copyright-safe sharing).

    Rows, ids, captions, scores and embeddings are kept; the finished shards are rewritten with the
    metadata-only features, the side files copied, and the card and subsets regenerated for the copy.
    """
    root, out_dir = Path(root), Path(out_dir)
    if out_dir.resolve() == root.resolve():
        raise ValueError("export_metadata_only needs an output folder different from the input")
    reference = schema.triplet_features(with_media=False, caption_kinds=("audio", "av"))
    done = selection.done_shards(root)
    (out_dir / layout.DATA_DIR).mkdir(parents=True, exist_ok=True)
    for data_file in done:
        names = pq.read_schema(data_file).names
        kept = [n for n in names if n not in schema.MEDIA_COLUMNS]
        table = pq.read_table(data_file, columns=kept)
        source = data_features(root, [data_file])
        features = datasets.Features(
            {n: (source[n] if source and n in source else reference[n]) for n in kept}
        )
        table = table.cast(features.arrow_schema)
        target = out_dir / layout.DATA_DIR / data_file.name
        temporary = target.with_name(f"{target.name}.tmp")
        pq.write_table(table, temporary)
        temporary.replace(target)
        index = layout.data_file_index(data_file.name)
        for side in (layout.failures_path(root, index), layout.stats_path(root, index)):
            if side.is_file():
                destination = out_dir / side.relative_to(root)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(side, destination)
    for name in (layout.MANIFEST_FILE, layout.SUBSETS_FILE):
        if (root / name).is_file():
            shutil.copy2(root / name, out_dir / name)
    write_dataset_card(out_dir)
    return out_dir


def upload_files(root: str | Path) -> list[str]:
    """Files to push (relative paths): the finished shards with their failures and stats, and the
    card's side files. Unfinished shards stay local: the card does not list them."""
    root = Path(root)
    paths = [name for name in SIDE_FILES if name != layout.CARD_FILE and (root / name).is_file()]
    for data_file in selection.done_shards(root, warn=False):
        index = layout.data_file_index(data_file.name)
        for path in (data_file, layout.failures_path(root, index), layout.stats_path(root, index)):
            if path.is_file():
                paths.append(path.relative_to(root).as_posix())
    return paths


# Remote folders this module owns: files there that are not part of the new upload are deleted, so a
# stale shard (e.g. from a previous full upload) is never picked up by the card's ``layout.DATA_GLOB``.
MANAGED_FOLDERS = layout.SHARD_FOLDERS


def _remote_card(api, repo_id: str, revision: str | None, remote: list[str]) -> str | None:
    """The card already in the repo (it is updated in place, keeping what was edited on the Hub), else None."""
    if layout.CARD_FILE not in remote:
        return None
    path = api.hf_hub_download(repo_id, layout.CARD_FILE, repo_type="dataset", revision=revision)
    return Path(path).read_text(encoding="utf-8")


def _side_files_in(root: Path, folder: Path, outbox: Path, card: str) -> dict[str, Path]:
    """The card and the public manifest (:func:`avt_triplets.public.public_manifest`) as files in ``outbox``: what
    is uploaded in place of the local ones."""
    written = {layout.CARD_FILE: outbox / layout.CARD_FILE}
    written[layout.CARD_FILE].write_text(card, encoding="utf-8")
    if (folder / layout.MANIFEST_FILE).is_file():
        written[layout.MANIFEST_FILE] = outbox / layout.MANIFEST_FILE
        manifest = public_manifest(read_manifest(root))
        written[layout.MANIFEST_FILE].write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return written


def _refuse_private_files(root: Path, uploads: dict[str, Path]) -> None:
    """One line listing the files that still hold the machine's home or the input root; nothing is pushed."""
    roots = private_roots(read_manifest(root))
    found = [name for name, path in uploads.items() if files_holding(path.parent, [path.name], roots)]
    if found:
        raise UsageError(
            f"refusing to publish {len(found)} file(s) that contain a local path ({' or '.join(roots)}): "
            f"{', '.join(found)}; nothing was pushed (generate with paths inside the input root, without "
            "--allow-absolute-paths, or remove the paths from these files)"
        )


def publish(
    root: str | Path,
    repo_id: str,
    metadata_only: bool = False,
    private: bool = False,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    license: CardLicense | None = None,
) -> str:
    """Push a generation output (data, card, histogram, subsets) to a Hub dataset repo; returns its URL.

    One commit holds the whole upload, so readers never see a card that disagrees with the shards.
    ``load_dataset(repo_id)`` and ``load_dataset(repo_id, "top30")`` read it back. With
    ``metadata_only`` the media columns are dropped first (see :func:`export_metadata_only`). The
    local card is refreshed too (``license`` set in both); the pushed card names ``repo_id`` in its how-to-load
    snippet and updates the repo's card in place when it has one. No file holding a local path is pushed.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    root = Path(root)
    api = HfApi(token=token)
    with _hub_errors(api.endpoint, "nothing was pushed and the local files are unchanged"):
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        remote = api.list_repo_files(repo_id, repo_type="dataset", revision=revision)
        existing = _remote_card(api, repo_id, revision, remote)
    local_card = write_dataset_card(root, license=license)
    with tempfile.TemporaryDirectory(prefix="avt-publish-") as tmp:
        folder = export_metadata_only(root, Path(tmp) / "metadata") if metadata_only else root
        existing = existing if existing is not None else local_card.read_text(encoding="utf-8")
        card = render_dataset_card(folder, repo_id=repo_id, license=license, existing=existing)
        (Path(tmp) / "outbox").mkdir()
        uploads = {path: folder / path for path in upload_files(folder)}
        uploads.update(_side_files_in(root, folder, Path(tmp) / "outbox", card))
        _refuse_private_files(root, uploads)
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(source))
            for path, source in uploads.items()
        ]
        operations += [
            CommitOperationDelete(path_in_repo=path)
            for path in remote
            if path.split("/", 1)[0] in MANAGED_FOLDERS and path not in uploads
        ]
        summary = f"{len(uploads) - 1} files" + (", metadata only" if metadata_only else "")
        with _hub_errors(api.endpoint, "nothing was pushed (the local card and subsets were refreshed)"):
            api.create_commit(
                repo_id=repo_id,
                repo_type="dataset",
                operations=operations,
                revision=revision,
                commit_message=commit_message or f"Upload avt triplets ({summary})",
            )
    return f"{api.endpoint}/datasets/{repo_id}"


_NETWORK_ERRORS = ("TransportError", "ConnectionError", "Timeout", "TimeoutException")


def _unreachable(error: BaseException) -> bool:
    """Connection refused, DNS failure, timeout, offline mode: whatever the HTTP client calls them."""
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(error).__mro__)


@contextlib.contextmanager
def _hub_errors(endpoint: str, consequence: str) -> Iterator[None]:
    """Turn an unreachable or refusing Hub into one :class:`UsageError` line saying what happened locally."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UsageError(f"the Hub at {endpoint} refused the upload ({first}); {consequence}") from error
    except Exception as error:
        if not _unreachable(error):
            raise
        raise UsageError(f"the Hub at {endpoint} could not be reached ({error}); {consequence}") from error
