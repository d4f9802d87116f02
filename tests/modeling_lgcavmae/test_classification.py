"""Fine-tuning head: losses per problem type, modes, trainable tables, and a Trainer run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG
from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForAudioVisualClassification, LGCavMaeForPreTraining

# The tiny models run fastest on one thread, and the test machine's cores are shared by parallel jobs.
pytestmark = pytest.mark.usefixtures("single_thread")

TINY = {**MICRO_LGCAVMAE_CONFIG, "text_embed_dim": 8}


def _classifier(**overrides) -> LGCavMaeForAudioVisualClassification:
    torch.manual_seed(0)
    return LGCavMaeForAudioVisualClassification(LGCavMaeConfig(**{**TINY, "num_labels": 4, **overrides}))


def _inputs(batch: int = 6):
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 64, 32, generator=generator), torch.randn(batch, 3, 32, 32, generator=generator)


def test_single_label_uses_cross_entropy():
    model = _classifier(problem_type="single_label_classification").eval()
    audio, images = _inputs()
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    out = model(audio, images, labels=labels)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    assert out.logits.shape == (6, 4)


def test_multi_label_uses_bce_with_logits():
    model = _classifier(problem_type="multi_label_classification").eval()
    audio, images = _inputs()
    labels = (torch.rand(6, 4, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    out = model(audio, images, labels=labels)
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(out.logits, labels))


def test_problem_type_is_inferred_from_labels_when_unset():
    model = _classifier().eval()
    audio, images = _inputs()
    hard = torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(
        model(audio, images, labels=hard).loss, F.cross_entropy(model(audio, images).logits, hard)
    )
    multi = torch.zeros(6, 4).index_fill_(1, torch.tensor([2]), 1.0)
    expected = F.binary_cross_entropy_with_logits(model(audio, images).logits, multi)
    torch.testing.assert_close(model(audio, images, labels=multi).loss, expected)


def test_single_modality_modes_need_only_their_input():
    audio, images = _inputs()
    audio_model = _classifier(classifier_mode="audio")
    assert audio_model(audio_values=audio).logits.shape == (6, 4)
    visual_model = _classifier(classifier_mode="visual")
    assert visual_model(pixel_values=images).logits.shape == (6, 4)
    with pytest.raises(ValueError, match="needs pixel_values"):
        _classifier()(audio_values=audio)


def test_audio_visual_mode_pools_the_joint_stream():
    model = _classifier().eval()
    audio, images = _inputs()
    with torch.no_grad():
        joint = model.cav_mae(audio, images).last_hidden_state
        torch.testing.assert_close(model.pool(audio, images), joint.mean(dim=1))
        assert joint.shape[1] == model.config.num_audio_patches + model.config.num_visual_patches


def test_position_tables_train_during_fine_tuning():
    model = _classifier().train()
    audio, images = _inputs()
    model(audio, images, labels=torch.tensor([0, 1, 2, 3, 0, 1])).loss.backward()
    assert model.cav_mae.audio_embeddings.position_embeddings.grad is not None
    frozen = _classifier(classifier_trainable_position_embeddings=False)
    assert not any(p.requires_grad for p in frozen.position_embedding_parameters())


def test_classifier_loads_the_encoder_of_a_pretraining_checkpoint(tmp_path):
    torch.manual_seed(0)
    pretrained = LGCavMaeForPreTraining(LGCavMaeConfig(**TINY))
    pretrained.save_pretrained(tmp_path)
    model = LGCavMaeForAudioVisualClassification.from_pretrained(tmp_path, num_labels=3)
    for key, value in pretrained.cav_mae.state_dict().items():
        assert torch.equal(model.cav_mae.state_dict()[key], value), key
    assert all(p.requires_grad for p in model.position_embedding_parameters())


def test_trains_under_transformers_trainer(tmp_path):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    audio, images = _inputs(8)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    dataset = Dataset.from_dict(
        {"audio_values": audio.numpy(), "pixel_values": images.numpy(), "labels": labels.numpy()}
    ).with_format("torch")
    model = _classifier(problem_type="single_label_classification")
    before = model.classifier.dense.weight.detach().clone()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset)
    # Trainer keeps its own loss scaling for gradient accumulation / several devices
    assert trainer.model_accepts_loss_kwargs is False
    result = trainer.train()
    assert result.global_step == 3 and torch.isfinite(torch.tensor(result.training_loss))
    assert not torch.equal(before, model.classifier.dense.weight.detach())
    metrics = trainer.evaluate()
    assert "eval_loss" in metrics
    predictions = trainer.predict(dataset)
    assert predictions.predictions.shape == (8, 4)  # plain logits for compute_metrics
