"""Issue 8.3: a resumed run writes the same bytes as an uninterrupted one.

Real models give float results that depend on what else is in a batch (see
tests/avt_triplets/test_msclap_scorer.py: one text embedded alone or next to another differs by ~3e-8). The
scorer here exaggerates that to 1e-3 per batch member, and runs out of memory when a long clip is batched
with others, as a big GPU batch would: any state that crosses a shard boundary (a batch size halved by
that OOM, or a text embedding cached in an earlier shard's batch) then shows in the resumed rows.
"""

from __future__ import annotations

import csv
import shutil

import pytest
import torch

from avt_triplets import layout, shards
from avt_triplets.captioner_contract import Captioner
from avt_triplets.pipeline import generate_triplets
from avt_triplets.scorers import ClapScorer, load_scorer


class _BatchSensitiveClap(ClapScorer):
    def embed_prepared_audio(self, clips):
        # a clip longer than the 10 s window has two windows
        if len(clips) > 1 and any(len(windows) > 1 for windows in clips):
            raise RuntimeError("CUDA out of memory (simulated: a long clip in a batch)")
        return super().embed_prepared_audio(clips)

    def _embed_prepared(self, batch):
        return super()._embed_prepared(batch) + 1e-3 * len(batch)

    def _embed_texts(self, texts):
        return super()._embed_texts(texts) + 1e-3 * len(texts)


class _WordCaptioner(Captioner):
    """Captions by frame width, so captions repeat across shards: 'a cat' for the 398 px wide frames of the
    256x144 videos, 'a dog' for the others."""

    name, revision, prompt = "word-captioner", None, None

    def caption(self, images):
        return ["a cat" if image.width > 350 else "a dog" for image in images]


def _fresh_scorer(tiny_clap) -> _BatchSensitiveClap:
    """A new scorer object, as a new process would have."""
    base = load_scorer(str(tiny_clap), device="cpu")
    return _BatchSensitiveClap(
        base.model, base.processor, device=torch.device("cpu"), name=base.name, revision=base.revision
    )


def _reordered_list(gen_inputs, path) -> None:
    """The six good clips in shards of two: [long, short] [short, short] [short, long]. Shard 0 runs out of
    memory and embeds 'a cat' and 'a dog' together; shard 1 must still batch its audio by two and embed
    'a dog' on its own, as a run resumed at shard 1 does."""
    rows = gen_inputs["good"]
    order = [2, 0, 1, 3, 4, 5]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_path", "start_s", "labels"])
        for index in order:
            row = rows[index]
            writer.writerow([str(gen_inputs["root"] / row["video_path"]), row["start_s"], row["labels"]])


def _fresh_captioner(kind: str, request):
    """A new captioner object, as a new process would have: the word captioner, or the tiny Qwen2.5-VL, whose
    variable-size batches (patch rows, grids, left-padded prompts) are collated from what is in each batch."""
    if kind == "words":
        return _WordCaptioner()
    from avt_triplets.captioners import load_captioner

    captioner = load_captioner(request.getfixturevalue("tiny_qwen2_5_vl"), device="cpu", max_new_tokens=3)
    assert captioner.input_plan().layout == "variable"
    return captioner


@pytest.mark.parametrize("captioner", ["words", "qwen2.5-vl"])
def test_resumed_shards_are_byte_identical_to_uninterrupted_ones(
    captioner, gen_inputs, tiny_clap, request, tmp_path
):
    listing = tmp_path / "clips.csv"
    _reordered_list(gen_inputs, listing)
    options = dict(
        input_root=str(gen_inputs["root"]),
        shard_size=2,
        caption_batch_size=8,
        score_batch_size=4,
        num_workers=0,
    )
    options.update(progress=False, rank=0, world_size=1)
    if captioner != "words":
        options["fps"] = 0.25  # 2-3 frames a clip: batches still mix clips and frame shapes, in a few seconds
    whole = tmp_path / "uninterrupted"
    first = _fresh_captioner(captioner, request)
    summary = generate_triplets(listing, whole, first, _fresh_scorer(tiny_clap), **options)
    assert summary.complete and summary.triplets == 6

    resumed = shutil.copytree(whole, tmp_path / "resumed")
    for index in (1, 2):  # killed after shard 0
        shards.remove_shard(resumed, index)
    second = _fresh_captioner(captioner, request)
    again = generate_triplets(listing, resumed, second, _fresh_scorer(tiny_clap), **options)
    assert again.complete and again.processed_this_run == 4
    for index in range(3):
        ours, theirs = layout.data_path(resumed, index), layout.data_path(whole, index)
        assert ours.read_bytes() == theirs.read_bytes(), f"shard {index} differs"
        assert (
            layout.failures_path(resumed, index).read_bytes()
            == layout.failures_path(whole, index).read_bytes()
        )
