"""LG-CAV-MAE training: accelerate pretraining and transformers.Trainer fine-tuning (open_clip-style modules).

Entry points (heavy imports stay inside them):

* ``training.pretrain.pretrain(config_or_args) -> Path``: ``avt pretrain``; ``PretrainConfig`` lists every option.
* ``training.finetune.finetune(config_or_args) -> Path``: ``avt finetune``; ``FinetuneConfig``.
* ``training.losses.PretrainingLoss``: every pretraining term, contrastive ones over the global batch.
* ``training.data`` / ``training.collators``: triplet loading, seeded sampling, decoding, model inputs.
* ``training.synthetic.make_synthetic_triplets``: class-correlated triplets for checks and benchmarks.

docs/architecture.md maps the modules.
"""
