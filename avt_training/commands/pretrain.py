"""`avt pretrain`: LG-CAV-MAE pretraining on triplet datasets (``accelerate launch avt pretrain ...`` for many GPUs).

The options are the fields of ``avt_training.pretrain_config.PretrainConfig`` (help, defaults, groups).
"""

from __future__ import annotations

import argparse

from avt_training.commands import add_config_arguments, run_or_plan
from avt_training.pretrain_config import GROUPS, RUN, PretrainConfig

EPILOG = """\
Loss: L = w_rec (L_rec(audio) + L_rec(visual)) + λ1 L_c(audio-visual) + λ2 (L_audio-text + L_visual-text), with
w_rec = --reconstruction-weight, λ1 = --contrastive-weight and λ2 = --text-contrastive-weight (the model config
fields of the same names; the temperatures likewise). The texts: --text-source caption (default, the paper)
contrasts both streams with the chosen frame caption's CLAP embedding (text_embedding); --text-source modality
contrasts audio with the audio caption's (audio_text_embedding) and frames with the visual caption's
(visual_text_embedding), a research option (datasets with an audio captioner's columns; refused otherwise).

Contrastive negatives: with --contrastive-scope global (default) each contrastive term sees the global batch
(per-device batch x number of processes) through an all-gather with gradients; each process computes its own
rows against all columns (open_clip's local-loss semantics), which equals one process holding the whole
global batch. --contrastive-scope per-process is the official CAV-MAE behaviour (negatives from the local
batch only). Gradient accumulation does NOT add negatives: the negatives of a step are those of one forward
pass, whatever --gradient-accumulation-steps is.

Validation (--eval-dataset): the official CAV-MAE per-epoch check. Eval clips use the middle frame, no fbank
noise, and are STILL masked at 75% (masks seeded per clip, so the numbers are comparable between evaluations);
eval_* losses go to the trackers and metrics.jsonl, and the lowest eval_loss model is saved in OUTPUT_DIR/best/.
Evaluation draws nothing from the training random streams: a run with it trains the same weights as one without.

Dry run: --dry-run prints the rows, steps, epochs, schedule, effective batch, the checkpoint --resume would
continue and the output folder's state, then stops (nothing written, no weights loaded).

Examples:
  avt pretrain --dataset vggsound-triplets/ --output-dir lgcavmae/ --resume latest --dry-run
  avt pretrain --dataset vggsound-triplets/ --dataset kinetics-triplets/:top30 --output-dir lgcavmae/ \\
      --eval-dataset vggsound-triplets-test/
  accelerate launch --num_processes 8 -m avt pretrain --dataset you/triplets:top30 \\
      --init-from-vitmae facebook/vit-mae-base --mixed-precision bf16 --output-dir lgcavmae/ --resume latest
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, PretrainConfig, GROUPS, EPILOG, dry_run_group=RUN)


def run(args: argparse.Namespace) -> int:
    from avt_training.pretrain import plan, pretrain

    return run_or_plan(pretrain, plan, args)
