"""Dataset card, load_dataset over every config, and the metadata-only export (avt_triplets.publish)."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
from huggingface_hub import DatasetCard
from PIL import Image

from avt_triplets import dataset_card, layout, publish, schema, selection

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")

CONFIGS = ["all", "top10", "top30", "top50", "random10", "random30", "random50"]


def reference_random(scores: dict[str, float], k: float, seed: int) -> set[str]:
    """Brute force: the n clips following the seed's start point in circular sample_key order."""
    n = selection.subset_size(k, len(scores))
    start = selection.seed_offset(seed)
    keyed = sorted((selection.sample_key(c) < start, selection.sample_key(c), c) for c in scores)
    return {c for _, _, c in keyed[:n]}


def expected_ids(helpers, scores: dict[str, float], config: str, seed: int) -> set[str]:
    if config == "all":
        return set(scores)
    k = float(config.removeprefix("top").removeprefix("random"))
    if config.startswith("top"):
        return helpers.top_ids(scores, selection.subset_size(k, len(scores)))
    return reference_random(scores, k, seed)


def test_card_records_provenance_failures_and_histogram(small_output):
    path = dataset_card.write_dataset_card(small_output.root)
    assert path == small_output.root / layout.CARD_FILE
    text = path.read_text()
    for needle in ("tiny/blip2-test", "abc123", "msclap:2023", "def456", "a photo of", "transformers==5.0.0"):
        assert needle in text
    assert "| frames per second | 1 |" in text
    assert "| clip length (s) | 10 |" in text
    assert "| seed | `7` |" in text
    assert "| avt version | `0.1.0` |" in text
    assert "| triplets (rows) | 34 |" in text
    assert "| failures | 3 |" in text  # the unfinished shard's failure is not counted
    assert "| `not_media` | 2 |" in text
    assert "| `no_audio_stream` | 1 |" in text
    assert "undecodable" not in text
    assert "| unfinished shards (not included) | 1 |" in text
    assert "| `seconds.decode` | 4.5 |" in text  # summed over the 3 finished shards' stats
    assert f"]({layout.HISTOGRAM_FILE})" in text
    with Image.open(small_output.root / layout.HISTOGRAM_FILE) as image:
        assert image.format == "PNG" and image.width > 100
    card = DatasetCard.load(path)
    names = [c["config_name"] for c in card.data["configs"]]
    assert names == CONFIGS
    assert card.data["configs"][0]["default"] is True
    assert card.data["license"]
    # Subset sizes in the table are the exact ones.
    assert "| `top30` | top | 30 | 10 |" in text and "| `random30` | random | 30 | 10 | seed 7 |" in text


def test_every_config_loads_the_right_rows(small_output, helpers, tmp_path):
    dataset_card.write_dataset_card(small_output.root)
    for config in CONFIGS:
        ds = datasets.load_dataset(
            str(small_output.root), config, split="train", cache_dir=str(tmp_path / "c")
        )
        ids = ds["clip_id"]
        assert len(ids) == len(set(ids))
        assert set(ids) == expected_ids(helpers, small_output.scores, config, seed=7), config
        assert not set(ids) & small_output.pending_ids
    default = datasets.load_dataset(str(small_output.root), split="train", cache_dir=str(tmp_path / "c"))
    assert set(default["clip_id"]) == set(small_output.scores)
    row = default[0]
    assert row["audio"].get_all_samples().sample_rate == 16_000
    assert isinstance(row["frames"][0], Image.Image)
    assert row["caption"] == row["captions"][row["caption_index"]]


def test_card_uses_a_glob_once_every_shard_is_done(tmp_path, helpers):
    rng = np.random.default_rng(5)
    pairs = [(f"g{i:02d}", float(s)) for i, s in enumerate(rng.uniform(0, 1, 20))]
    output = helpers.write_output(tmp_path / "out", [pairs[:10], pairs[10:]])
    card = DatasetCard.load(dataset_card.write_dataset_card(output.root))
    assert card.data["configs"][0]["data_files"][0]["path"] == "data/*.parquet"
    top50 = datasets.load_dataset(str(output.root), "top50", split="train", cache_dir=str(tmp_path / "c"))
    assert set(top50["clip_id"]) == helpers.top_ids(output.scores, 10)


