"""Issue 12 §1: preprocessing moved into the decode workers changes no caption, score or row.

The references are the paths the pipeline took before: the captioner's ``caption`` of PIL images (its processor
called in the model process, on the whole batch), the scorers' feature extraction over a whole batch's windows,
and every frame captioned, duplicates included.
"""

from __future__ import annotations

import csv
import pickle
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from avt_triplets.captioners import load_captioner
from avt_triplets.model_inputs import distinct_frames, frame_inputs, rows_of
from avt_triplets.scorers import load_scorer
from avt_triplets.windowed_scorer import l2_normalise, window_starts


def _frames(count: int = 5) -> list[np.ndarray]:
    """Decoded-looking frames of two sizes (short side 224), random content."""
    rng = np.random.default_rng(0)
    shapes = [(224, 398, 3), (224, 298, 3)]
    return [rng.integers(0, 256, shapes[k % 2], dtype=np.uint8) for k in range(count)]


@pytest.fixture(scope="module")
def captioners(tiny_blip2, tiny_llava):
    return {
        "blip2": load_captioner(tiny_blip2, device="cpu", max_new_tokens=6),
        "blip2-prompt": load_captioner(tiny_blip2, device="cpu", max_new_tokens=6, prompt="a photo of"),
        "llava": load_captioner(tiny_llava, device="cpu", max_new_tokens=6),
    }


@pytest.mark.parametrize("kind", ["blip2", "blip2-prompt", "llava"])
def test_captions_of_worker_preprocessed_frames_equal_the_processor_path(captioners, kind):
    captioner = captioners[kind]
    preprocess = captioner.image_preprocessor()
    assert preprocess is not None, "BLIP-2 and LLaVA-1.5 have fixed-size image inputs"
    frames = [frame for frame in _frames(5) for _ in range(2)][:8]  # same-sized frames, shuffled sizes
    reference = captioner.caption([Image.fromarray(frame) for frame in frames])
    shipped = pickle.loads(pickle.dumps(preprocess))  # as a spawned worker or a Ray task receives it
    prepared = shipped(frames)
    assert set(prepared) == {"pixel_values"}, "a fixed-size layout ships pixels only (one prompt for all)"
    pixel_values = prepared["pixel_values"]
    assert pixel_values.dtype == np.float32 and pixel_values.shape[0] == len(frames)
    rows = [{"pixel_values": pixel_values[k]} for k in range(len(frames))]  # rows of several clips: one batch
    assert captioner.caption_pixels(captioner.stack(rows, pin=False)) == reference
    processor_pixels = captioner.processor(images=[Image.fromarray(f) for f in frames], return_tensors="pt")
    assert np.array_equal(pixel_values, processor_pixels["pixel_values"].numpy())


