"""Small synthetic generation outputs, written directly in the on-disk layout of schema.py.

They do not depend on the pipeline: rows, shards, stats, failures and a manifest are made here, so
the selection / card / builder / publish tests exercise exactly the contract.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
from PIL import Image

from avt_triplets import schema, selection

datasets.disable_progress_bars()


def features_with_key(with_media: bool = True) -> datasets.Features:
    """The schema's features plus ``sample_key`` (the random-subset key) when the schema lacks it."""
    features = schema.triplet_features(with_media=with_media)
    if selection.SAMPLE_KEY_COLUMN not in features:
        features[selection.SAMPLE_KEY_COLUMN] = datasets.Value("float64")
    return features


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_row(clip_id: str, score: float, seed: int, with_key: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    caption_scores = [float(score) - 0.1, float(score)]
    row = {
        "clip_id": clip_id,
        "video_path": f"{clip_id}.mp4",
        "start_s": 0.0,
        "end_s": 2.0,
        "audio": {"array": rng.standard_normal(160).astype(np.float32) * 0.1, "sampling_rate": 16_000},
        "frames": [{"bytes": _jpeg(seed), "path": None}, {"bytes": _jpeg(seed + 1), "path": None}],
        "frame_times_s": [0.0, 1.0],
        "captions": [f"a frame of {clip_id}", f"another frame of {clip_id}"],
        "caption_scores": caption_scores,
        "caption": f"another frame of {clip_id}",
        "caption_index": 1,
        "clap_score": float(score),
        "text_embedding": rng.standard_normal(4).astype(np.float32).tolist(),
        "labels": ["synthetic"],
    }
    if with_key:
        row[selection.SAMPLE_KEY_COLUMN] = selection.sample_key(clip_id)
    return row


@dataclass
class GenerationOutput:
    root: Path
    scores: dict[str, float]  # clip_id -> clap_score of every finished row
    pending_ids: set[str]  # rows of unfinished shards
    failures: dict[str, int]  # reason -> count in finished shards


def write_output(
    root: Path,
    shards: list[list[tuple[str, float]]],
    done: list[bool] | None = None,
    failures: list[list[tuple[str, str]]] | None = None,
    with_key: bool = True,
    manifest: dict | None = None,
) -> GenerationOutput:
    """Write ``shards`` (lists of (clip_id, score)) as a generation output; ``done[i]`` False leaves
    shard i without a stats file (unfinished)."""
    done = done if done is not None else [True] * len(shards)
    failures = failures if failures is not None else [[] for _ in shards]
    features = features_with_key()
    if not with_key:  # an output written before the schema had sample_key
        del features[selection.SAMPLE_KEY_COLUMN]
    scores: dict[str, float] = {}
    pending: set[str] = set()
    failure_counts: dict[str, int] = {}
    seed = 0
    for index, shard in enumerate(shards):
        rows = []
        for clip_id, score in shard:
            rows.append(make_row(clip_id, score, seed, with_key))
            seed += 2
        path = schema.data_path(root, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(rows, features=features).to_parquet(str(path))
        failed = [
            {"clip_id": c, "video_path": f"{c}.mp4", "reason": r, "detail": "synthetic"}
            for c, r in failures[index]
        ]
        fpath = schema.failures_path(root, index)
        fpath.parent.mkdir(parents=True, exist_ok=True)
        columns = {name: [f[name] for f in failed] for name in schema.FAILURE_FEATURES}
        datasets.Dataset.from_dict(columns, features=schema.FAILURE_FEATURES).to_parquet(str(fpath))
        if done[index]:
            spath = schema.stats_path(root, index)
            spath.parent.mkdir(parents=True, exist_ok=True)
            stats = {"shard": index, "num_clips": len(shard) + len(failed), "num_triplets": len(shard)}
            stats["seconds"] = {"decode": 1.5, "caption": 2.0}
            spath.write_text(json.dumps(stats))
            scores.update({c: s for c, s in shard})
            for _, reason in failures[index]:
                failure_counts[reason] = failure_counts.get(reason, 0) + 1
        else:
            pending.update(c for c, _ in shard)
    manifest = manifest if manifest is not None else default_manifest()
    (root / schema.MANIFEST_FILE).write_text(json.dumps(manifest))
    return GenerationOutput(root, scores, pending, failure_counts)


def default_manifest() -> dict:
    """Shaped like the pipeline's manifest (nested captioner / scorer records)."""
    return {
        "format": "avt-triplets/1",
        "avt_version": "0.1.0",
        "captioner": {
            "name": "tiny/blip2-test",
            "revision": "abc123",
            "prompt": "a photo of",
            "max_new_tokens": 20,
        },
        "scorer": {"name": "msclap:2023", "revision": "def456", "sampling_rate": 44100, "embed_dim": 1024},
        "fps": 1.0,
        "clip_seconds": 10.0,
        "seed": 7,
        "input": {"source": "videos/", "clips": 44, "digest": "0123abcd"},
        "package_versions": {"transformers": "5.0.0", "datasets": "5.2.0"},
    }


def top_ids(scores: dict[str, float], n: int) -> set[str]:
    """Reference top-n: score descending (as float32, like the column), clip_id ascending."""
    ranked = sorted(scores, key=lambda c: (-np.float32(scores[c]), c))
    return set(ranked[:n])


@pytest.fixture
def helpers() -> SimpleNamespace:
    """The builders above, for tests (conftest modules cannot be imported by name under importlib mode)."""
    return SimpleNamespace(
        write_output=write_output,
        make_row=make_row,
        top_ids=top_ids,
        features_with_key=features_with_key,
        default_manifest=default_manifest,
    )


@pytest.fixture
def small_output(tmp_path) -> GenerationOutput:
    """34 clips in 3 finished shards (many ties on clap_score) + 6 in an unfinished one; failures:
    2 not_media + 1 no_audio_stream in finished shards, 1 undecodable in the unfinished one."""
    rng = np.random.default_rng(0)
    ids = [f"vid/{i:03d}" for i in rng.permutation(40)]
    # Scores on a coarse grid so many clips tie on clap_score.
    values = np.round(rng.uniform(0.0, 0.5, size=40) * 20) / 20
    pairs = list(zip(ids, values.tolist()))
    shards = [pairs[0:12], pairs[12:24], pairs[24:34], pairs[34:40]]
    failures = [
        [("bad/a", "not_media")],
        [("bad/b", "no_audio_stream"), ("bad/c", "not_media")],
        [],
        [("bad/d", "undecodable")],
    ]
    return write_output(tmp_path / "out", shards, done=[True, True, True, False], failures=failures)
