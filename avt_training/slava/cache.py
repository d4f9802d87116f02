"""Per-clip frozen-tower feature cache: Parquet parts beside the run, reused across runs and variants.

Layout (default `OUTPUT_DIR/feature_cache/`)::

    CACHE/<towers key>/towers.json                 which towers (Hub id@commit or content digest of a folder)
    CACHE/<towers key>/<dataset key>/part-*.parquet rows: clip_id, digest, error, audio, visual, text_{av,audio,visual}

The towers key hashes every tower's identity (Hub commit, or the SHA-256 of a local folder's files), the audio
backend and the extraction rule, so a changed tower (new weights, new commit, another processor) reads and writes
another folder: old features are never mixed in. The dataset key is the dataset's resolved path (or Hub id) and
split; subset configs (top30, ...) are views over the same rows and share it. Inside, a row is reused when its
clip id and its digest (source window, frame count and captions) match; anything else is extracted again. Parts are
written atomically (temporary name, then rename) as extraction goes, by every process for its share of the missing
clips, so a killed run keeps what it finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avt_core.errors import UsageError
from avt_data.captions import CAPTION_KINDS, present_caption_columns, row_captions

logger = logging.getLogger(__name__)

FEATURE_FORMAT_VERSION = 1  # bump when the extraction rule changes (frames, windows, pooling)
EXTRACTION_RULE = (
    "all frames averaged; audio windows of the tower length, hop 1/2, averaged; CLIP/CLAP pooled"
)
_SKIPPED_WEIGHTS = {".h5", ".msgpack", ".ckpt", ".onnx", ".ot", ".tflite"}


# -- keys ------------------------------------------------------------------------------------------------------------


def _hash_file(path: Path, digest) -> None:
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def local_digest(path: Path) -> str:
    """SHA-256 over the files a loader reads from a tower folder (or a weights file and its side config)."""
    digest = hashlib.sha256()
    if path.is_file():
        files = [path] + [p for p in (path.parent / "msclap_config.yml",) if p.is_file()]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix not in _SKIPPED_WEIGHTS)
        if any(p.name.endswith(".safetensors") for p in files):
            files = [p for p in files if p.suffix != ".bin"]
    for file in files:
        digest.update(str(file.relative_to(path.parent if path.is_file() else path)).encode())
        _hash_file(file, digest)
    return digest.hexdigest()


def tower_fingerprint(name_or_path: str | None, revision: str | None) -> str:
    """`sha256:<digest>` of a local folder or file, `<hub id>@<commit>` of a Hub tower."""
    if name_or_path is None:
        return "default"
    if os.path.exists(name_or_path):
        return f"sha256:{local_digest(Path(name_or_path))}"
    return f"{name_or_path}@{revision or 'unresolved'}"


def towers_identity(config) -> dict[str, Any]:
    """What the towers key hashes (also written to `towers.json` for people reading the cache)."""
    references = config.tower_references()
    return {
        "format": FEATURE_FORMAT_VERSION,
        "rule": EXTRACTION_RULE,
        "audio_backend": config.audio_backend,
        "towers": {name: {"name_or_path": ref, "revision": rev} for name, (ref, rev) in references.items()},
        "fingerprints": {name: tower_fingerprint(ref, rev) for name, (ref, rev) in references.items()},
    }


def short_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def dataset_key(path: str, split: str) -> str:
    """Folder name of one dataset's rows: readable stem plus a hash of the resolved path (or Hub id) and split."""
    resolved = str(Path(path).resolve()) if os.path.exists(path) else path
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(path.rstrip("/\\")).name)[:40]
    return f"{stem or 'dataset'}-{split}-{short_hash([resolved, split])}"


def row_digests(hf_dataset, sources: dict[str, Any]) -> list[str]:
    """One digest per row from its source window, frame count and captions (media bytes are not read)."""
    from avt_data.rows import frame_counts

    names = set(hf_dataset.column_names)
    meta_columns = [c for c in ("video_path", "start_s", "end_s") if c in names]
    table = hf_dataset.select_columns(meta_columns + present_caption_columns(names)).to_dict()
    counts = frame_counts(hf_dataset) if "frames" in names else [0] * len(hf_dataset)
    digests = []
    for i in range(len(hf_dataset)):
        row = {c: table[c][i] for c in table}
        meta = [row.get(c) for c in meta_columns]
        digests.append(short_hash([meta, counts[i], row_captions(row, sources)]))
    return digests


# -- parts -----------------------------------------------------------------------------------------------------------