def test_card_tolerates_a_missing_manifest_and_no_failures(tmp_path, helpers):
    pairs = [(f"m{i}", i / 10) for i in range(10)]
    output = helpers.write_output(tmp_path / "out", [pairs])
    (output.root / layout.MANIFEST_FILE).unlink()
    text = dataset_card.write_dataset_card(output.root).read_text()
    assert "| captioner | unknown (revision unknown) |" in text
    assert "No clip failed." in text
    subsets = json.loads((output.root / layout.SUBSETS_FILE).read_text())
    assert subsets["seed"] == 0 and subsets["total"] == 10


def test_manifest_variants_are_read():
    manifest = {
        "options": {"captioner": "Salesforce/blip2-opt-2.7b", "captioner_revision": "r1", "fps": 2},
        "scorer": "msclap:2023",
        "scorer_revision": "r2",
        "versions": {"torch": "2.14"},
        "clip_length_s": 10,
    }
    provenance = dataset_card.Provenance.from_manifest(manifest)
    assert provenance.captioner == "Salesforce/blip2-opt-2.7b" and provenance.captioner_revision == "r1"
    assert provenance.scorer == "msclap:2023" and provenance.scorer_revision == "r2"
    assert provenance.fps == 2 and provenance.clip_seconds == 10
    assert provenance.package_versions == {"torch": "2.14"}


def test_metadata_only_export_drops_media(small_output, helpers, tmp_path):
    dataset_card.write_dataset_card(small_output.root)
    exported = publish.export_metadata_only(small_output.root, tmp_path / "meta")
    ds = datasets.load_dataset(str(exported), split="train", cache_dir=str(tmp_path / "c"))
    assert "audio" not in ds.column_names and "frames" not in ds.column_names
    assert set(ds.column_names) == set(schema.triplet_features(with_media=False)) | {"sample_key"}
    assert set(ds["clip_id"]) == set(small_output.scores)
    for config in ("top30", "random30"):
        subset = datasets.load_dataset(str(exported), config, split="train", cache_dir=str(tmp_path / "c"))
        assert set(subset["clip_id"]) == expected_ids(helpers, small_output.scores, config, seed=7)
    text = (exported / layout.CARD_FILE).read_text()
    assert "metadata-only" in text and "| `not_media` | 2 |" in text
    assert not list((exported / layout.DATA_DIR).glob("shard-00003*"))  # unfinished shard not exported
    with pytest.raises(ValueError):
        publish.export_metadata_only(small_output.root, small_output.root)


def test_outputs_without_sample_key_still_get_exact_random_configs(tmp_path, helpers):
    pairs = [(f"o{i:02d}", i / 40) for i in range(40)]
    output = helpers.write_output(tmp_path / "out", [pairs[:20], pairs[20:]], with_key=False)
    dataset_card.write_dataset_card(output.root)
    sizes = {}
    for seed_config in ("random30", "random50"):
        ds = datasets.load_dataset(
            str(output.root), seed_config, split="train", cache_dir=str(tmp_path / "c")
        )
        sizes[seed_config] = len(set(ds["clip_id"]))
    assert sizes == {"random30": 12, "random50": 20}


def test_the_run_summary_and_the_card_count_the_same_finished_shards(small_output):
    """Issue 13 item 4: one sum over the finished shards (stats file present) behind both reports."""
    from avt_triplets.summary import summarize

    layout.stats_path(small_output.root, 4).write_text(
        '{"num_triplets": 0}'
    )  # stats with no data: still done
    summary = summarize(small_output.root, shards_total=5)
    text = dataset_card.write_dataset_card(small_output.root).read_text()
    assert (summary.shards_done, summary.triplets, summary.failures) == (4, 34, 3)
    assert summary.failures_by_reason == {"not_media": 2, "no_audio_stream": 1}
    assert (
        "| finished shards | 4 |" in text
        and "| triplets (rows) | 34 |" in text
        and "| failures | 3 |" in text
    )
    assert summary.seconds["decode"] == 4.5  # the stats files' stage times, summed
