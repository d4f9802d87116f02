"""A dataset whose `labels` are `Sequence(ClassLabel)` (a Hub dataset pushed with class labels, stored as JSON
here, so it goes through the `datasets` cache) reaches training and evaluation as class names: they map names and
ids onto their own class list, never another list's indices."""

from __future__ import annotations

import json

import datasets
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

from avt_data.parquet_rows import load_triplets

NAMES = ["Speech", "Dog", "Music"]


def test_class_label_indices_are_read_as_their_names(tmp_path):
    (tmp_path / "data").mkdir()
    rows = [{"clip_id": "a", "labels": [2, 0]}, {"clip_id": "b", "labels": [1]}]
    (tmp_path / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    features = datasets.Features(
        {"clip_id": datasets.Value("string"), "labels": datasets.List(datasets.ClassLabel(names=NAMES))}
    )
    card = DatasetCardData()
    DatasetInfosDict({"default": datasets.DatasetInfo(features=features)}).to_dataset_card_data(card)
    DatasetCard(f"---\n{card.to_yaml()}\n---\n").save(tmp_path / "README.md")
    assert datasets.load_dataset(str(tmp_path), split="train")["labels"] == [[2, 0], [1]]  # what users get

    loaded = load_triplets([str(tmp_path)], columns=["clip_id", "labels"], cache_dir=str(tmp_path / "cache"))
    assert loaded["labels"] == [["Music", "Speech"], ["Dog"]]
