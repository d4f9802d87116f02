"""A fine-tuned classifier works from `pipeline()`: transformers' `audio-classification` (it passes the fbank as
`input_values`, audio only) and our `audio-visual-classification`, saved with the model through the custom-pipeline
mechanism (`config.custom_pipelines` + `pipeline_lgcavmae.py`) and loaded as remote code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

LABELS = ["dog", "rain", "violin"]


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """A classifier saved as `avt finetune` saves it (Trainer.save_model -> save_pretrained, processor beside)."""
    from avt_triplets.tiny import make_tiny_lgcavmae
    from modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeProcessor

    pretrained = make_tiny_lgcavmae(
        tmp_path_factory.mktemp("pretrained"), audio_length=128, num_mel_bins=64, image_size=48
    )
    model = LGCavMaeForAudioVisualClassification.from_pretrained(
        pretrained,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
        problem_type="single_label_classification",
    )
    folder = tmp_path_factory.mktemp("finetuned")
    model.save_pretrained(folder)
    LGCavMaeProcessor.from_pretrained(pretrained).save_pretrained(folder)
    return folder


def _waveform(seed: int = 0) -> np.ndarray:
    wave = np.random.default_rng(seed).standard_normal(16000).astype(np.float32) * 0.1
    return wave - wave.mean()  # zero mean: the processor's DC removal changes nothing


def _expected(folder, audio=None, frames=None, mode=None) -> dict[str, float]:
    from modeling_lgcavmae import LGCavMaeForAudioVisualClassification, LGCavMaeProcessor

    model = LGCavMaeForAudioVisualClassification.from_pretrained(folder).eval()
    processor = LGCavMaeProcessor.from_pretrained(folder)
    copies = len(frames) if frames else 1
    inputs = processor(
        audio=[audio] * copies if audio is not None else None, images=frames, sampling_rate=16000
    )
    with torch.no_grad():
        scores = model(**inputs, classifier_mode=mode).logits.softmax(-1).mean(0)
    return {label: float(scores[i]) for i, label in enumerate(LABELS)}


def test_audio_classification_pipeline_classifies_a_finetuned_model(finetuned):
    from transformers import pipeline

    classify = pipeline("audio-classification", model=str(finetuned))
    got = {r["label"]: r["score"] for r in classify(_waveform(), top_k=3)}
    expected = _expected(finetuned, audio=_waveform(), mode="missing_visual")
    assert got == pytest.approx(expected, abs=1e-5)


def test_the_custom_pipeline_is_saved_with_the_model(finetuned):
    config = json.loads((finetuned / "config.json").read_text())
    impl = config["custom_pipelines"]["audio-visual-classification"]["impl"]
    assert impl == "pipeline_lgcavmae.LGCavMaeAudioVisualClassificationPipeline"
    assert (finetuned / "pipeline_lgcavmae.py").is_file()


def test_audio_visual_pipeline_loads_as_remote_code_and_averages_frames(finetuned):
    from transformers import pipeline

    classify = pipeline("audio-visual-classification", model=str(finetuned), trust_remote_code=True)
    assert type(classify).__module__.startswith("transformers_modules.")  # the file saved with the model
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((200, 20, 20), (20, 200, 20))]
    got = {r["label"]: r["score"] for r in classify({"audio": _waveform(1), "frames": frames}, top_k=3)}
    assert got == pytest.approx(_expected(finetuned, audio=_waveform(1), frames=frames), abs=1e-5)
    (best,) = classify({"frames": frames[0]}, top_k=1)
    visual_only = _expected(finetuned, frames=[frames[0]], mode="missing_audio")
    assert best["label"] == max(visual_only, key=visual_only.get)
    with pytest.raises(ValueError, match="audio` and/or `frames"):
        classify("clip.mp4")
