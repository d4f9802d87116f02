"""Training data path: dataset specs, seeded sampling, per-sample determinism, collators and the official
fine-tuning augmentations (values computed by hand from the official loader's rules)."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from avt_core.errors import UsageError
from avt_data.rows import DatasetSpec
from avt_training.augment import apply_specaugment, normalised_fbank_value
from avt_training.collators import ClassificationCollator, PretrainingCollator, label_targets, mix_waveforms
from avt_training.data import ClipDataset, EpochShuffleSampler, load_triplet_datasets

# (0 - (-5.081)) / 4.4849: what a masked (zero) raw fbank bin becomes after the official normalisation
OFFICIAL_ZERO = 5.081 / 4.4849


@pytest.fixture(scope="module")
def processor():
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeProcessor

    return LGCavMaeProcessor.from_config(LGCavMaeConfig(audio_length=128, num_mel_bins=64, image_size=48))


@pytest.fixture(scope="module")
def train_rows(synthetic_train):
    return datasets.load_dataset(str(synthetic_train), split="train")


def test_dataset_spec_parsing():
    assert DatasetSpec.parse("out/triplets:top30") == DatasetSpec("out/triplets", "top30")
    assert DatasetSpec.parse("user/repo:random30") == DatasetSpec("user/repo", "random30")
    assert DatasetSpec.parse("user/repo") == DatasetSpec("user/repo", None)
    assert DatasetSpec.parse("/data/triplets/") == DatasetSpec("/data/triplets/", None)
    assert DatasetSpec.parse("./a:b/c") == DatasetSpec("./a:b/c", None)  # a ':' inside a path is no config


def test_load_concatenates_and_rejects_metadata_only(synthetic_train, synthetic_heldout, tmp_path):
    both = load_triplet_datasets(
        [str(synthetic_train), str(synthetic_heldout)], ("audio", "frames", "text_embedding")
    )
    assert len(both) == 128 + 48 and both.column_names == ["audio", "frames", "text_embedding"]
    metadata_only = tmp_path / "meta"
    rows = datasets.load_dataset(str(synthetic_heldout), split="train").remove_columns(["audio", "frames"])
    rows.to_parquet(str(metadata_only / "data" / "shard-00000.parquet"))
    with pytest.raises(UsageError, match="metadata-only"):
        load_triplet_datasets([str(metadata_only)], ("audio", "frames", "text_embedding"))


def test_sampler_is_a_seeded_permutation_per_epoch():
    sampler = EpochShuffleSampler(10, seed=3)
    epoch0 = list(sampler)
    assert sorted(i for i, _ in epoch0) == list(range(10)) and {e for _, e in epoch0} == {0}
    assert list(EpochShuffleSampler(10, seed=3)) == epoch0
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert {e for _, e in epoch1} == {1} and [i for i, _ in epoch1] != [i for i, _ in epoch0]


def test_augmentation_is_a_function_of_seed_epoch_and_index(train_rows, processor):
    clips = ClipDataset(train_rows, frame_selection="random", seed=5)
    collator = PretrainingCollator(
        processor, audio_noise_augment=True, num_audio_patches=32, num_visual_patches=9
    )
    keys = [(3, 0), (7, 0), (3, 1)]
    first = collator([clips[k] for k in keys])
    again = collator([ClipDataset(train_rows, seed=5)[k] for k in keys])  # fresh object: e.g. another worker
    for name in ("audio_values", "pixel_values", "audio_noise", "visual_noise", "text_embeds"):
        torch.testing.assert_close(first[name], again[name], rtol=0, atol=0)
    assert not torch.equal(
        first["audio_noise"][0], first["audio_noise"][2]
    )  # same clip, next epoch: new masks
    assert first["audio_values"].shape == (3, 128, 64) and first["pixel_values"].shape == (3, 3, 48, 48)
    assert first["text_embeds"].shape == (3, 32) and first["audio_noise"].shape == (3, 32)
    assert first["decode_failed"].tolist() == [False, False, False]


def test_noise_off_gives_the_processor_output(train_rows, processor):
    clips = ClipDataset(train_rows, frame_selection="middle")
    examples = [clips[(i, 0)] for i in range(2)]
    plain = PretrainingCollator(processor, audio_noise_augment=False)(examples)
    direct = processor(
        audio=[e["waveform"] for e in examples], images=[e["image"] for e in examples], sampling_rate=16000
    )
    torch.testing.assert_close(plain["audio_values"], direct["audio_values"], rtol=0, atol=0)
    torch.testing.assert_close(plain["pixel_values"], direct["pixel_values"], rtol=0, atol=0)
    noisy = PretrainingCollator(processor, audio_noise_augment=True)(examples)
    assert not torch.equal(noisy["audio_values"], plain["audio_values"])
    # The augmentation is a circular shift of (fbank + noise in [0, 0.1)): sorted values move by < 0.1.
    shift = noisy["audio_values"][0].sort(dim=0).values - plain["audio_values"][0].sort(dim=0).values
    assert shift.abs().max() < 0.1 + 1e-6


def test_undecodable_clip_is_substituted_and_counted(train_rows, processor):
    broken = train_rows.cast_column("audio", datasets.Audio(decode=False))
    broken = broken.map(
        lambda row, i: {"audio": {"bytes": b"not audio" if i == 1 else row["audio"]["bytes"], "path": None}},
        with_indices=True,
    ).cast_column("audio", datasets.Audio(sampling_rate=16000))
    clips = ClipDataset(broken.select(range(3)), seed=0)
    batch = PretrainingCollator(processor, audio_noise_augment=False)([clips[(i, 0)] for i in range(3)])
    assert batch["decode_failed"].tolist() == [False, True, False]
    expected = (0.01 + 5.081) / 4.4849  # the official loader's constant fbank 0.01, normalised
    torch.testing.assert_close(batch["audio_values"][1], torch.full((128, 64), expected))


def test_official_label_smoothing_and_mixup_targets():
    np.testing.assert_allclose(label_targets([1], 4, 0.1), [0.025, 0.9, 0.025, 0.025])
    np.testing.assert_allclose(label_targets([0, 2], 4, 0.0), [1, 0, 1, 0])
    mixed = label_targets([1], 4, 0.1, mix=([2], 0.7))
    np.testing.assert_allclose(mixed, [0.025, 0.025 + 0.7 * 0.9, 0.025 + 0.3 * 0.9, 0.025])
    same = label_targets([1], 4, 0.1, mix=([1], 0.7))  # mixing with the same class: both shares add up
    np.testing.assert_allclose(same, [0.025, 0.925, 0.025, 0.025])


def test_mix_waveforms_pads_or_cuts_the_partner():
    first, short = np.ones(6, np.float32), np.arange(3, dtype=np.float32)
    mixed = mix_waveforms(first, short, 0.5)
    partner = np.array([-1, 0, 1, 0, 0, 0], np.float32)  # its own DC removed, then zero-padded
    expected = 0.5 * (first - 1.0) + 0.5 * partner
    np.testing.assert_allclose(mixed, expected - expected.mean(), atol=1e-6)
    assert mix_waveforms(first, np.arange(10, dtype=np.float32), 0.3).shape == (6,)


def test_specaugment_masks_with_the_normalised_zero(processor):
    assert normalised_fbank_value(processor, 0.0) == pytest.approx(OFFICIAL_ZERO, rel=1e-6)
    fbank = torch.randn(128, 64) * 0.01 - 3.0
    masked = apply_specaugment(fbank, processor, 20, 40, torch.Generator().manual_seed(0))
    assert masked.shape == fbank.shape
    is_mask = (masked - OFFICIAL_ZERO).abs() < 1e-5
    masked_bins = is_mask.all(dim=0).sum().item()  # whole frequency columns
    masked_frames = is_mask.all(dim=1).sum().item()  # whole time rows
    assert 0 <= masked_bins < 20 and 0 <= masked_frames < 40
    assert torch.equal(masked[~is_mask], fbank[~is_mask])
    again = apply_specaugment(fbank, processor, 20, 40, torch.Generator().manual_seed(0))
    assert torch.equal(masked, again)


def test_classification_collator_mixes_audio_and_image_with_one_lambda(train_rows, processor):
    clips = ClipDataset(
        train_rows, frame_selection="middle", with_text=False, with_labels=True, mixup=1.0, seed=1
    )
    example = clips[(0, 0)]
    assert 0.0 < example["mix_lambda"] < 1.0
    label2id = {f"class_{k}": k for k in range(8)}
    batch = ClassificationCollator(processor, label2id, label_smoothing=0.1)([example])
    lam = example["mix_lambda"]
    first = processor(images=[example["image"]])["pixel_values"]
    second = processor(images=[example["mix_image"]])["pixel_values"]
    torch.testing.assert_close(batch["pixel_values"], lam * first + (1 - lam) * second)
    audio = processor(
        audio=[mix_waveforms(example["waveform"], example["mix_waveform"], lam)], sampling_rate=16000
    )
    torch.testing.assert_close(batch["audio_values"], audio["audio_values"])
    assert batch["labels"].shape == (1, 8) and batch["labels"].sum().item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="not in the class list"):
        ClassificationCollator(processor, {"other": 0})([example])


def test_fast_wav_decoding_equals_torchcodec(train_rows):
    import io
    import wave

    from torchcodec.decoders import AudioDecoder

    from avt_data.rows import decode_audio

    encoded = train_rows.cast_column("audio", datasets.Audio(decode=False))[:4]["audio"]
    for value in encoded:
        reference = AudioDecoder(value["bytes"], sample_rate=16000).get_all_samples().data[0].numpy()
        np.testing.assert_array_equal(decode_audio(value), reference)
    # A WAV the fast path does not handle (8-bit, 8 kHz) goes through datasets/torchcodec and is resampled.
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1), writer.setsampwidth(1), writer.setframerate(8000)
        writer.writeframes(bytes(range(0, 256)) * 32)
    waveform = decode_audio({"bytes": buffer.getvalue(), "path": None})
    assert waveform.dtype == np.float32 and abs(waveform.shape[0] - 2 * 256 * 32) < 64


def test_dataset_by_hub_id_with_config(local_hub, synthetic_heldout):
    """`--dataset user/repo:config` reads a published triplet dataset (here from the local Hub)."""
    repo_id = local_hub.repo_id("training-triplets")
    rows = datasets.load_dataset(str(synthetic_heldout), split="train")
    rows.select(range(10)).push_to_hub(repo_id, config_name="top30")
    rows.push_to_hub(repo_id, config_name="all")
    top = load_triplet_datasets([f"{repo_id}:top30"], ("audio", "frames", "text_embedding"))
    assert len(top) == 10
    clip = ClipDataset(top, seed=0)[(0, 0)]
    assert clip["decode_error"] is None and clip["waveform"].shape == (int(1.3 * 16000),)
