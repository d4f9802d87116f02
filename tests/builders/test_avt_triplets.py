"""The in-process AvtTriplets builder gives the same rows as load_dataset(DIR, config)."""

from __future__ import annotations

import datasets
import pytest

from avt import cli
from avt_triplets import publish, selection
from builders.avt_triplets import AvtTriplets

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")


def build(root, config, cache_dir, **kwargs) -> datasets.Dataset:
    builder = AvtTriplets(data_dir=str(root), config_name=config, cache_dir=str(cache_dir), **kwargs)
    builder.download_and_prepare()
    return builder.as_dataset("train")


def test_builder_matches_load_dataset_for_every_config(small_output, tmp_path):
    publish.write_dataset_card(small_output.root)
    for config in ("all", "top10", "top30", "top50", "random10", "random30", "random50"):
        built = build(small_output.root, config, tmp_path / "b")
        loaded = datasets.load_dataset(
            str(small_output.root), config, split="train", cache_dir=str(tmp_path / "l")
        )
        assert built["clip_id"] == loaded["clip_id"], config
        assert built["clap_score"] == loaded["clap_score"]
        assert built.features == loaded.features
    row = built[0]
    assert row["audio"].get_all_samples().sample_rate == 16_000
    assert len(row["frames"]) == 2


def test_builder_default_config_and_unlisted_subsets(small_output, helpers, tmp_path):
    everything = build(small_output.root, None, tmp_path / "b")
    assert set(everything["clip_id"]) == set(small_output.scores)  # unfinished shard left out
    top20 = build(small_output.root, "top20", tmp_path / "b")  # not in BUILDER_CONFIGS nor subsets.json
    assert set(top20["clip_id"]) == helpers.top_ids(small_output.scores, selection.subset_size(20, 34))
    with pytest.raises(ValueError, match="Unknown config"):
        AvtTriplets(data_dir=str(small_output.root), config_name="best", cache_dir=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="data_dir"):
        AvtTriplets(config_name="all")


def test_builder_follows_avt_filter_and_rebuilds_its_cache(small_output, tmp_path):
    assert cli.main(["filter", str(small_output.root), "--top", "30", "--random", "30", "--seed", "1"]) == 0
    first = build(small_output.root, "random30", tmp_path / "b")
    assert cli.main(["filter", str(small_output.root), "--top", "30", "--random", "30", "--seed", "2"]) == 0
    second = build(small_output.root, "random30", tmp_path / "b")
    loaded = datasets.load_dataset(
        str(small_output.root), "random30", split="train", cache_dir=str(tmp_path / "l")
    )
    assert second["clip_id"] == loaded["clip_id"]
    assert set(first["clip_id"]) != set(second["clip_id"])
    assert len(first) == len(second) == 10
