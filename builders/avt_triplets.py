"""A ``datasets`` builder over an avt generation output, used in process: what a card cannot give.

What a Hub user gets is not this class: ``load_dataset("user/repo", "top30")`` (or ``load_dataset(DIR, ...)``)
reads the card's YAML ``configs`` (finished shards + the subset's Parquet row filter) with datasets' own packaged
Parquet builder, and datasets >= 4 runs no loading scripts, so a builder shipped in the repo would never run
(docs/architecture.md, "Who reads an output"). This class adds, in process: any ``top{k}`` / ``random{k}`` (and
another seed) without ``avt filter`` writing a card, over the finished shards only of an output still being
generated, with a cache that follows the shards. It is imported and driven directly::

    from builders.avt_triplets import AvtTriplets

    builder = AvtTriplets(data_dir="out/", config_name="top30")
    builder.download_and_prepare()
    top30 = builder.as_dataset("train")

It yields the same rows, in the same order, as ``load_dataset("out/", "top30")``: both read the
finished shards listed in ``subsets.json`` through the same Parquet row filter. Configs: ``all``,
``top10/30/50``, ``random10/30/50``, plus any subset recorded in ``subsets.json`` and any
``top{k}`` / ``random{k}`` name, computed on the fly (seed from ``subsets.json``, else ``seed=``).
The cache is keyed on the shards and ``subsets.json``, so regenerating the output rebuilds it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq
from datasets.builder import Key

from avt_triplets import dataset_card, layout, selection

# top30, random10, top2.5, and top30_audio_caption_score (a top-k ranked by another column: `avt filter --by`)
_SUBSET_NAME = re.compile(r"^(top|random)(\d+(?:\.\d+)?)(?:_(\w+))?$")
DEFAULT_CONFIG = dataset_card.DEFAULT_CONFIG
_VERSION = datasets.Version("1.0.0")


@dataclass
class AvtTripletsConfig(datasets.BuilderConfig):
    """``kind`` is None for every row, else ``"top"`` / ``"random"`` with percentage ``k``."""

    kind: str | None = None
    k: float | None = None
    seed: int | None = None
    by: str = selection.SCORE_COLUMN  # the column a top-k ranks by


def _config(name: str) -> AvtTripletsConfig:
    match = _SUBSET_NAME.match(name)
    if match is None or (match.group(3) and match.group(1) != "top"):
        return AvtTripletsConfig(name=name, version=_VERSION, description="every finished clip")
    kind, k, by = match.group(1), float(match.group(2)), match.group(3) or selection.SCORE_COLUMN
    what = f"best-scoring (by {by})" if kind == "top" else "randomly sampled"
    return AvtTripletsConfig(
        name=name, version=_VERSION, kind=kind, k=k, by=by, description=f"the {k:g}% {what} clips"
    )


class AvtTriplets(datasets.GeneratorBasedBuilder):
    """Audio-visual-text triplets (one row per clip) from ``avt generate``; ``data_dir`` is its output."""

    VERSION = _VERSION
    BUILDER_CONFIG_CLASS = AvtTripletsConfig
    BUILDER_CONFIGS = [_config(DEFAULT_CONFIG)] + [
        _config(selection.subset_name(kind, k)) for kind in ("top", "random") for k in (10, 30, 50)
    ]
    DEFAULT_CONFIG_NAME = DEFAULT_CONFIG

    def __init__(
        self, *args: Any, config_name: str | None = None, data_dir: str | None = None, **kwargs: Any
    ):
        if data_dir is None:
            raise ValueError("AvtTriplets needs data_dir=, the folder written by `avt generate`")
        self._root = Path(data_dir).expanduser().resolve()
        if not (self._root / layout.DATA_DIR).is_dir():
            raise FileNotFoundError(
                f"{self._root} has no {layout.DATA_DIR}/ folder; is it an avt generation output?"
            )
        self._subsets = selection.read_subsets(self._root)
        known = {c.name for c in self.BUILDER_CONFIGS}
        if config_name is not None and config_name not in known:
            # A subset outside the predefined list (from subsets.json, or e.g. "top20"): start from the
            # default config and override its fields, the way datasets applies config kwargs.
            if self._subsets is None or self._subsets.get(config_name) is None:
                if _config(config_name).kind is None:
                    raise ValueError(
                        f"Unknown config {config_name!r}: use 'all', 'top<k>', 'top<k>_<score column>' or "
                        "'random<k>' (k in percent)"
                    )
            extra = _config(config_name)
            kwargs.update(
                name=extra.name, kind=extra.kind, k=extra.k, by=extra.by, description=extra.description
            )
            config_name = None
        kwargs.setdefault("hash", self._fingerprint())
        super().__init__(*args, config_name=config_name, data_dir=str(self._root), **kwargs)

    def _fingerprint(self) -> str:
        """Changes whenever a shard or subsets.json changes, so a stale cache is never reused."""
        digest = hashlib.sha256(Path(__file__).read_bytes())
        files = sorted(self._root.glob(layout.DATA_GLOB)) + sorted(
            (self._root / layout.STATS_DIR).glob(f"*{layout.STATS_SUFFIX}")
        )
        subsets_file = self._root / layout.SUBSETS_FILE
        if subsets_file.is_file():
            files.append(subsets_file)
        for path in files:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()[:16]

    def _info(self) -> datasets.DatasetInfo:
        files = self._data_files()
        return datasets.DatasetInfo(
            description="Audio-visual-text triplets: each clip's audio, frames, per-frame captions, and the "
            "caption CLAP scores best against the audio (LG-CAV-MAE §2.3).",
            features=dataset_card.declared_features(self._root, files),
        )

    # -- which files and rows ---------------------------------------------------------------

    def _data_files(self) -> list[Path]:
        """The shards the card's configs cover: those of subsets.json, else the finished ones now."""
        if self._subsets is not None and self._subsets.data_files:
            return [self._root / f for f in self._subsets.data_files]
        return selection.done_shards(self._root)

    def _filters(self) -> selection.Filters | None:
        config: AvtTripletsConfig = self.config
        if config.kind is None:
            return None
        if self._subsets is not None:
            recorded = self._subsets.get(config.name)
            if recorded is not None and (config.seed is None or recorded.seed in (None, config.seed)):
                return recorded.filters
        scores = selection.read_scores(self._root, self._data_files(), score_columns=(config.by,))
        if config.kind == "top":
            return selection.select_top(scores, config.k, config.by).filters
        seed = config.seed if config.seed is not None else (self._subsets.seed if self._subsets else 0)
        return selection.select_random(scores, config.k, seed).filters

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        files = [str(f) for f in self._data_files()]
        return [
            datasets.SplitGenerator(
                name=datasets.Split.TRAIN, gen_kwargs={"files": files, "filters": self._filters()}
            )
        ]

    def _generate_examples(self, files: list[str], filters: selection.Filters | None):
        expression = pq.filters_to_expression(filters) if filters else None
        for file_index, path in enumerate(files):
            row_index = 0
            for batch in pa_ds.dataset(path, format="parquet").to_batches(filter=expression):
                for row in batch.to_pylist():
                    yield Key(file_index, row_index), row
                    row_index += 1
