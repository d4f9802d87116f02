"""`avt finetune`: audio-visual classification fine-tuning of an LG-CAV-MAE checkpoint with transformers.Trainer.

The options are the fields of ``avt_training.finetune_config.FinetuneConfig`` (help, defaults, groups).
"""

from __future__ import annotations

import argparse

from avt_training.commands import add_config_arguments, run_or_plan
from avt_training.finetune_config import GROUPS, RUN, FinetuneConfig

EPILOG = """\
Defaults reproduce the official CAV-MAE VGGSound fine-tuning (src/run_cavmae_ft.py): Adam (0.95, 0.999, weight
decay 5e-7), lr 1e-4 with the head at 10x, lr halved every epoch from epoch 2, 10 epochs, batch 48, SpecAugment
(freq 48, time 192), mixup 0.5 (lambda ~ Beta(10, 10), audio and image mixed with the same lambda), label
smoothing 0.1 (negatives ls/K, positives 1-ls), fbank noise + shift, a random frame per clip, trainable position
tables. For AudioSet-20K the official script uses lr 5e-5, --head-lr-multiplier 100, 15 epochs,
--lr-decay-start-epoch 5, batch 36 (multi-label: BCE and mAP are chosen from the labels or --problem-type).
The official VGGSound and AudioSet-2M recipes also sample class-balanced: add --balanced-sampling (AudioSet-2M:
lr 1e-5, --head-lr-multiplier 50, 10 epochs, --lr-decay-start-epoch 2, batch 48).

Evaluation: accuracy (single-label) or mAP (multi-label) on each clip's middle frame, and the official
multi-frame result (softmax/sigmoid outputs averaged over all frames of a clip) at the end.

Dry run: --dry-run prints the clips kept after the label checks, steps, epochs, schedule, effective batch, the
checkpoint --resume would continue and the output folder's state, then stops (nothing written, no weights loaded).

Examples:
  avt finetune --model lgcavmae/ --dataset vggsound-labelled/ --output-dir lgcavmae-vggsound/
  avt finetune --model lgcavmae/ --dataset vggsound-labelled/ --output-dir lgcavmae-vggsound/ --dry-run
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, FinetuneConfig, GROUPS, EPILOG, dry_run_group=RUN)


def run(args: argparse.Namespace) -> int:
    from avt_training.finetune import finetune, plan

    return run_or_plan(finetune, plan, args)
