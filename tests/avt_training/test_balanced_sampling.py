"""Official balanced sampling (``bal=bal``): the weights of ``src/gen_weight_file.py``, a seeded sampler that
shards correctly across processes, and `avt finetune --balanced-sampling` drawing rare classes far more often."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from avt_training.sampling import EpochSeededWeightedSampler, official_sample_weights


def test_official_weights_match_hand_computed_values():
    # class a: 3 clips, b: 2 clips (one via its alias "/m/b"), c: 1 clip; "zzz" is unknown and ignored.
    label_to_index = {"a": 0, "b": 1, "/m/b": 1, "c": 2, "d": 3}
    labels = [["a"], ["a", "b"], ["a", "zzz"], ["/m/b", "c"], ["zzz"], None, ["c", "c"]]
    weights = official_sample_weights(labels, label_to_index)
    # counts: a 3, b 2, c 2 ("c" twice in the last clip counts once); d 0 (unused).
    w_a, w_b, w_c = 1000 / 3.01, 1000 / 2.01, 1000 / 2.01
    expected = [w_a, w_a + w_b, w_a, w_b + w_c, 0.0, 0.0, w_c]
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    assert weights.dtype == np.float64


def test_sampler_is_seeded_per_epoch_and_draws_with_replacement():
    weights = np.array([1.0, 1.0, 1.0, 50.0, 0.0])

    def draws(seed: int, epoch: int) -> list[int]:
        sampler = EpochSeededWeightedSampler(weights, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert draws(3, 0) == draws(3, 0)  # same seed and epoch: same order (every rank, every resume)
    assert draws(3, 0) != draws(3, 1)  # a new order each epoch
    assert draws(3, 0) != draws(4, 0)
    order = draws(3, 0)
    assert len(order) == len(weights)  # num_samples = dataset size
    assert 4 not in order  # zero weight: never drawn
    big = EpochSeededWeightedSampler(weights, seed=0, num_samples=5000)
    counts = np.bincount(list(big), minlength=5)
    assert counts[3] / 5000 == pytest.approx(50 / 53, abs=0.03)
    with pytest.raises(ValueError):
        EpochSeededWeightedSampler(np.zeros(3), seed=0)


def test_accelerate_sharding_splits_one_global_draw_between_ranks():
    """Each rank builds the same sampler; accelerate's batch sharding gives rank r every world-th batch."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler

    weights = np.linspace(1.0, 5.0, 24)
    single = list(BatchSampler(EpochSeededWeightedSampler(weights, seed=7), 3, drop_last=True))
    per_rank = [
        list(
            BatchSamplerShard(
                BatchSampler(EpochSeededWeightedSampler(weights, seed=7), 3, drop_last=True),
                num_processes=2,
                process_index=rank,
            )
        )
        for rank in range(2)
    ]
    assert per_rank[0] == single[0::2] and per_rank[1] == single[1::2]


def test_cli_flag_reaches_the_config():
    from avt_training.commands.finetune import add_arguments
    from avt_training.finetune import FinetuneConfig

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--model", "m", "--dataset", "d", "--output-dir", "o"]
    assert FinetuneConfig.from_any(parser.parse_args(base)).balanced_sampling is False
    assert FinetuneConfig.from_any(parser.parse_args([*base, "--balanced-sampling"])).balanced_sampling
    assert "AudioSet-2M" in parser.format_help() and "1000/(class count + 0.01)" in parser.format_help()


def _imbalanced_triplets(tmp_path, common: int, rare: int):
    """`common` clips of class_0 and `rare` clips of class_1, rare ones first so indices 0..rare-1 are rare."""
    import datasets

    from avt_training.synthetic import make_synthetic_triplets

    source = make_synthetic_triplets(
        tmp_path / "source", num_classes=2, clips_per_class=common, seconds=1.3, frame_size=48
    )
    rows = datasets.load_dataset(str(source), split="train")
    labels = [row[0] for row in rows["labels"]]
    rare_rows = [i for i, label in enumerate(labels) if label == "class_1"][:rare]
    common_rows = [i for i, label in enumerate(labels) if label == "class_0"]
    target = tmp_path / "imbalanced"
    (target / "data").mkdir(parents=True)
    rows.select(rare_rows + common_rows).to_parquet(str(target / "data" / "shard-00000.parquet"))
    return target


def test_finetune_balanced_sampling_oversamples_rare_class(
    tmp_path, monkeypatch, fast_tiny_model, single_thread
):
    import avt_data.block_sampler
    from avt_training.finetune import FinetuneConfig, finetune

    common, rare = 15, 1
    data = _imbalanced_triplets(tmp_path, common=common, rare=rare)
    drawn: list[list[int]] = []

    # The dataset is read in place, so the weighted draws come from the block-shuffled sampler.
    class RecordingSampler(avt_data.block_sampler.BlockShuffleSampler):
        def __iter__(self):
            keys = list(super().__iter__())
            drawn.append([key[0] for key in keys])
            yield from keys

    monkeypatch.setattr(avt_data.block_sampler, "BlockShuffleSampler", RecordingSampler)
    config = FinetuneConfig(
        model_name_or_path=str(fast_tiny_model),
        datasets=[str(data)],
        eval_split=None,
        output_dir=str(tmp_path / "ft"),
        per_device_batch_size=4,
        num_epochs=3,
        num_workers=0,
        save_strategy="no",
        report_to=["none"],
        multi_frame_eval=False,
        balanced_sampling=True,
    )
    finetune(config)

    assert len(drawn) == 3 and all(len(order) == common + rare for order in drawn)
    assert len({tuple(order) for order in drawn}) == 3  # reshuffled every epoch
    indices = np.concatenate(drawn)
    rare_share = float(np.mean(indices < rare))
    # Class-balanced: about half the draws are the rare clip (1/16 of the data); binomial sd over 48 draws ~0.07.
    print("rare-class share of draws:", rare_share, "frequency in the data:", rare / (common + rare))
    assert rare_share > 0.3
    assert rare_share > 4 * rare / (common + rare)
