"""Triplets through the ``datasets`` cache: ``load_dataset`` writes an Arrow copy of every dataset, then reads it.

Only for data that is not Parquet (``avt_data.parquet_rows`` reads Parquet in place) and for the benchmark that
compares the two (``bench/bench_train_input.py``); the copy costs disk (about twice the Parquet size) and time before
the first step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from avt_core.errors import UsageError
from avt_data.rows import TEXT_EMBEDDING_COLUMN, DatasetSpec, require_columns, require_one_text_embedding_size

logger = logging.getLogger(__name__)


def load_through_datasets_cache(
    specs: Sequence[str | DatasetSpec],
    columns: Sequence[str] | None,
    split: str = "train",
    cache_dir: str | None = None,
    optional_columns: Sequence[str] = (),
):
    """Load each dataset (folder or Hub repo id) with ``load_dataset`` and concatenate them.

    Only ``columns`` (all when None) and those of ``optional_columns`` a dataset has are kept, so datasets that
    differ in other columns still concatenate; a dataset missing a needed column (for example a metadata-only
    export without ``audio``/``frames``) is a clear error naming it.
    """
    import datasets

    parts = []
    for raw in specs:
        spec = raw if isinstance(raw, DatasetSpec) else DatasetSpec.parse(raw)
        try:
            ds = datasets.load_dataset(spec.path, spec.config, split=split, cache_dir=cache_dir)
        except FileNotFoundError as error:  # also the Hub's DatasetNotFoundError
            raise UsageError(f"dataset {spec}: {error}") from None
        require_columns(f"{spec} split {split!r}", ds.column_names, columns or ())
        if columns is not None:
            ds = ds.select_columns([*columns, *(c for c in optional_columns if c in ds.column_names)])
        ds = with_label_names(ds)
        parts.append(ds)
        logger.info("dataset %s split %s: %d clips", spec, split, len(ds))
    if not parts:
        raise UsageError("no dataset given")
    if columns is not None and TEXT_EMBEDDING_COLUMN in columns:
        require_one_text_embedding_size({len(p[0][TEXT_EMBEDDING_COLUMN]) for p in parts if len(p)})
    if len(parts) == 1:
        return parts[0]
    # Features can differ in irrelevant details (e.g. a List vs Sequence of float32): align them to the first.
    parts = [parts[0]] + [p.cast(parts[0].features) for p in parts[1:]]
    return datasets.concatenate_datasets(parts)


def with_label_names(ds):
    """``labels`` as class names when the dataset declares them ``Sequence(ClassLabel)`` (an avt output's card,
    or a dataset pushed with class labels): training and evaluation map names and ids, never another list's
    indices, onto their own classes."""
    import datasets

    feature = ds.features.get("labels")
    inner = getattr(feature, "feature", None)
    if not isinstance(inner, datasets.ClassLabel):
        return ds
    names = inner.names
    features = datasets.Features({**ds.features, "labels": datasets.List(datasets.Value("string"))})
    return ds.map(
        lambda batch: {"labels": [[names[i] for i in row or ()] for row in batch["labels"]]},
        batched=True,
        features=features,
        desc="class indices -> names",
    )
