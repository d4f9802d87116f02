"""The in-process AvtTriplets builder gives the same rows as load_dataset(DIR, config)."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from avt import cli
from avt_triplets import dataset_card, publish, selection
from builders.avt_triplets import AvtTriplets

pytestmark = pytest.mark.filterwarnings("ignore:.*unfinished:UserWarning")


def build(root, config, cache_dir, **kwargs) -> datasets.Dataset:
    builder = AvtTriplets(data_dir=str(root), config_name=config, cache_dir=str(cache_dir), **kwargs)
    builder.download_and_prepare()
    return builder.as_dataset("train")


def test_builder_matches_load_dataset_for_every_config(small_output, tmp_path):
    dataset_card.write_dataset_card(small_output.root)
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


def test_builder_reads_top_k_configs_ranked_by_another_column(helpers, tmp_path):
    """`avt filter --by audio_caption_score` configs (top{k}_{column}) are that column's top-k in the builder too,
    recorded or not (top50_... is computed from the name)."""
    from support.fixtures.dataset import audio_caption_score

    pairs = [(f"clip{i:02d}", round(0.05 * i, 2)) for i in range(10)]
    output = helpers.write_output(tmp_path / "out", [pairs], audio_captions=True)
    assert cli.main(["filter", str(output.root), "--by", "audio_caption_score", "--top", "30"]) == 0
    audio_scores = {c: audio_caption_score(s) for c, s in output.scores.items()}
    recorded = build(output.root, "top30_audio_caption_score", tmp_path / "b")
    loaded = datasets.load_dataset(
        str(output.root), "top30_audio_caption_score", split="train", cache_dir=str(tmp_path / "l")
    )
    assert recorded["clip_id"] == loaded["clip_id"] and set(recorded["clip_id"]) == {
        "clip00",
        "clip01",
        "clip02",
    }
    computed = build(output.root, "top50_audio_caption_score", tmp_path / "b")
    assert set(computed["clip_id"]) == helpers.top_ids(audio_scores, 5)
    with pytest.raises(ValueError, match="Unknown config"):
        AvtTriplets(data_dir=str(output.root), config_name="random30_sample", cache_dir=str(tmp_path / "b"))


def test_hub_users_get_the_packaged_parquet_builder_through_the_card(small_output):
    """The card's loading path needs no avt code: datasets' own Parquet builder with the card's row filter over
    the finished shards; nothing of builders/ is uploaded (datasets >= 4 would not run it)."""
    dataset_card.write_dataset_card(small_output.root)
    builder = datasets.load_dataset_builder(str(small_output.root), "top30")
    assert type(builder).__module__ == "datasets.packaged_modules.parquet.parquet"
    assert builder.config.filters == selection.read_subsets(small_output.root).get("top30").filters
    files = sorted(Path(f).name for f in builder.config.data_files["train"])
    assert files == [p.name for p in selection.done_shards(small_output.root)]
    assert not [f for f in publish.upload_files(small_output.root) if f.endswith(".py")]


def test_builder_adds_what_the_card_cannot_give(small_output, helpers, tmp_path):
    """What builders/ is for: a subset no card lists (here without any card) computed in process, with a seed."""
    with pytest.raises(ValueError, match="top20"):
        datasets.load_dataset(str(small_output.root), "top20", split="train", cache_dir=str(tmp_path / "l"))
    top20 = build(small_output.root, "top20", tmp_path / "b")
    assert set(top20["clip_id"]) == helpers.top_ids(small_output.scores, selection.subset_size(20, 34))
    one, two = (build(small_output.root, "random20", tmp_path / "b", seed=s)["clip_id"] for s in (1, 2))
    assert len(one) == len(two) == selection.subset_size(20, 34) and set(one) != set(two)
