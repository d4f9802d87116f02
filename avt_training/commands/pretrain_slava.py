"""`avt pretrain-slava`: align frozen CLIP and CLAP towers on triplets by training their projections (SLAVA).

The options are the fields of ``avt_training.slava.config.SlavaPretrainConfig`` (help, defaults, groups).
"""

from __future__ import annotations

import argparse

from avt_training.commands import add_config_arguments, run_or_plan
from avt_training.slava.config import GROUPS, RUN, SlavaPretrainConfig

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
per clip. See docs/slava.md for the schema and how to convert AVCaps. A dataset without caption columns (a
labelled-only output of `avt generate --captioner none`) is refused before the towers load: SLAVA trains on text.
`avt evaluate retrieval` still gives audio<->visual retrieval on such a dataset.

Feature cache: the towers are frozen, so their features (every frame's CLIP CLS state averaged, every audio window's
CLAP state averaged, every caption's CLIP text state) are computed once per clip and stored as Parquet parts in
--feature-cache-dir (default OUTPUT_DIR/feature_cache), keyed by the towers (Hub commit or content digest of a
folder) and by clip id. A rerun, another variant or more epochs reuse them; a changed tower writes a new cache.
Training then reads the cache only: an epoch costs a few matrix products per batch.

Contrastive negatives come from the global batch (per-device batch x processes): each process scores its rows
against the all-gathered columns and gradients are averaged, which equals one process with the whole batch.

Hub: --push-to-hub REPO_ID uploads OUTPUT_DIR at the end: the model (config, projections, its code, so
AutoModel.from_pretrained(REPO_ID, trust_remote_code=True) loads it), best/, train_summary.json and metrics.jsonl.
Never uploaded: the feature cache (tower features of your clips, large, useful only next to the same dataset) and
runs/ (TensorBoard, with --report-to tensorboard). --hub-strategy every_save also uploads best/ in the background after each better validation
(needs --eval-dataset). The towers are named, not uploaded: a model trained on local tower folders loads only
where they exist, so train on Hub tower ids (the defaults) to share it.

Dry run: --dry-run prints the clips, steps per epoch and per stage, schedule, batch, the towers (Hub commit or
local content digest) and the output folder's state, then stops (nothing written, no tower loaded; no GPU-hour
figure: the cost model has none for SLAVA).

Examples:
  avt pretrain-slava --dataset vggsound-triplets/:top30 --eval-dataset vggsound-val/ --output-dir slava/
  accelerate launch --num_processes 4 -m avt pretrain-slava --dataset avcaps-train/ \\
      --eval-dataset avcaps-val/ --variant a&v --output-dir slava-avcaps/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, SlavaPretrainConfig, GROUPS, EPILOG, dry_run_group=RUN)


def run(args: argparse.Namespace) -> int:
    from avt_training.slava.plan import plan
    from avt_training.slava.train import pretrain_slava

    return run_or_plan(pretrain_slava, plan, args)
