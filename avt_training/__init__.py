"""LG-CAV-MAE training: accelerate pretraining and transformers.Trainer fine-tuning (open_clip-style modules).

Entry points (heavy imports stay inside them):

* ``avt_training.pretrain.pretrain(config_or_args) -> Path``: ``avt pretrain``; ``PretrainConfig`` lists every option.
* ``avt_training.finetune.finetune(config_or_args) -> Path``: ``avt finetune``; ``FinetuneConfig``.
* ``avt_training.losses.PretrainingLoss``: every pretraining term, contrastive ones over the global batch.
* ``avt_training.data`` / ``avt_training.collators``: triplet loading, seeded sampling, decoding, model inputs.
* ``avt_training.synthetic.make_synthetic_triplets``: class-correlated triplets for checks and benchmarks.

docs/architecture.md maps the modules.
"""
