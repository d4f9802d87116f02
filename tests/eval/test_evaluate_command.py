"""End to end: `avt evaluate retrieval|classification` on a tiny model and a tiny triplet dataset.

Expected values are recomputed here from direct model calls on the processor's outputs and an independent,
sort-based implementation of the official metrics, so ordering, pairing, frame choice and skipping are checked.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avt.cli import main as avt_main

CLASSES = ("dog", "cat", "bird")


def official_metrics(sim: np.ndarray) -> dict[str, float]:
    sorted_rows = np.sort(-sim, axis=1)
    positions = np.where(sorted_rows - np.diag(-sim)[:, None] == 0)[1]
    assert len(positions) == len(sim)  # no ties in these cases
    return {
        "R@1": float(np.mean(positions == 0)),
        "R@5": float(np.mean(positions < 5)),
        "R@10": float(np.mean(positions < 10)),
        "MR": float(np.median(positions) + 1),
    }


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a.astype(np.float64) @ b.astype(np.float64).T


def decoded_rows(root):
    import datasets

    return datasets.load_dataset(str(root), split="train")


@pytest.fixture(scope="module")
def pretrained(tiny_lgcavmae):
    from transformers import AutoModelForPreTraining

    from modeling_lgcavmae import LGCavMaeProcessor  # also registers the Auto classes

    model = AutoModelForPreTraining.from_pretrained(tiny_lgcavmae).eval()
    return model, LGCavMaeProcessor.from_config(model.config)


def test_retrieval_command_matches_direct_model_features(tmp_path, tiny_lgcavmae, tiny_triplets, pretrained):
    out = tmp_path / "report"
    code = avt_main(
        ["evaluate", "retrieval", "--model", f"tiny={tiny_lgcavmae}", "--dataset", f"Toy={tiny_triplets}",
         "--protocol", "full", "--per-device-eval-batch-size", "4", "--output-dir", str(out), "--device", "cpu", "--no-progress",
         "--max-k", "8"]
    )  # fmt: skip
    assert code == 0
    record = json.loads((out / "retrieval.json").read_text())
    (entry,) = record["entries"]
    assert (entry["model"], entry["dataset"]) == ("tiny", "Toy")
    # 14 rows: the clip without frames is skipped and reported, every other clip (labelled or not) is kept
    assert entry["num_clips"] == 13 and entry["num_skipped"] == 1
    assert entry["skipped"][0]["clip_id"] == "clip013" and "no frames" in entry["skipped"][0]["reason"]

    model, processor = pretrained
    rows = [r for r in decoded_rows(tiny_triplets) if r["frames"]]
    waves = [r["audio"].get_all_samples().data[0].numpy() for r in rows]
    middle = [r["frames"][len(r["frames"]) // 2] for r in rows]
    inputs = processor(audio=waves, images=middle, sampling_rate=16000)
    with torch.no_grad():
        audio = model.get_audio_features(inputs["audio_values"]).numpy()
        visual = model.get_visual_features(inputs["pixel_values"]).numpy()
        audio_t = model.get_text_aligned_audio_features(inputs["audio_values"]).numpy()
        visual_t = model.get_text_aligned_visual_features(inputs["pixel_values"]).numpy()
    text = np.asarray([r["text_embedding"] for r in rows])
    expected = {
        "audio_to_visual": official_metrics(cosine(audio, visual)),
        "visual_to_audio": official_metrics(cosine(visual, audio)),
        "text_to_audio": official_metrics(cosine(text, audio_t)),
        "text_to_visual": official_metrics(cosine(text, visual_t)),
    }
    for direction, values in expected.items():
        for name, value in values.items():
            assert entry["metrics"][direction][name] == pytest.approx(value, abs=1e-9), (direction, name)
        assert len(entry["recall_curves"][direction]) == 8
    markdown = (out / "retrieval.md").read_text()
    assert "| Model | Toy A→V R@1 | Toy A→V R@5 | Toy A→V R@10 | Toy V→A R@1" in markdown
    a2v = entry["metrics"]["audio_to_visual"]
    assert f"| tiny | {100 * a2v['R@1']:.1f} | {100 * a2v['R@5']:.1f} | {100 * a2v['R@10']:.1f} |" in markdown
    assert (out / "retrieval_recall_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cavmae_protocol_takes_per_class_subset_and_ignores_unlabelled(
    tmp_path, tiny_lgcavmae, tiny_triplets
):
    out = tmp_path / "report"
    code = avt_main(
        ["evaluate", "retrieval", "--model", str(tiny_lgcavmae), "--dataset", str(tiny_triplets), "--per-class", "2",
         "--seed", "3", "--no-text", "--output-dir", str(out), "--device", "cpu", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    (entry,) = json.loads((out / "retrieval.json").read_text())["entries"]
    # 2 clips for each of 3 classes; the clip without frames may be drawn for "dog" and is then skipped
    assert entry["num_clips"] + entry["num_skipped"] == 6
    assert entry["selection"] == {
        "protocol": "cavmae", "dataset_size": 14, "per_class": 2, "seed": 3, "subset": "per_class", "frame": "middle"
    }  # fmt: skip
    assert set(entry["metrics"]) == {"audio_to_visual", "visual_to_audio"}


def test_classification_command_matches_direct_multi_frame_predictions(
    tmp_path, tiny_classifier, tiny_triplets
):
    from transformers import AutoModelForAudioClassification

    from eval.classify import predict_frames
    from modeling_lgcavmae import LGCavMaeProcessor

    out = tmp_path / "report"
    code = avt_main(
        ["evaluate", "classification", "--model", f"ft={tiny_classifier}", "--dataset", f"Toy={tiny_triplets}",
         "--per-device-eval-batch-size", "5", "--output-dir", str(out), "--device", "cpu", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    (entry,) = json.loads((out / "classification.json").read_text())["entries"]
    assert entry["metric"] == "accuracy" and entry["num_frames"] == 3
    assert entry["num_without_known_label"] == 1 and entry["num_skipped"] == 1

    model = AutoModelForAudioClassification.from_pretrained(tiny_classifier).eval()
    processor = LGCavMaeProcessor.from_config(model.config)
    rows = [r for r in decoded_rows(tiny_triplets) if r["frames"] and r["labels"]]
    targets = np.asarray([CLASSES.index(r["labels"][0]) for r in rows])
    waves = [r["audio"].get_all_samples().data[0].numpy() for r in rows]
    audio_values = processor(audio=waves, sampling_rate=16000)["audio_values"]
    logits = []
    with torch.no_grad():
        for frame in range(3):
            pixels = processor(images=[r["frames"][frame] for r in rows])["pixel_values"]
            logits.append(model(audio_values=audio_values, pixel_values=pixels).logits.numpy())
    logits = np.stack(logits)  # [frames, clips, classes]
    assert not np.allclose(logits[0], logits[2], atol=1e-4)  # the frame matters for this model

    # the runner's per-frame logits, clip order and middle frame
    labelled = decoded_rows(tiny_triplets).filter(lambda labels: bool(labels), input_columns=["labels"])
    predictions = predict_frames(model, processor, labelled, num_frames=3, batch_size=5, progress=False)
    assert predictions.clip_ids == [r["clip_id"] for r in rows]
    assert predictions.middle_frame.tolist() == [1] * len(rows)
    np.testing.assert_allclose(predictions.logits, logits, atol=1e-5, rtol=0)

    # the command's metrics, recomputed from the direct logits
    probabilities = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
    single = float(np.mean(probabilities[1].argmax(1) == targets))
    multi = float(np.mean(probabilities.mean(0).argmax(1) == targets))
    assert entry["single_frame"]["accuracy"] == pytest.approx(single)
    assert entry["multi_frame"]["accuracy"] == pytest.approx(multi)
    assert "| ft |" in (out / "classification.md").read_text()


def test_multi_label_classification_reports_map(tiny_classifier, tiny_triplets):
    import datasets
    from transformers import AutoModelForAudioClassification

    from eval.runs import ClassificationOptions, evaluate_classification
    from modeling_lgcavmae import LGCavMaeProcessor

    model = AutoModelForAudioClassification.from_pretrained(
        tiny_classifier, problem_type="multi_label_classification"
    )
    model.eval()
    dataset = datasets.load_dataset(str(tiny_triplets), split="train")
    result = evaluate_classification(
        model, LGCavMaeProcessor.from_config(model.config), dataset, ClassificationOptions(progress=False)
    )
    assert result["metric"] == "mAP" and result["problem_type"] == "multi_label_classification"
    for key in ("single_frame", "multi_frame"):
        assert 0.0 < result[key]["mAP"] <= 1.0
        assert result[key]["num_classes_scored"] == 3


def test_retrieval_with_audio_and_visual_captions_gives_table_ii_rows(
    tmp_path, tiny_lgcavmae, synthetic_modality, pretrained
):
    """Issue 21: a dataset with the audio and visual captions' CLAP embeddings adds text->audio / text->visual with
    each kind's captions (SLAVA's Table II rows, `--report avcaps`) beside the chosen caption's."""
    out = tmp_path / "report"
    code = avt_main(
        ["evaluate", "retrieval", "--model", f"tiny={tiny_lgcavmae}", "--dataset", f"Toy={synthetic_modality}",
         "--protocol", "full", "--batch-size", "8", "--output-dir", str(out), "--device", "cpu", "--no-progress",
         "--report", "avcaps"]
    )  # fmt: skip
    assert code == 0
    (entry,) = json.loads((out / "retrieval.json").read_text())["entries"]
    model, processor = pretrained
    rows = list(decoded_rows(synthetic_modality))
    waves = [r["audio"].get_all_samples().data[0].numpy() for r in rows]
    inputs = processor(
        audio=waves, images=[r["frames"][len(r["frames"]) // 2] for r in rows], sampling_rate=16000
    )
    with torch.no_grad():
        audio_t = model.get_text_aligned_audio_features(inputs["audio_values"]).numpy()
        visual_t = model.get_text_aligned_visual_features(inputs["pixel_values"]).numpy()
    audio_captions = np.asarray([r["audio_text_embedding"] for r in rows])
    visual_captions = np.asarray([r["visual_text_embedding"] for r in rows])
    expected = {
        "audio_caption_to_audio": official_metrics(cosine(audio_captions, audio_t)),
        "audio_caption_to_visual": official_metrics(cosine(audio_captions, visual_t)),
        "visual_caption_to_audio": official_metrics(cosine(visual_captions, audio_t)),
        "visual_caption_to_visual": official_metrics(cosine(visual_captions, visual_t)),
    }
    for direction, values in expected.items():
        for name, value in values.items():
            assert entry["metrics"][direction][name] == pytest.approx(value, abs=1e-9), (direction, name)
    assert (
        entry["metrics"]["visual_caption_to_visual"] == entry["metrics"]["text_to_visual"]
    )  # caption = visual
    table = (out / "retrieval.md").read_text().split("## Retrieval in the layout of SLAVA's Table II")[1]
    r10 = 100 * entry["metrics"]["audio_caption_to_audio"]["R@10"]
    assert f"| Audio ← audio captions | {r10:.1f} |" in table
