"""`avt pretrain`: LG-CAV-MAE pretraining on triplet datasets (``accelerate launch avt pretrain ...`` for many GPUs)."""

from __future__ import annotations

import argparse

from training.commands import HelpFormatter, optional_int

EPILOG = """\
Loss: L = L_rec(audio) + L_rec(visual) + lambda1 * L_c(audio-visual) + lambda2 * (L_audio-text + L_visual-text).

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

Examples:
  avt pretrain --dataset vggsound-triplets/ --dataset kinetics-triplets/:top30 --output-dir lgcavmae/ \\
      --eval-dataset vggsound-triplets-test/
  accelerate launch --num_processes 8 -m avt_triplets.cli pretrain --dataset you/triplets:top30 \\
      --init-from-vitmae facebook/vit-mae-base --mixed-precision bf16 --output-dir lgcavmae/ --resume latest
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = HelpFormatter
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        dest="datasets",
        action="append",
        required=True,
        metavar="DIR_OR_ID[:CONFIG]",
        help="triplet dataset: a local `avt generate` output folder or a Hub dataset id, optionally with a config "
        "(top10/top30/top50/random30/...). Repeat to concatenate (paper's best: VGGSound all + Kinetics top30).",
    )
    data.add_argument(
        "--dataset-split", default="train", help="split to read from every dataset (default: train)"
    )
    data.add_argument(
        "--eval-dataset",
        dest="eval_datasets",
        action="append",
        metavar="DIR_OR_ID[:CONFIG]",
        help="validation triplets (same syntax as --dataset, repeatable), evaluated after every epoch as the "
        "official loop does: middle frame, no audio noise, still 75%% masking with masks seeded per clip. Logs "
        "eval_loss and every term (eval_loss_reconstruction_audio/visual, eval_loss_contrastive, "
        "eval_contrastive_accuracy, eval_loss_audio_text, eval_loss_visual_text) and keeps the lowest eval_loss "
        "model in OUTPUT_DIR/best/ (save_pretrained + processor)",
    )
    data.add_argument(
        "--eval-dataset-split", default="train", help="split to read from every eval dataset (default: train)"
    )
    data.add_argument(
        "--eval-steps",
        type=optional_int,
        default=None,
        help="also evaluate every N optimizer steps (default: only at the end of each epoch and of training; "
        "needs --eval-dataset)",
    )
    data.add_argument(
        "--eval-batch-size",
        type=optional_int,
        default=None,
        help="clips per process and eval batch (default: --per-device-batch-size); the contrastive terms of an "
        "eval batch use its clips as negatives, so eval losses depend on it (not on the number of processes when "
        "the eval set is a multiple of it)",
    )
    data.add_argument(
        "--no-audio-noise",
        dest="audio_noise",
        action="store_false",
        help="turn off the official pretraining fbank augmentation (uniform noise + random circular time shift)",
    )
    data.add_argument(
        "--num-workers",
        type=int,
        default=4,
        help="DataLoader worker processes per training process decoding audio/frames (official: 32)",
    )

    model = parser.add_argument_group(
        "model initialisation (default: random init of the paper's architecture)"
    )
    model.add_argument(
        "--model-name-or-path",
        help="start from an LG-CAV-MAE checkpoint: a folder or Hub id (e.g. an official CAV-MAE checkpoint "
        "converted with `python -m modeling_lgcavmae.convert_cavmae_checkpoint`)",
    )
    model.add_argument(
        "--config-name-or-path",
        help="random init with this LGCavMaeConfig (folder or Hub id with a config.json); text_embed_dim follows "
        "the dataset",
    )
    model.add_argument(
        "--init-from-vitmae",
        metavar="DIR_OR_ID",
        help="initialise the encoders and decoder from ImageNet MAE weights (e.g. facebook/vit-mae-base), the "
        "official CAV-MAE initialisation",
    )

    loss = parser.add_argument_group("loss")
    loss.add_argument(
        "--lambda1", type=float, default=0.01, help="weight of the audio-visual contrastive loss"
    )
    loss.add_argument(
        "--lambda2",
        type=float,
        default=0.01,
        help="weight of the audio-text + visual-text contrastive losses",
    )
    loss.add_argument(
        "--contrastive-scope",
        choices=("global", "per-process"),
        default="global",
        help="negatives from the global batch (all-gather with gradients) or from each process's batch "
        "(official); see below",
    )

    optim = parser.add_argument_group("optimisation (defaults: official CAV-MAE recipe, LG-CAV-MAE paper lr)")
    optim.add_argument(
        "--per-device-batch-size",
        type=int,
        default=30,
        help="clips per process and step (official CAV-MAE-Scale+: 30 per GPU x 4 GPUs = 120)",
    )
    optim.add_argument(
        "--gradient-accumulation-steps",
        type=int,
        default=1,
        help="forward/backward passes per optimizer step (adds samples per update, not contrastive negatives)",
    )
    optim.add_argument(
        "--learning-rate",
        type=float,
        default=5e-4,
        help="Adam learning rate (LG-CAV-MAE paper: 5e-4; official CAV-MAE: 5e-5 base, 1e-4 Scale+, 2e-4 Scale++)",
    )
    optim.add_argument("--adam-beta1", type=float, default=0.95, help="Adam beta1 (official 0.95)")
    optim.add_argument("--adam-beta2", type=float, default=0.999, help="Adam beta2 (official 0.999)")
    optim.add_argument(
        "--weight-decay",
        type=float,
        default=5e-7,
        help="Adam (coupled) weight decay on all trainable parameters; the frozen position tables are excluded",
    )
    optim.add_argument("--num-epochs", type=int, default=25, help="training epochs (official 25)")
    optim.add_argument(
        "--max-steps", type=int, help="stop after this many optimizer steps (overrides epochs)"
    )
    optim.add_argument(
        "--lr-scheduler",
        choices=("multistep", "cosine", "constant"),
        default="multistep",
        help="multistep: official, lr x gamma every --lr-decay-step-epochs epochs from --lr-decay-start-epoch, "
        "stepped per epoch; cosine / constant: per optimizer step, with --warmup-steps",
    )
    optim.add_argument(
        "--lr-decay-start-epoch",
        type=int,
        default=10,
        help="multistep: first decay after this epoch (official 10)",
    )
    optim.add_argument(
        "--lr-decay-step-epochs", type=int, default=5, help="multistep: epochs between decays (official 5)"
    )
    optim.add_argument(
        "--lr-decay-gamma", type=float, default=0.5, help="multistep: decay factor (official 0.5)"
    )
    optim.add_argument(
        "--warmup-steps", type=int, default=0, help="linear warmup steps (cosine/constant only)"
    )
    optim.add_argument(
        "--max-grad-norm",
        type=float,
        default=None,
        help="clip the gradient norm to this value (official: no clipping)",
    )
    optim.add_argument(
        "--mixed-precision",
        choices=("no", "bf16", "fp16"),
        default=None,
        help="autocast precision (bf16 recommended on GPUs that support it); default: what `accelerate launch` / "
        "`accelerate config` says, else no",
    )
    optim.add_argument(
        "--seed", type=int, default=0, help="seed of the data order, augmentations, masks and initialisation"
    )

    run = parser.add_argument_group("checkpoints, logging, Hub")
    run.add_argument(
        "--output-dir",
        required=True,
        help="folder for the final model (save_pretrained + processor), checkpoints/, runs/ (TensorBoard), "
        "metrics.jsonl, train_summary.json and best/ (with --eval-dataset)",
    )
    run.add_argument(
        "--checkpoint-steps",
        type=optional_int,
        default=1000,
        help="save the full training state (accelerator.save_state) every N optimizer steps (0: only at the end)",
    )
    run.add_argument(
        "--checkpoints-total-limit",
        type=optional_int,
        default=None,
        help="keep only the newest N checkpoints",
    )
    run.add_argument(
        "--resume",
        metavar="latest|PATH",
        help="continue exactly from a checkpoint (same data order, optimizer, scheduler, RNG): `latest` picks the "
        "newest in --output-dir and starts fresh if there is none",
    )
    run.add_argument(
        "--logging-steps", type=int, default=10, help="log averaged metrics every N optimizer steps"
    )
    run.add_argument(
        "--report-to",
        nargs="+",
        default=["tensorboard"],
        help="trackers: tensorboard, wandb (if installed), none; loss terms, contrastive accuracy, lr, samples/s",
    )
    run.add_argument("--run-name", default="lgcavmae-pretrain", help="tracker run / project name")
    run.add_argument("--push-to-hub", metavar="REPO_ID", help="push the final model to this Hub model repo")
    run.add_argument(
        "--hub-strategy",
        choices=("end", "every_save"),
        default="end",
        help="end: push the final model once; every_save: also upload each checkpoint (background) as saved",
    )
    run.add_argument("--hub-private", action="store_true", help="create the Hub repo as private")
    run.add_argument("--hub-token", help="Hub token (default: the logged-in token / HF_TOKEN)")


def run(args: argparse.Namespace) -> int:
    import logging

    from training.pretrain import pretrain

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pretrain(args)
    return 0
