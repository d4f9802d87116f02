"""The learning check: pretraining on class-correlated triplets makes audio->visual retrieval work on held-out clips.

Synthetic classes tie a harmonic tone to a frame colour and to a caption-embedding direction. Only the
training loop can connect the two modalities, so an untrained model must stay near chance (the test can
fail) while a few hundred CPU steps of the real `pretrain` (default losses and weights, lambda1 = lambda2 =
0.01) must reach at least 3x chance on clips it never saw, and the LG (audio-text, visual-text) losses fall.
"""

from __future__ import annotations

import json

import datasets
import pytest

from eval.features import extract_retrieval_features
from eval.retrieval import ranking_metrics, retrieval_ranks

STEPS = 200


def audio_to_visual_r1(model_dir, heldout) -> tuple[float, float]:
    from modeling_lgcavmae import LGCavMaeForPreTraining, LGCavMaeProcessor

    model = LGCavMaeForPreTraining.from_pretrained(model_dir).eval()
    processor = LGCavMaeProcessor.from_config(model.config)
    features = extract_retrieval_features(
        model, processor, datasets.load_dataset(str(heldout), split="train"), progress=False
    )
    ranks = retrieval_ranks(features.audio, features.visual)
    return ranking_metrics(ranks)["R@1"], 1.0 / len(ranks)


@pytest.mark.slow
def test_pretraining_learns_cross_modal_retrieval(
    tmp_path, fast_tiny_model, synthetic_train, synthetic_heldout, single_thread
):
    from avt_training.pretrain import PretrainConfig, pretrain

    untrained_r1, chance = audio_to_visual_r1(fast_tiny_model, synthetic_heldout)
    assert untrained_r1 <= 2 * chance, (
        f"an untrained model should be near chance: R@1 {untrained_r1} vs {chance}"
    )

    output = pretrain(
        PretrainConfig(
            datasets=[str(synthetic_train)],
            output_dir=str(tmp_path / "run"),
            model_name_or_path=str(fast_tiny_model),
            per_device_batch_size=16,
            learning_rate=1e-3,
            lr_scheduler="constant",
            max_steps=STEPS,
            num_workers=0,
            save_steps=None,
            logging_steps=20,
            report_to=[],
        )
    )
    trained_r1, _ = audio_to_visual_r1(output, synthetic_heldout)
    print(
        f"learning check: held-out audio->visual R@1 {trained_r1:.3f}, chance {chance:.3f}, untrained {untrained_r1:.3f}"
    )
    assert trained_r1 >= 3 * chance, f"R@1 {trained_r1:.3f} < 3 x chance ({chance:.3f})"

    log = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(20, STEPS + 1, 20))
    for term in ("loss_audio_text", "loss_visual_text", "loss_contrastive"):
        first, last = log[0][term], log[-1][term]
        assert last < 0.8 * first, f"{term} did not fall: {first:.3f} -> {last:.3f}"
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["steps"] == STEPS and summary["decode_failures"] == 0
