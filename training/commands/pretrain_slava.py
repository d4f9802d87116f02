"""`avt pretrain-slava`: align frozen CLIP and CLAP towers on triplets by training their projections (SLAVA)."""

from __future__ import annotations

import argparse

from training.commands import HelpFormatter, optional_int

EPILOG = """\
Variants (SLAVA, Sudarsanam et al. 2025; terms are symmetric InfoNCE: av audio-visual, at audio-text, vt visual-text):
  a&v        batches alternate between audio captions (av + at) and visual captions (av + vt)   [SLAVA]
  av         audio-visual captions, at + vt
  av+avloss  audio-visual captions, at + vt + av
  audioclip  audio captions, av + at + vt in one stage (AudioCLIP-style reference)
  wav2clip   stage 1 visual captions, vt; stage 2 audio captions, at, visual projection frozen, text projection
             frozen or trainable (--wav2clip-text-projection) (Wav2CLIP-style reference)

Captions: our triplets have one chosen caption per clip (`caption`), used as the audio-visual caption. Datasets with
`audio_caption`, `visual_caption`, `av_caption` columns (a string or a list of strings per clip, as AVCaps) use
them; a kind a row lacks falls back to `av_caption`, then `caption`. With several captions, each epoch draws one
per clip. See docs/slava.md for the schema and how to convert AVCaps.

Feature cache: the towers are frozen, so their features (every frame's CLIP CLS state averaged, every audio window's
CLAP state averaged, every caption's CLIP text state) are computed once per clip and stored as Parquet parts in
--feature-cache-dir (default OUTPUT_DIR/feature_cache), keyed by the towers (Hub commit or content digest of a
folder) and by clip id. A rerun, another variant or more epochs reuse them; a changed tower writes a new cache.
Training then reads the cache only: an epoch costs a few matrix products per batch.

Contrastive negatives come from the global batch (per-device batch x processes): each process scores its rows
against the all-gathered columns and gradients are averaged, which equals one process with the whole batch.

Examples:
  avt pretrain-slava --dataset vggsound-triplets/:top30 --eval-dataset vggsound-val/ --output-dir slava/
  accelerate launch --num_processes 4 -m avt_triplets.cli pretrain-slava --dataset avcaps-train/ \\
      --eval-dataset avcaps-val/ --variant a&v --output-dir slava-avcaps/
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
        help="triplet dataset (an `avt generate` output folder or a Hub dataset id, optionally with a config such "
        "as top30); repeat to concatenate. Needs clip_id, audio, frames and a caption column",
    )
    data.add_argument("--dataset-split", default="train", help="split to read from every dataset")
    data.add_argument(
        "--eval-dataset",
        dest="eval_datasets",
        action="append",
        metavar="DIR_OR_ID[:CONFIG]",
        help="validation triplets (repeatable); after every epoch the variant's loss on them is logged as eval_loss "
        "and the lowest-loss model of the last stage is saved in OUTPUT_DIR/best/ (SLAVA's model selection)",
    )
    data.add_argument("--eval-dataset-split", default="train", help="split to read from every eval dataset")
    data.add_argument(
        "--num-workers", type=int, default=4, help="DataLoader workers decoding clips for feature extraction"
    )

    model = parser.add_argument_group("model (towers are frozen; only the projections and temperature train)")
    model.add_argument(
        "--variant",
        choices=("a&v", "av", "av+avloss", "audioclip", "wav2clip"),
        default="a&v",
        help="training recipe, see below",
    )
    model.add_argument(
        "--vision-model",
        default="openai/clip-vit-base-patch32",
        help="CLIP checkpoint (Hub id or folder) whose vision tower encodes every frame (paper: ViT-B/32)",
    )
    model.add_argument(
        "--text-model", default=None, help="CLIP checkpoint of the text tower (default: --vision-model)"
    )
    model.add_argument(
        "--audio-model",
        default="laion/clap-htsat-unfused",
        help="CLAP audio tower: a transformers CLAP checkpoint (Hub id or folder), or with --audio-backend msclap "
        "a CLAP_weights_2023.pth file or folder ('none' lets msclap download its 2023 weights)",
    )
    model.add_argument(
        "--audio-backend",
        choices=("clap", "msclap"),
        default="clap",
        help="clap: transformers ClapModel (10 s windows at 48 kHz); msclap: Microsoft CLAP 2023's HTSAT (7 s at 44.1 kHz)",
    )
    model.add_argument(
        "--model-name-or-path",
        help="continue from a SLAVA checkpoint (its towers and projections); the tower options are then ignored",
    )
    model.add_argument("--projection-dim", type=int, default=512, help="shared embedding size (paper: 512)")
    model.add_argument("--temperature", type=float, default=0.07, help="initial InfoNCE temperature (CLIP's)")
    model.add_argument(
        "--fixed-temperature", action="store_true", help="keep the temperature fixed instead of learning it"
    )
    model.add_argument(
        "--no-init-from-clip-projections",
        dest="init_from_clip_projections",
        action="store_false",
        help="initialise the visual and text projections randomly instead of from CLIP's own (used when "
        "--projection-dim equals CLIP's)",
    )
    model.add_argument(
        "--wav2clip-stage1-fraction",
        type=float,
        default=0.5,
        help="wav2clip: share of the optimizer steps spent in stage 1 (visual-text)",
    )
    model.add_argument(
        "--wav2clip-text-projection",
        choices=("frozen", "trainable"),
        default="frozen",
        help="wav2clip: whether stage 2 (audio-text) may change the text projection",
    )

    optim = parser.add_argument_group("optimisation")
    optim.add_argument(
        "--per-device-batch-size",
        type=int,
        default=256,
        help="clips per process and step (negatives: x processes)",
    )
    optim.add_argument("--learning-rate", type=float, default=1e-4, help="AdamW peak learning rate")
    optim.add_argument(
        "--weight-decay",
        type=float,
        default=0.1,
        help="AdamW decoupled weight decay on the projection weights (not on biases or the temperature)",
    )
    optim.add_argument("--adam-beta1", type=float, default=0.9, help="AdamW beta1")
    optim.add_argument("--adam-beta2", type=float, default=0.999, help="AdamW beta2")
    optim.add_argument("--num-epochs", type=int, default=30, help="training epochs (all stages together)")
    optim.add_argument(
        "--max-steps", type=optional_int, help="stop after this many optimizer steps (overrides --num-epochs)"
    )
    optim.add_argument("--warmup-steps", type=int, default=0, help="linear warmup steps of each stage")
    optim.add_argument(
        "--lr-scheduler",
        choices=("cosine", "constant"),
        default="cosine",
        help="learning-rate schedule per stage",
    )
    optim.add_argument(
        "--seed", type=int, default=0, help="seed of the initialisation, data order and captions"
    )

    cache = parser.add_argument_group("feature cache")
    cache.add_argument(
        "--feature-cache-dir",
        help="where the frozen-tower features are cached (default: OUTPUT_DIR/feature_cache); share one between "
        "runs and variants on the same towers",
    )
    cache.add_argument(
        "--feature-batch-size",
        type=int,
        default=32,
        help="clips per tower forward pass while extracting features",
    )
    cache.add_argument(
        "--tower-dtype",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="dtype of the frozen towers while extracting features (bfloat16 halves GPU time and memory)",
    )

    run = parser.add_argument_group("output and logging")
    run.add_argument(
        "--output-dir",
        required=True,
        help="folder for the final model (save_pretrained: projections + tower references), best/, "
        "feature_cache/, metrics.jsonl, train_summary.json and runs/ (TensorBoard)",
    )
    run.add_argument(
        "--logging-steps", type=int, default=10, help="log averaged metrics every N optimizer steps"
    )
    run.add_argument(
        "--report-to",
        nargs="+",
        default=["tensorboard"],
        help="trackers: tensorboard, wandb (if installed), none",
    )
    run.add_argument("--run-name", default="slava-pretrain", help="tracker run / project name")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    import logging

    from training.slava.train import pretrain_slava

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.audio_model is not None and args.audio_model.lower() == "none":
        args.audio_model = None
    args.eval_datasets = args.eval_datasets or []
    pretrain_slava(args)
    return 0
