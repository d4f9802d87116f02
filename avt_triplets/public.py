"""What a published generation output may say about the machine that made it: nothing.

The local ``manifest.json`` keeps the paths a resume needs (model folders, the input list, the input root). What
leaves the machine (the card, ``avt publish``'s ``manifest.json``) names a model by its Hub id and commit, or by its
folder name and the content digest of its weights, and the input by its file or folder name (clip paths are already
relative to the input root). ``avt publish`` checks every file it would upload for the machine's home and the
input root and refuses to upload any that still holds one.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from avt_triplets import layout
from avt_triplets.model_sources import looks_like_local_path

# (name key, digest key) of the models a manifest records: a local folder is named by its last part
_MODEL_NAMES = (
    ("captioner", "name", "weights_digest"),
    ("scorer", "name", "weights_digest"),
    ("scorer", "text_model", "text_model_digest"),
    ("audio_captioner", "name", "weights_digest"),
    ("visual_scorer", "name", "weights_digest"),
    ("av_captioner", "name", "weights_digest"),
    ("caption_merger", "name", "weights_digest"),
)
_SCAN_BLOCK = 1 << 20


def _folder_name(value: str) -> str:
    return PurePosixPath(value.replace("\\", "/").rstrip("/")).name or value


def public_reference(value: str) -> str:
    """A model, dataset or file argument as a published card may name it: a local path by its last part, a Hub id
    or URL as given."""
    if "://" not in value and (looks_like_local_path(value) or os.path.isabs(value)):
        return _folder_name(value)
    return value


def public_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` without local paths: local models by folder name (their digest stays beside it), the input
    list by its name, and no input root."""
    public = copy.deepcopy(manifest)
    for section, name_key, digest_key in _MODEL_NAMES:
        record = public.get(section)
        if not isinstance(record, dict) or not isinstance(record.get(name_key), str):
            continue
        name = record[name_key]
        if record.get(digest_key) or looks_like_local_path(name) or os.path.isabs(name):
            record[name_key] = _folder_name(name)
    source = public.get("input")
    if isinstance(source, dict):
        source.pop("root", None)
        if isinstance(source.get("source"), str) and "://" not in source["source"]:
            source["source"] = _folder_name(source["source"])
    return public


def input_root(manifest: dict[str, Any]) -> str | None:
    """The folder the input's clip paths are relative to: recorded, else the list's folder or the input folder
    (manifests written before the root was recorded)."""
    source = manifest.get("input") if isinstance(manifest.get("input"), dict) else {}
    if source.get("root"):
        return str(source["root"])
    given = source.get("source")
    if not isinstance(given, str) or "://" in given or not os.path.isabs(given):
        return None
    return str(Path(given).parent) if Path(given).suffix else given


def private_roots(manifest: dict[str, Any]) -> list[str]:
    """The strings no published file may contain: the home folder and the input root (when they say something)."""
    roots = [str(Path.home()), input_root(manifest) or ""]
    return sorted({r.rstrip("/") for r in roots if len(r.rstrip("/")) > 1})


def _text_holds(path: Path, needles: list[bytes]) -> bool:
    """A raw scan in blocks (a needle across a block boundary is found too)."""
    overlap = max(len(n) for n in needles) - 1
    tail = b""
    with open(path, "rb") as handle:
        while block := handle.read(_SCAN_BLOCK):
            window = tail + block
            if any(n in window for n in needles):
                return True
            tail = window[-overlap:] if overlap else b""
    return False


def _parquet_holds(path: Path, needles: list[str]) -> bool:
    """Parquet pages are compressed: the schema metadata and the string columns are read and searched instead
    (the media columns are binary and skipped)."""
    parquet = pq.ParquetFile(path)
    metadata = parquet.schema_arrow.metadata or {}
    if any(n.encode() in value for value in metadata.values() for n in needles):
        return True
    columns = [
        f.name for f in parquet.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    for batch in parquet.iter_batches(columns=columns) if columns else ():
        for column in batch.columns:
            if any(n in (value or "") for value in column.to_pylist() for n in needles):
                return True
    return False


def files_holding(folder: Path, files: Iterable[str], roots: list[str]) -> list[str]:
    """The files of ``files`` (relative to ``folder``) that contain one of ``roots``."""
    if not roots:
        return []
    found = []
    for name in files:
        path = folder / name
        holds = (
            _parquet_holds(path, roots)
            if layout.is_parquet(name)
            else _text_holds(path, [r.encode() for r in roots])
        )
        if holds:
            found.append(name)
    return found


__all__ = ["files_holding", "input_root", "private_roots", "public_manifest", "public_reference"]
