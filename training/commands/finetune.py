"""`avt finetune`: audio-visual classification fine-tuning of an LG-CAV-MAE checkpoint with transformers.Trainer."""

from __future__ import annotations

import argparse

from training.commands import HelpFormatter, optional_int

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

Example:
  avt finetune --model lgcavmae/ --dataset vggsound-labelled/ --output-dir lgcavmae-vggsound/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = HelpFormatter
    data = parser.add_argument_group("data and model")
    data.add_argument(
        "--model",
        "--model-name-or-path",
        dest="model_name_or_path",
        required=True,
        help="pretrained LG-CAV-MAE folder or Hub id (ours, or an official CAV-MAE checkpoint after conversion); "
        "a new classification head is initialised",
    )
    data.add_argument(
        "--dataset",
        dest="datasets",
        action="append",
        required=True,
        metavar="DIR_OR_ID[:CONFIG]",
        help="labelled triplet dataset(s) (a `labels` column); repeat to concatenate",
    )
    data.add_argument("--train-split", default="train", help="split to train on")
    data.add_argument(
        "--eval-dataset",
        dest="eval_datasets",
        action="append",
        metavar="DIR_OR_ID[:CONFIG]",
        help="dataset(s) to evaluate on (default: the training datasets, --eval-split)",
    )
    data.add_argument(
        "--eval-split",
        default="test",
        help="evaluation split ('none' to skip evaluation; skipped if missing)",
    )
    data.add_argument(
        "--label-csv",
        help="class list as the official CSV `index,mid,display_name` (labels may be mids or display names); "
        "default: the sorted labels found in the training data",
    )
    data.add_argument(
        "--problem-type",
        choices=("auto", "single_label_classification", "multi_label_classification"),
        default="auto",
        help="auto: multi-label if any training clip has several labels (AudioSet), else single-label (VGGSound)",
    )
    data.add_argument(
        "--classifier-mode",
        choices=("audio_visual", "audio", "visual", "missing_visual", "missing_audio"),
        default="audio_visual",
        help="which stream the head sees (official modes: multimodal, audioonly, videoonly, missing-modality)",
    )

    optim = parser.add_argument_group("optimisation (defaults: official VGGSound fine-tuning)")
    optim.add_argument(
        "--per-device-batch-size", type=int, default=48, help="training clips per device and step"
    )
    optim.add_argument(
        "--per-device-eval-batch-size", type=int, default=48, help="evaluation clips per device"
    )
    optim.add_argument("--gradient-accumulation-steps", type=int, default=1, help="passes per optimizer step")
    optim.add_argument("--learning-rate", type=float, default=1e-4, help="Adam lr of the pretrained weights")
    optim.add_argument(
        "--head-lr-multiplier",
        type=float,
        default=10.0,
        help="the new head's lr is learning-rate x this (official: 10 VGGSound, 100 AudioSet-20K, 50 AudioSet-2M)",
    )
    optim.add_argument("--adam-beta1", type=float, default=0.95, help="Adam beta1 (official 0.95)")
    optim.add_argument("--adam-beta2", type=float, default=0.999, help="Adam beta2 (official 0.999)")
    optim.add_argument(
        "--weight-decay", type=float, default=5e-7, help="Adam (coupled) weight decay, all weights"
    )
    optim.add_argument("--num-epochs", type=float, default=10, help="training epochs")
    optim.add_argument("--max-steps", type=int, help="stop after N optimizer steps (overrides epochs)")
    optim.add_argument(
        "--lr-scheduler",
        default="multistep",
        help="multistep (official: x gamma every --lr-decay-step-epochs from --lr-decay-start-epoch) or any "
        "transformers scheduler name (cosine, linear, constant_with_warmup, ...)",
    )
    optim.add_argument("--lr-decay-start-epoch", type=int, default=2, help="multistep: first decay epoch")
    optim.add_argument("--lr-decay-step-epochs", type=int, default=1, help="multistep: epochs between decays")
    optim.add_argument("--lr-decay-gamma", type=float, default=0.5, help="multistep: decay factor")
    optim.add_argument(
        "--warmup-steps", type=int, default=0, help="warmup steps (transformers schedulers only)"
    )
    optim.add_argument(
        "--max-grad-norm", type=float, default=0.0, help="gradient clipping (0: off, as official)"
    )
    optim.add_argument(
        "--mixed-precision", choices=("no", "bf16", "fp16"), default="no", help="autocast precision"
    )
    optim.add_argument(
        "--balanced-sampling",
        action="store_true",
        help="official class-balanced sampling (bal=bal): each epoch draws as many clips as the training set "
        "holds, with replacement, clip weight = sum over its labels of 1000/(class count + 0.01); the official "
        "AudioSet-2M and VGGSound recipes use it, AudioSet-20K does not; seeded by --seed, works with "
        "multi-process (accelerate) runs",
    )
    optim.add_argument(
        "--seed", type=int, default=0, help="seed of initialisation, data order and augmentation"
    )

    aug = parser.add_argument_group("augmentation (official fine-tuning values; 0 turns one off)")
    aug.add_argument(
        "--freq-mask", type=int, default=48, help="SpecAugment frequency mask width (torchaudio)"
    )
    aug.add_argument("--time-mask", type=int, default=192, help="SpecAugment time mask width (torchaudio)")
    aug.add_argument(
        "--mixup",
        type=float,
        default=0.5,
        help="probability of mixing a clip with a random other one (audio waveform, image and labels, "
        "lambda ~ Beta(10, 10))",
    )
    aug.add_argument(
        "--label-smoothing",
        type=float,
        default=0.1,
        help="official smoothing: negatives get ls/K, positives are set to 1-ls",
    )
    aug.add_argument(
        "--no-audio-noise",
        dest="audio_noise",
        action="store_false",
        help="turn off the fbank noise + random circular time shift",
    )
    aug.add_argument(
        "--no-multi-frame-eval",
        dest="multi_frame_eval",
        action="store_false",
        help="skip the final multi-frame evaluation (every frame of every clip)",
    )

    run = parser.add_argument_group("running, checkpoints, Hub")
    run.add_argument(
        "--output-dir", required=True, help="folder for checkpoints, the final model and eval_results.json"
    )
    run.add_argument("--num-workers", type=int, default=4, help="DataLoader workers decoding clips")
    run.add_argument("--logging-steps", type=int, default=10, help="log every N optimizer steps")
    run.add_argument(
        "--eval-strategy", choices=("no", "steps", "epoch"), default="epoch", help="when to evaluate"
    )
    run.add_argument(
        "--save-strategy", choices=("no", "steps", "epoch"), default="epoch", help="when to checkpoint"
    )
    run.add_argument("--save-total-limit", type=optional_int, help="keep only the newest N checkpoints")
    run.add_argument(
        "--report-to",
        nargs="+",
        default=["tensorboard"],
        help="trackers: tensorboard, wandb (if installed), none",
    )
    run.add_argument(
        "--resume", metavar="latest|PATH", help="resume a Trainer checkpoint (latest: newest in --output-dir)"
    )
    run.add_argument("--push-to-hub", metavar="REPO_ID", help="push the fine-tuned model to this Hub repo")
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

    from training.finetune import finetune

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.eval_split and args.eval_split.lower() == "none":
        args.eval_split = None
    finetune(args)
    return 0
