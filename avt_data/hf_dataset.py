"""``load_dataset``: a generation output as a ``datasets.Dataset``, wherever it is stored.

A local folder or a Hub repository is what ``datasets.load_dataset(PATH, config)`` reads by itself (the card's YAML
configs). For a folder at a URL (``s3://``, ``gs://``, ...) ``datasets`` 5 does not look for a card, so the config
is resolved the way the in-place reader resolves it (:func:`avt_data.parquet_index.resolve_source`: the card's data
files and Parquet row filter) and handed to datasets' own Parquet builder with the ``storage_options``: the same
rows and features (Audio, Image, ``labels`` as ``ClassLabel`` when a class list is recorded) as ``load_dataset``
gives for a local copy. Training and evaluation read outputs in place instead (:mod:`avt_data.parquet_rows`); this
is for users who want a ``datasets.Dataset``.
"""

from __future__ import annotations

import os
from typing import Any

from avt_data.parquet_index import is_url, resolve_source
from avt_data.rows import DatasetSpec


def load_dataset(
    location: str | os.PathLike,
    config: str | None = None,
    split: str = "train",
    storage_options: dict[str, Any] | None = None,
    **kwargs: Any,
):
    """The rows of config ``config`` (None: the card's default) of the output at ``location``."""
    import datasets

    if not is_url(str(location)):
        return datasets.load_dataset(str(location), config, split=split, **kwargs)
    source = resolve_source(DatasetSpec(path=str(location), config=config), split, storage_options)
    if source.filters:
        kwargs["filters"] = source.filters
    if "features" not in kwargs:  # what the card declares (labels as ClassLabel of the recorded class list)
        from avt_core import storage
        from avt_triplets import dataset_card

        root = storage.as_path(str(location), storage_options)
        kwargs["features"] = dataset_card.declared_features(
            root, [storage.as_path(f, storage_options) for f in source.files[:1]]
        )
    options = dict(storage_options or {})  # datasets adds its own keys to the dict it is given
    return datasets.load_dataset(
        "parquet", data_files={split: source.files}, split=split, storage_options=options, **kwargs
    )


__all__ = ["load_dataset"]
