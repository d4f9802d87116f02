"""``load_triplets``: ``datasets.load_dataset`` for a generation output wherever it is.

A local folder is what ``datasets.load_dataset(DIR, config)`` reads by itself (its card's YAML configs). For a URL
(``s3://``, ``gs://``, ...) ``datasets`` 5 does not look for a card, so this reads the card's config (data files and
Parquet row filter) and hands it to datasets' own Parquet builder with the ``storage_options``: the same rows, the
same features (Audio, Image), read in place from the store.
"""

from __future__ import annotations

import os
from typing import Any

from avt_triplets import schema, storage
from avt_triplets.errors import UsageError


def card_config(root: Any, config: str | None) -> dict[str, Any]:
    """The card's YAML entry for ``config`` (None: the default one)."""
    from huggingface_hub import DatasetCard

    card_file = root / schema.CARD_FILE
    if not card_file.is_file():
        raise UsageError(f"{root} has no dataset card ({schema.CARD_FILE}); run `avt filter {root}` first")
    configs = DatasetCard(card_file.read_text(encoding="utf-8")).data.get("configs") or []
    for entry in configs:
        if entry["config_name"] == config or (config is None and entry.get("default")):
            return entry
    names = ", ".join(entry["config_name"] for entry in configs)
    raise UsageError(f"{root} has no config {config!r}; its configs: {names}")


def load_triplets(
    location: str | os.PathLike,
    config: str | None = None,
    split: str = "train",
    storage_options: dict[str, Any] | None = None,
    **kwargs: Any,
):
    """The rows of config ``config`` of the generation output at ``location`` (a folder or a URL)."""
    import datasets

    if not storage.is_url(location):
        return datasets.load_dataset(str(location), config, split=split, **kwargs)
    root = storage.as_path(location, storage_options)
    entry = card_config(root, config)
    base = str(root).rstrip("/")
    data_files = {}
    for spec in entry["data_files"]:
        paths = spec["path"] if isinstance(spec["path"], list) else [spec["path"]]
        data_files[spec["split"]] = [f"{base}/{path}" for path in paths]
    if entry.get("filters"):
        kwargs["filters"] = entry["filters"]
    options = dict(storage_options or {})  # datasets adds its own keys to the dict it is given
    return datasets.load_dataset(
        "parquet", data_files=data_files, split=split, storage_options=options, **kwargs
    )


__all__ = ["card_config", "load_triplets"]
