"""``LGCavMaeTrainer``: ``transformers.Trainer`` with the official CAV-MAE fine-tuning optimiser, schedule and
sampling, and augmentation-free evaluation batches."""

from __future__ import annotations

import numpy as np
import torch
from transformers import Trainer

from avt_data.block_sampler import sampler_for_rows
from avt_data.parquet_rows import ParquetTriplets
from avt_training import sampling
from avt_training.finetune_config import FinetuneConfig
from avt_training.optim import build_adam, official_milestones


def official_step_lambda(steps_per_epoch: float, start_epoch: int, step_epochs: int, gamma: float):
    """lr factor per optimizer step equal to the official ``MultiStepLR`` stepped once per epoch."""
    milestones = np.asarray(official_milestones(start_epoch, step_epochs, 0))

    def factor(step: int) -> float:
        completed_epochs = int(step // max(steps_per_epoch, 1e-9))
        return float(gamma ** int((milestones <= completed_epochs).sum()))

    return factor


class LGCavMaeTrainer(Trainer):
    """Trainer with the official optimiser (Adam, head lr x multiplier) and per-epoch step schedule."""

    def __init__(
        self,
        *args,
        finetune_config: FinetuneConfig,
        eval_data_collator=None,
        train_sample_weights: np.ndarray | None = None,
        **kwargs,
    ):
        self.finetune_config = finetune_config
        self.eval_data_collator = eval_data_collator
        self.train_sample_weights = train_sample_weights
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset=None):
        """Official balanced sampling when weights are given: draws with replacement, seeded per epoch,
        identical on every process so accelerate's batch sharding splits one global draw between ranks.
        Triplets read in place get the block-shuffled order (uniform or weighted draws; mixup partners from the
        same shuffle window), see ``avt_data/block_sampler.py``."""
        dataset = self.train_dataset if train_dataset is None else train_dataset
        weights = self.train_sample_weights
        if isinstance(getattr(dataset, "data", None), ParquetTriplets):
            return sampler_for_rows(
                dataset.data,
                self.args.per_device_train_batch_size,
                seed=self.args.seed if self.args.data_seed is None else self.args.data_seed,
                lanes=self.args.world_size * max(self.args.dataloader_num_workers, 1),
                window=self.finetune_config.shuffle_window,
                weights=weights if weights is not None and len(weights) == len(dataset) else None,
                partners=bool(dataset.mixup),
            )
        if weights is None or dataset is None or len(weights) != len(dataset):
            return super()._get_train_sampler(train_dataset)
        return sampling.EpochSeededWeightedSampler(
            weights, seed=self.args.seed if self.args.data_seed is None else self.args.data_seed
        )

    def _with_eval_collator(self, build, dataset):
        """Evaluation and prediction batches get the augmentation-free collator, and keep every clip
        (`dataloader_drop_last` is for training only, like the official loaders)."""
        train_collator, drop_last = self.data_collator, self.args.dataloader_drop_last
        self.data_collator = self.eval_data_collator or train_collator
        self.args.dataloader_drop_last = False
        try:
            return build(dataset)
        finally:
            self.data_collator, self.args.dataloader_drop_last = train_collator, drop_last

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_eval_collator(super().get_eval_dataloader, eval_dataset)

    def get_test_dataloader(self, test_dataset):
        return self._with_eval_collator(super().get_test_dataloader, test_dataset)

    def create_optimizer(self, model=None):
        """Official Adam; the new head learns at ``learning_rate * head_lr_multiplier``."""
        if self.optimizer is None:
            model = model or self.model
            c = self.finetune_config
            head = [p for n, p in model.named_parameters() if n.startswith("classifier.") and p.requires_grad]
            base = [
                p for n, p in model.named_parameters() if not n.startswith("classifier.") and p.requires_grad
            ]
            self.optimizer = build_adam(
                [{"params": base}, {"params": head, "lr": c.learning_rate * c.head_lr_multiplier}],
                lr=c.learning_rate,
                betas=(c.adam_beta1, c.adam_beta2),
                weight_decay=c.weight_decay,
            )
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """``multistep``: the official per-epoch decay as a per-step factor; any other name: transformers'."""
        c = self.finetune_config
        if self.lr_scheduler is None and c.lr_scheduler == "multistep":
            epochs = self.args.num_train_epochs if self.args.max_steps <= 0 else None
            steps_per_epoch = num_training_steps / epochs if epochs else self._steps_per_epoch()
            factor = official_step_lambda(
                steps_per_epoch, c.lr_decay_start_epoch, c.lr_decay_step_epochs, c.lr_decay_gamma
            )
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, factor)
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    def _steps_per_epoch(self) -> float:
        """Optimizer steps per epoch as Trainer counts them (an incomplete accumulation at an epoch's end steps)."""
        from avt_training.run_plan import trainer_steps

        batches = len(self.get_train_dataloader())
        return trainer_steps(batches, self.args.gradient_accumulation_steps, 1, None)[0]