@dataclass
class FeatureTable:
    """Frozen-tower features of one dataset in row order; rows that failed have `error` set and zero features.

    Shapes: N rows, Da / Dv / Dt the audio / vision / text towers' pooled widths, T captions of one kind in all.

    Args:
        clip_ids (list of N str): the rows' clip ids.
        errors (list of N str or None): why a row has no features, None for a good row.
        audio (`[N, Da]`, float32): the audio tower's window-mean features.
        visual (`[N, Dv]`, float32): the vision tower's frame-mean features.
        texts (caption kind -> (`[T, Dt]` float32, `[N + 1]` int64)): every caption's text-tower features, flat, and
            the offsets that give row `i` the captions `flat[offsets[i]:offsets[i + 1]]`.
        stats (dict): what extraction reports for the run summary (dataset, split, clips, reused, failed, ...).
    """

    clip_ids: list[str]
    errors: list[str | None]
    audio: np.ndarray
    visual: np.ndarray
    texts: dict[str, tuple[np.ndarray, np.ndarray]]
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.clip_ids)

    def good_rows(self) -> np.ndarray:
        return np.asarray([i for i, e in enumerate(self.errors) if e is None], dtype=np.int64)

    def first_texts(self, kind: str) -> np.ndarray:
        """The first caption of `kind` of every row (rows without one get zeros)."""
        flat, offsets = self.texts[kind]
        out = np.zeros((len(self), flat.shape[1] if flat.ndim == 2 else 0), dtype=np.float32)
        has = offsets[1:] > offsets[:-1]
        out[has] = flat[offsets[:-1][has]]
        return out


def _records_to_table(records: list[dict[str, Any]]):
    import pyarrow as pa

    def vectors(key: str):
        return [None if r.get(key) is None else np.asarray(r[key], np.float32).tolist() for r in records]

    columns = {
        "clip_id": pa.array([r["clip_id"] for r in records], pa.string()),
        "digest": pa.array([r["digest"] for r in records], pa.string()),
        "error": pa.array([r["error"] for r in records], pa.string()),
        "audio": pa.array(vectors("audio"), pa.list_(pa.float32())),
        "visual": pa.array(vectors("visual"), pa.list_(pa.float32())),
    }
    for kind in CAPTION_KINDS:
        texts = [None if r.get("texts") is None else np.asarray(r["texts"][kind]).tolist() for r in records]
        columns[f"text_{kind}"] = pa.array(texts, pa.list_(pa.list_(pa.float32())))
    return pa.table(columns)


def write_part(directory: Path, records: list[dict[str, Any]]) -> Path:
    """Write one part atomically under a unique name (several processes write into one folder)."""
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"part-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(_records_to_table(records), tmp)
    os.replace(tmp, path)
    return path


def read_parts(directory: Path) -> dict[str, dict[str, Any]]:
    """`clip_id -> {digest, error, audio, visual, texts}` from every finished part (later parts win)."""
    import pyarrow.parquet as pq

    rows: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return rows
    for path in sorted(directory.glob("part-*.parquet")):
        table = pq.read_table(path).to_pydict()
        for i, clip_id in enumerate(table["clip_id"]):
            rows[clip_id] = {
                "digest": table["digest"][i],
                "error": table["error"][i],
                "audio": table["audio"][i],
                "visual": table["visual"][i],
                "texts": {k: table[f"text_{k}"][i] for k in CAPTION_KINDS},
            }
    return rows


def assemble(clip_ids: list[str], rows: dict[str, dict[str, Any]]) -> FeatureTable:
    """Stack cached rows in dataset order into arrays."""
    good = [rows[c] for c in clip_ids if rows[c]["error"] is None]
    if not good:
        raise UsageError(
            f"no clip of {len(clip_ids)} has features (first error: {rows[clip_ids[0]]['error']})"
        )
    dims = {name: len(good[0][name]) for name in ("audio", "visual")}
    text_dim = next((len(t[0]) for r in good for t in r["texts"].values() if t), 0)
    audio = np.zeros((len(clip_ids), dims["audio"]), np.float32)
    visual = np.zeros((len(clip_ids), dims["visual"]), np.float32)
    texts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    chunks: dict[str, list[np.ndarray]] = {k: [] for k in CAPTION_KINDS}
    counts: dict[str, list[int]] = {k: [] for k in CAPTION_KINDS}
    errors: list[str | None] = []
    for i, clip_id in enumerate(clip_ids):
        row = rows[clip_id]
        errors.append(row["error"])
        if row["error"] is None:
            audio[i], visual[i] = row["audio"], row["visual"]
        for kind in CAPTION_KINDS:
            values = ((row["texts"] or {}).get(kind) or []) if row["error"] is None else []
            chunks[kind].append(np.asarray(values, np.float32).reshape(len(values), text_dim))
            counts[kind].append(len(values))
    for kind in CAPTION_KINDS:
        offsets = np.concatenate([[0], np.cumsum(counts[kind])]).astype(np.int64)
        texts[kind] = (np.concatenate(chunks[kind]), offsets)
    return FeatureTable(list(clip_ids), errors, audio, visual, texts)


__all__ = [
    "FEATURE_FORMAT_VERSION",
    "FeatureTable",
    "assemble",
    "dataset_key",
    "read_parts",
    "row_digests",
    "short_hash",
    "tower_fingerprint",
    "towers_identity",
    "write_part",
]
