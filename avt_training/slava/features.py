"""Fill and read the feature cache of one triplet dataset (see `avt_training/slava/cache.py` for the layout)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avt_core.errors import UsageError
from avt_data.captions import caption_sources, describe_sources
from avt_data.slava_clips import iterate_tower_features
from avt_training.slava.cache import (
    FeatureTable,
    assemble,
    dataset_key,
    read_parts,
    row_digests,
    short_hash,
    towers_identity,
    write_part,
)

logger = logging.getLogger(__name__)


@dataclass
class ExtractionOptions:
    batch_size: int = 32
    num_workers: int = 0
    part_size: int = 1024  # clips per Parquet part: what a killed run can lose at most, per process
    progress: bool = True


class FeatureCache:
    """The cache folder of one set of towers; `features(...)` reuses or extracts one dataset's rows."""

    def __init__(self, root: str | Path, model_config, rank: int = 0, world: int = 1):
        self.identity = towers_identity(model_config)
        self.directory = Path(root) / short_hash(self.identity)
        self.rank, self.world = rank, world
        if rank == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
            (self.directory / "towers.json").write_text(json.dumps(self.identity, indent=2))

    def features(
        self, model, processor, hf_dataset, path: str, split: str, device, options: ExtractionOptions, barrier
    ) -> FeatureTable:
        """Features of every row of `hf_dataset` in order; missing or stale rows are extracted (this process takes
        every `world`-th of them) and written as parts, then `barrier()` waits for the other processes."""
        if "clip_id" not in hf_dataset.column_names:
            raise UsageError(f"dataset {path} has no clip_id column: the feature cache is keyed by it")
        clip_ids = [str(c) for c in hf_dataset["clip_id"]]
        if len(set(clip_ids)) != len(clip_ids):
            raise UsageError(f"dataset {path} has duplicate clip ids; clip_id must be unique")
        sources = caption_sources(hf_dataset.column_names)
        directory = self.directory / dataset_key(path, split)
        digests = row_digests(hf_dataset, sources)
        cached = read_parts(directory)
        missing = [
            i for i, (c, d) in enumerate(zip(clip_ids, digests)) if cached.get(c, {}).get("digest") != d
        ]
        started = time.perf_counter()
        mine = missing[self.rank :: self.world]
        if mine:
            logger.info(
                "%s: extracting tower features of %d clips (%d cached)", path, len(missing), len(cached)
            )
            self._extract(model, processor, hf_dataset, mine, digests, sources, directory, device, options)
        barrier()
        rows = read_parts(directory) if missing else cached
        table = assemble(clip_ids, rows)
        failed = [(c, e) for c, e in zip(table.clip_ids, table.errors) if e is not None]
        table.stats = {
            "dataset": path,
            "split": split,
            "clips": len(clip_ids),
            "reused": len(clip_ids) - len(missing),
            "extracted": len(missing),
            "failed": len(failed),
            "failed_examples": failed[:5],
            "extraction_seconds": round(time.perf_counter() - started, 3),
            "captions": describe_sources(sources),
            "directory": str(directory),
        }
        if failed:
            logger.warning("%s: %d clip(s) without features, e.g. %s", path, len(failed), failed[0])
        return table

    def _extract(
        self, model, processor, hf_dataset, indices, digests, sources, directory, device, options
    ) -> None:
        records: list[dict[str, Any]] = []
        for record in iterate_tower_features(
            model,
            processor,
            hf_dataset,
            indices,
            sources,
            batch_size=options.batch_size,
            num_workers=options.num_workers,
            device=device,
            progress=options.progress and self.rank == 0,
        ):
            record["digest"] = digests[record["index"]]
            records.append(record)
            if len(records) >= options.part_size:
                write_part(directory, records)
                records = []
        if records:
            write_part(directory, records)


__all__ = ["ExtractionOptions", "FeatureCache"]