def _reference_clap_embeddings(scorer, waveforms):
    """What ClapScorer did before: one feature-extractor call over every window of the batch."""
    windows, owner = [], []
    for index, wave in enumerate(waveforms):
        for start in window_starts(wave.size, scorer.window_samples, scorer.window_samples // 2):
            windows.append(wave[start : start + scorer.window_samples])
            owner.append(index)
    features = scorer.feature_extractor(
        [w.astype(np.float64) for w in windows], sampling_rate=scorer.sampling_rate, return_tensors="pt"
    )
    with torch.inference_mode():
        output = scorer.model.get_audio_features(
            input_features=features["input_features"].to(torch.float32),
            is_longer=torch.zeros_like(features["is_longer"], dtype=torch.bool),
        )
    emb = l2_normalise(getattr(output, "pooler_output", output).numpy())
    sums = np.zeros((len(waveforms), emb.shape[1]), dtype=np.float64)
    np.add.at(sums, np.asarray(owner), emb)
    return l2_normalise(sums.astype(np.float32))


def _waveforms(rate: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [
        (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32) for seconds in (2.0, 10.5, 4.0)
    ]


def test_clap_embeddings_of_worker_prepared_audio_equal_the_batch_path(tiny_clap):
    scorer = load_scorer(str(tiny_clap), device="cpu")
    waveforms = _waveforms(scorer.sampling_rate)
    prepare = pickle.loads(pickle.dumps(scorer.audio_preprocessor()))
    prepared = [prepare(wave) for wave in waveforms]
    assert [len(p) for p in prepared] == [1, 2, 1]
    reference = _reference_clap_embeddings(scorer, waveforms)
    assert np.array_equal(scorer.embed_prepared_audio(prepared), reference)
    assert np.array_equal(scorer.embed_audio(waveforms), reference)


def test_msclap_embeddings_of_worker_prepared_audio_equal_the_batch_path(tiny_msclap):
    scorer = load_scorer("msclap:2023", weights=tiny_msclap, device="cpu")
    waveforms = _waveforms(scorer.sampling_rate)
    windows = []
    owner = []
    for index, wave in enumerate(waveforms):  # what MsclapScorer did before, on the whole batch
        for start in window_starts(wave.size, scorer.window_samples, scorer.window_samples // 2):
            window = wave[start : start + scorer.window_samples]
            windows.append(np.tile(window, -(-scorer.window_samples // window.size))[: scorer.window_samples])
            owner.append(index)
    with torch.inference_mode():
        emb = l2_normalise(scorer.model.audio_encoder(torch.from_numpy(np.stack(windows)))[0].numpy())
    sums = np.zeros((len(waveforms), emb.shape[1]), dtype=np.float64)
    np.add.at(sums, np.asarray(owner), emb)
    reference = l2_normalise(sums.astype(np.float32))
    prepare = pickle.loads(pickle.dumps(scorer.audio_preprocessor()))
    assert np.array_equal(scorer.embed_prepared_audio([prepare(w) for w in waveforms]), reference)


def test_exact_duplicate_frames_are_found_by_their_pixels():
    a, b = _frames(2)
    nearly_a = a.copy()
    nearly_a[0, 0, 0] ^= 1
    rows, firsts = distinct_frames([a, b, a.copy(), nearly_a, b])
    assert rows.tolist() == [0, 1, 0, 2, 1] and firsts == [0, 1, 3]
    inputs = frame_inputs([a, a.copy(), a.copy()], None)
    assert inputs.rows.tolist() == [0, 0, 0] and inputs.unique.shape == (1, *a.shape)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_blip2_gets_pixel_values_in_its_vision_towers_dtype(tiny_blip2, dtype):
    """The decode workers hand over float32 ``pixel_values``; the vision tower must get them in its own dtype.
    Under float16 BLIP-2 keeps its Q-Former in float32, so ``model.dtype`` says float32: the inputs and the
    manifest must follow the vision tower instead (bfloat16 casts the whole model)."""
    captioner = load_captioner(tiny_blip2, device="cpu", dtype=dtype, max_new_tokens=4)
    # the float16 trap: the first parameter is the Q-Former's
    assert captioner.model.dtype == (torch.float32 if dtype == "float16" else torch.bfloat16)
    assert captioner.model.vision_model.embeddings.patch_embedding.weight.dtype == getattr(torch, dtype)
    seen: list[torch.dtype] = []
    hook = captioner.model.vision_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("pixel_values", args[0] if args else None).dtype),
        with_kwargs=True,
    )
    try:
        frames = _frames(2)
        rows = rows_of(captioner.image_preprocessor()(frames))
        by_pixels = captioner.caption_pixels(captioner.stack(rows, pin=False))
        by_images = captioner.caption([Image.fromarray(frame) for frame in frames])
    finally:
        hook.remove()
    assert seen == [getattr(torch, dtype)] * 2
    assert by_pixels == by_images and all(by_pixels)
    assert captioner.dtype == dtype  # what the manifest records


def _still_and_moving_list(folder, gen_inputs, still_clip):
    """A list of the still clip (identical frames) and two moving clips, copied into ``folder``."""
    listing = folder / "clips.csv"
    with open(listing, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_path", "start_s", "labels"])
        writer.writerow([still_clip.name, 0, "still"])
        for k, row in enumerate(gen_inputs["good"][:2]):
            shutil.copyfile(gen_inputs["root"] / row["video_path"], folder / f"moving{k}.mp4")
            writer.writerow([f"moving{k}.mp4", row["start_s"], row["labels"]])
    return listing


def _every_frame_distinct(frames):
    """What frame deduplication would be if it were off: every frame its own row."""
    return np.arange(len(frames), dtype=np.int64), list(range(len(frames)))


def test_duplicate_frames_are_captioned_once_and_rows_equal_a_run_without_deduplication(
    gen_inputs, blip2_captioner, clap_scorer, still_clip, monkeypatch, tmp_path
):
    """The still clip's 8 identical frames are captioned once, each distinct caption is text-embedded once, and
    the shards are byte-identical to a run captioning every frame; the captions are those of the old path
    (every frame through ``caption``, the processor in the model process)."""
    from avt_triplets import model_inputs
    from avt_triplets.decoding import DecodeJob, DecodeSettings, decode_job
    from avt_triplets.inputs import load_inputs
    from avt_triplets.pipeline import generate_triplets

    listing = _still_and_moving_list(tmp_path, gen_inputs, still_clip)
    options = dict(clip_seconds=4.0, fps=2.0, caption_batch_size=32, score_batch_size=8, num_workers=1)
    options.update(progress=False, rank=0, world_size=1)

    def run(out):
        captioned: list[int] = []
        embedded: list[str] = []
        real_pixels, real_text = blip2_captioner.caption_pixels, clap_scorer.embed_text
        blip2_captioner.caption_pixels = lambda rows: captioned.append(len(rows)) or real_pixels(rows)
        clap_scorer.embed_text = lambda texts: embedded.extend(texts) or real_text(texts)
        try:
            summary = generate_triplets(listing, out, blip2_captioner, clap_scorer, **options)
        finally:
            del blip2_captioner.caption_pixels, clap_scorer.embed_text
        assert summary.complete and summary.triplets == 3
        return captioned[1:], embedded[1:]  # without the preflight's frame and caption

    captioned, embedded = run(tmp_path / "dedup")
    with monkeypatch.context() as patch:  # the decode worker is forked after this: it inherits the patch
        patch.setattr(model_inputs, "distinct_frames", _every_frame_distinct)
        captioned_all, embedded_all = run(tmp_path / "every_frame")

    clips = load_inputs(listing).clips
    settings = DecodeSettings(fps=2.0, clip_seconds=4.0, scorer_sampling_rate=clap_scorer.sampling_rate)
    items = [decode_job(DecodeJob(i, 0, clip), settings) for i, clip in enumerate(clips)]
    frames = [frame for item in items for frame in item.frames]
    still_frames = len(items[0].frames)
    assert still_frames == 8 and all(np.array_equal(items[0].frames[0], f) for f in items[0].frames)
    assert sum(captioned_all) == len(frames)
    assert sum(captioned) == len(frames) - (still_frames - 1), "the still's 8 identical frames captioned once"

    reference = blip2_captioner.caption([Image.fromarray(frame) for frame in frames])
    distinct = list(dict.fromkeys(reference))
    assert len(distinct) < len(reference), "no caption repeats: nothing to embed once"
    assert embedded == embedded_all == distinct, "each distinct caption of the chunk embedded once"

    def shard_bytes(root):
        return {p.name: p.read_bytes() for p in sorted((root / "data").glob("*.parquet"))}

    assert shard_bytes(tmp_path / "dedup") == shard_bytes(tmp_path / "every_frame")
    rows = pq.read_table(tmp_path / "dedup" / "data").to_pylist()
    assert [c for row in rows for c in row["captions"]] == reference
