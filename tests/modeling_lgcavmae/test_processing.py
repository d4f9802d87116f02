"""LGCavMaeProcessor against the official CAV-MAE dataloader transforms (reference cavmae.md §4).

The references below are written from the official recipe with torchaudio / torchvision directly, not with
the code under test.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchaudio
from PIL import Image
from torchvision import transforms

from modeling_lgcavmae.processing_lgcavmae import LGCavMaeProcessor, add_fbank_noise_and_roll

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")

OFFICIAL_MEAN, OFFICIAL_STD = -5.081, 4.4849
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def official_fbank(waveform: np.ndarray, target_length: int = 1024, sample_rate: int = 16000) -> torch.Tensor:
    """src/dataloader.py: DC removal, Kaldi fbank with the official arguments, zero pad / cut, normalise."""
    wave = torch.from_numpy(waveform.astype(np.float32))[None]
    wave = wave - wave.mean()
    fbank = torchaudio.compliance.kaldi.fbank(
        wave,
        htk_compat=True,
        sample_frequency=sample_rate,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    missing = target_length - fbank.shape[0]
    if missing > 0:
        fbank = torch.nn.ZeroPad2d((0, 0, 0, missing))(fbank)
    else:
        fbank = fbank[:target_length]
    return (fbank - OFFICIAL_MEAN) / OFFICIAL_STD


def synthetic_wave(seconds: float, seed: int, dc: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)
    return (tone + 0.05 * rng.standard_normal(t.shape) + dc).astype(np.float32)


@pytest.fixture(scope="module")
def processor() -> LGCavMaeProcessor:
    return LGCavMaeProcessor()


def test_audio_matches_official_fbank_and_pads_with_plus_1133(processor):
    waves = [synthetic_wave(10.0, 0), synthetic_wave(3.3, 1, dc=-0.2)]
    out = processor(audio=waves, sampling_rate=16000, return_tensors="pt")["audio_values"]
    assert out.shape == (2, 1024, 128) and out.dtype == torch.float32
    for got, wave in zip(out, waves):
        torch.testing.assert_close(got, official_fbank(wave), atol=1e-3, rtol=0)
    # 10 s -> 998 Kaldi frames (25 ms window, 10 ms shift, snip_edges); the rest is zero padding
    # normalised like any other frame, i.e. (0 + 5.081) / 4.4849.
    padded_value = (0 - OFFICIAL_MEAN) / OFFICIAL_STD
    assert padded_value == pytest.approx(1.1329, abs=1e-4)
    torch.testing.assert_close(out[0, 998:], torch.full((1024 - 998, 128), padded_value), atol=1e-6, rtol=0)
    assert not torch.allclose(out[0, 997], torch.full((128,), padded_value))
    n_frames_short = 1 + (len(waves[1]) - 400) // 160
    torch.testing.assert_close(
        out[1, n_frames_short:], torch.full_like(out[1, n_frames_short:], padded_value)
    )


def test_long_audio_is_cut_to_audio_length(processor):
    wave = synthetic_wave(12.0, 2)
    got = processor(audio=wave, sampling_rate=16000)["audio_values"][0]
    reference = official_fbank(wave)
    assert got.shape == reference.shape == (1024, 128)
    torch.testing.assert_close(got, reference, atol=1e-3, rtol=0)
    assert (got - (0 - OFFICIAL_MEAN) / OFFICIAL_STD).abs().amax(dim=1).min() > 1e-3  # no padded frame


def test_from_config_follows_model_audio_length_and_image_size():
    config = SimpleNamespace(audio_length=256, num_mel_bins=128, image_size=64)
    processor = LGCavMaeProcessor.from_config(config)
    wave = synthetic_wave(4.0, 3)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8))
    out = processor(audio=[wave], images=[image], sampling_rate=16000)
    assert out["audio_values"].shape == (1, 256, 128)
    assert out["pixel_values"].shape == (1, 3, 64, 64)
    torch.testing.assert_close(
        out["audio_values"][0], official_fbank(wave, target_length=256), atol=1e-3, rtol=0
    )


def smooth_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.BILINEAR)


def official_image_transform(size: int = 224):
    return transforms.Compose(
        [
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    )


@pytest.mark.parametrize(
    "width,height", [(224, 224), (398, 224), (298, 224), (640, 480), (333, 500), (90, 70)]
)
def test_image_matches_official_eval_transform(processor, width, height):
    image = smooth_image(width, height, seed=width)
    got = processor(images=image)["pixel_values"][0]
    torch.testing.assert_close(got, official_image_transform()(image), atol=1e-5, rtol=0)


def test_image_with_odd_crop_margin_starts_one_pixel_earlier(processor):
    """Documented difference: transformers floors the crop offset, torchvision rounds half to even."""
    image = smooth_image(225, 301, seed=7)  # resized to 224 x 299: vertical margin 75
    resized = transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC)(image)
    assert resized.size == (224, 299)
    floor_crop = transforms.functional.crop(resized, top=37, left=0, height=224, width=224)
    expected = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)(transforms.functional.to_tensor(floor_crop))
    torch.testing.assert_close(processor(images=image)["pixel_values"][0], expected, atol=1e-5, rtol=0)


def test_other_sampling_rates_are_resampled_and_inputs_may_be_dicts(processor):
    wave_44k = np.sin(2 * np.pi * 440 * np.arange(44100 * 2) / 44100).astype(np.float32) * 0.3
    resampled = torchaudio.functional.resample(torch.from_numpy(wave_44k), 44100, 16000).numpy()
    expected = official_fbank(resampled)
    from_array = processor(audio=[wave_44k], sampling_rate=44100)["audio_values"][0]
    from_dict = processor(audio=[{"array": wave_44k, "sampling_rate": 44100}])["audio_values"][0]
    torch.testing.assert_close(from_array, expected, atol=1e-3, rtol=0)
    torch.testing.assert_close(from_dict, expected, atol=1e-3, rtol=0)


def test_too_short_audio_is_a_clear_error(processor):
    with pytest.raises(ValueError, match="at least 400"):
        processor(audio=[np.zeros(100, dtype=np.float32)], sampling_rate=16000)
    with pytest.raises(ValueError, match="audio"):
        processor(sampling_rate=16000)


def test_save_and_load_round_trip(tmp_path):
    processor = LGCavMaeProcessor.from_config(
        SimpleNamespace(audio_length=512, num_mel_bins=128, image_size=96)
    )
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "processor_config.json").exists()
    # registered for remote code: the processing file travels with the config
    assert (tmp_path / "processing_lgcavmae.py").exists()
    reloaded = LGCavMaeProcessor.from_pretrained(tmp_path)
    assert type(reloaded.image_processor) is type(processor.image_processor)
    wave, image = synthetic_wave(6.0, 4), smooth_image(130, 100, 5)
    before = processor(audio=[wave], images=[image], sampling_rate=16000)
    after = reloaded(audio=[wave], images=[image], sampling_rate=16000)
    assert after["audio_values"].shape == (1, 512, 128) and after["pixel_values"].shape == (1, 3, 96, 96)
    for key in ("audio_values", "pixel_values"):
        torch.testing.assert_close(after[key], before[key], atol=0, rtol=0)


def test_fbank_noise_and_roll_is_a_small_noise_plus_circular_shift():
    torch.manual_seed(0)
    clean = torch.randn(3, 50, 8)
    augmented = add_fbank_noise_and_roll(clean, torch.Generator().manual_seed(1))
    again = add_fbank_noise_and_roll(clean, torch.Generator().manual_seed(1))
    torch.testing.assert_close(augmented, again, atol=0, rtol=0)
    shifts = []
    for clip, aug in zip(clean, augmented):
        # find the roll that best explains the result; the residual must be non-negative noise below 0.1
        residuals = [aug - torch.roll(clip, s, dims=0) for s in range(50)]
        best = min(range(50), key=lambda s: residuals[s].abs().max().item())
        assert residuals[best].min() >= 0 and residuals[best].max() < 0.1
        shifts.append(best)
    assert len(set(shifts)) > 1  # each clip draws its own shift
    single = add_fbank_noise_and_roll(clean[0], torch.Generator().manual_seed(2))
    assert single.shape == (50, 8)


def test_auto_processor_loads_it_from_a_model_folder_and_as_remote_code(tmp_path):
    import subprocess
    import sys

    from transformers import AutoProcessor

    from modeling_lgcavmae import LGCavMaeConfig

    LGCavMaeConfig(audio_length=512, image_size=96).save_pretrained(tmp_path)
    LGCavMaeProcessor.from_config(LGCavMaeConfig(audio_length=512, image_size=96)).save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(loaded) is LGCavMaeProcessor and loaded.audio_length == 512
    # Without our package on the path: the copied processing/config files are the code that runs.
    script = (
        "import sys, numpy as np\n"
        "from transformers import AutoProcessor\n"
        f"p = AutoProcessor.from_pretrained({str(tmp_path)!r}, trust_remote_code=True)\n"
        "assert 'modeling_lgcavmae' not in sys.modules, 'our package was imported'\n"
        "out = p(audio=[np.zeros(16000, dtype=np.float32)], sampling_rate=16000)\n"
        "print(type(p).__module__, tuple(out['audio_values'].shape))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("(1, 512, 128)")
    assert "transformers_modules" in result.stdout
