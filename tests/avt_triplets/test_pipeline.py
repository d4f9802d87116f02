"""The generation pipeline end to end with tiny real models: rows, failures, resume, retry, dataset."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from avt_triplets import schema
from avt_triplets.batching import InputRejected
from avt_triplets.captioner_contract import Captioner
from avt_triplets.manifest import IncompatibleOutputError
from avt_triplets.media import decode_clip
from avt_triplets.pipeline import generate_triplets, summarize

METADATA = ["clip_id", "video_path", "start_s", "end_s", "frame_times_s", "captions", "caption_scores"]
METADATA += ["caption", "caption_index", "clap_score", "text_embedding", "labels"]


def read_rows(root: Path) -> dict[str, dict]:
    """Rows of every finished shard by clip_id (media columns left out); fails on a duplicate clip."""
    rows: dict[str, dict] = {}
    for data_file in sorted((root / schema.DATA_DIR).glob("shard-*.parquet")):
        index = int(data_file.stem.split("-")[1])
        if not schema.stats_path(root, index).is_file():
            continue
        for row in pq.read_table(data_file, columns=METADATA).to_pylist():
            assert row["clip_id"] not in rows, f"{row['clip_id']} written twice"
            rows[row["clip_id"]] = row
    return rows


def read_failures(root: Path) -> dict[str, str]:
    failures: dict[str, str] = {}
    for path in sorted((root / schema.FAILURES_DIR).glob("shard-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            assert row["clip_id"] not in failures
            failures[row["video_path"]] = row["reason"]
    return failures


def assert_same_rows(actual: dict[str, dict], expected: dict[str, dict]) -> None:
    assert sorted(actual) == sorted(expected)
    for clip_id, row in expected.items():
        other = actual[clip_id]
        assert other["captions"] == row["captions"], clip_id
        assert other["caption"] == row["caption"] and other["caption_index"] == row["caption_index"]
        np.testing.assert_allclose(other["caption_scores"], row["caption_scores"], atol=1e-5)
        np.testing.assert_allclose(other["text_embedding"], row["text_embedding"], atol=1e-5)


def test_rows_failures_and_dataset(reference_run, gen_inputs, clap_scorer):
    rows = read_rows(reference_run)
    good = {Path(r["video_path"]).with_suffix("").as_posix(): r for r in gen_inputs["good"]}
    assert sorted(rows) == sorted(good)
    assert read_failures(reference_run) == gen_inputs["bad"]

    for clip_id, row in rows.items():
        scores = np.asarray(row["caption_scores"])
        assert len(row["captions"]) == len(scores) == len(row["frame_times_s"]) > 0
        assert row["caption_index"] == int(np.argmax(scores))  # first maximum on ties
        assert row["caption"] == row["captions"][row["caption_index"]]
        assert row["clap_score"] == pytest.approx(scores.max())
        assert row["labels"] == good[clip_id]["labels"].split(";")
        assert row["start_s"] == pytest.approx(float(good[clip_id]["start_s"]))
        # one frame per second: the first frame (10 fps videos) at or after 0, 1, 2, ... s of the clip
        assert all(k - 1e-6 <= t < k + 0.1 for k, t in enumerate(row["frame_times_s"]))

    # The stored scores are the scorer's cosines, recomputed here from the source video.
    for clip_id in sorted(rows)[:2]:
        row = rows[clip_id]
        clip = decode_clip(
            gen_inputs["root"] / good[clip_id]["video_path"],
            start_s=row["start_s"],
            sampling_rates=(clap_scorer.sampling_rate,),
        )
        audio = clap_scorer.embed_audio([clip.audio[clap_scorer.sampling_rate]])
        texts = clap_scorer.embed_text(row["captions"])
        np.testing.assert_allclose(row["caption_scores"], (texts @ audio.T)[:, 0], atol=1e-4)
        np.testing.assert_allclose(
            row["text_embedding"], clap_scorer.embed_text([row["caption"]])[0], atol=1e-4
        )

    summary = summarize(reference_run)
    assert (summary.shards_done, summary.shards_total) == (5, 5)
    assert (summary.clips, summary.triplets) == (13, 6)
    assert sum(summary.failures_by_reason.values()) == 7
    assert all(summary.seconds[stage] >= 0 for stage in ("decode", "caption", "score", "write"))

    import datasets

    assert (reference_run / schema.CARD_FILE).is_file()
    dataset = datasets.load_dataset(str(reference_run), split="train")
    assert sorted(dataset["clip_id"]) == sorted(rows)
    first = dataset[0]
    audio = first["audio"].get_all_samples()
    assert audio.sample_rate == schema.AUDIO_SAMPLING_RATE
    expected_samples = round((first["end_s"] - first["start_s"]) * schema.AUDIO_SAMPLING_RATE)
    assert abs(audio.data.shape[-1] - expected_samples) <= 1
    assert len(first["frames"]) == len(first["captions"])
    assert min(first["frames"][0].size) == schema.FRAME_SHORT_SIDE


def test_rerun_skips_finished_shards_and_refuses_other_options(
    reference_run, reference_options, gen_inputs, blip2_captioner, clap_scorer, tmp_path
):
    out = shutil.copytree(reference_run, tmp_path / "out")
    before = {p.name: p.stat().st_mtime_ns for p in (out / schema.DATA_DIR).iterdir()}
    summary = generate_triplets(
        gen_inputs["csv"], out, blip2_captioner, clap_scorer, rank=0, world_size=1, **reference_options
    )
    assert summary.processed_this_run == 0 and summary.complete
    assert {p.name: p.stat().st_mtime_ns for p in (out / schema.DATA_DIR).iterdir()} == before

    with pytest.raises(IncompatibleOutputError, match="fps"):
        generate_triplets(
            gen_inputs["csv"],
            out,
            blip2_captioner,
            clap_scorer,
            rank=0,
            world_size=1,
            **{**reference_options, "fps": 2.0},
        )
    with pytest.raises(IncompatibleOutputError, match="input.digest"):
        generate_triplets(
            gen_inputs["good_csv"],
            out,
            blip2_captioner,
            clap_scorer,
            rank=0,
            world_size=1,
            **reference_options,
        )

    fresh = generate_triplets(
        gen_inputs["good_csv"],
        out,
        blip2_captioner,
        clap_scorer,
        rank=0,
        world_size=1,
        overwrite=True,
        limit=1,
        num_workers=0,
        **reference_options,
    )
    assert (fresh.shards_total, fresh.triplets) == (1, 1)
    assert sorted(p.name for p in (out / schema.DATA_DIR).glob("*.parquet")) == ["shard-00000.parquet"]


def test_retry_failed_rewrites_those_shards_only(
    reference_run, reference_options, gen_inputs, blip2_captioner, clap_scorer, tmp_path
):
    inputs = shutil.copytree(gen_inputs["root"], tmp_path / "inputs")
    out = shutil.copytree(reference_run, tmp_path / "out")
    before_rows = read_rows(out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / schema.DATA_DIR).iterdir()}
    # The missing file turns up; everything else still fails.
    shutil.copyfile(inputs / gen_inputs["good"][1]["video_path"], inputs / "bad/missing.mp4")

    summary = generate_triplets(
        inputs / "mixed.csv",
        out,
        blip2_captioner,
        clap_scorer,
        rank=0,
        world_size=1,
        retry_failed=True,
        num_workers=0,
        **reference_options,
    )
    assert summary.processed_this_run == len(gen_inputs["bad"])
    rows = read_rows(out)  # also asserts no clip twice
    assert set(rows) == set(before_rows) | {"bad/missing"}
    assert_same_rows({k: v for k, v in rows.items() if k != "bad/missing"}, before_rows)
    failures = read_failures(out)
    assert failures == {k: v for k, v in gen_inputs["bad"].items() if k != "bad/missing.mp4"}
    assert (summary.clips, summary.triplets) == (13, 7)
    # A shard with no failed clip (the first holds only good videos) is not rewritten.
    assert (out / schema.DATA_DIR / "shard-00000.parquet").stat().st_mtime_ns == mtimes["shard-00000.parquet"]


class _FlakyCaptioner(Captioner):
    """The tiny BLIP-2, except that any batch holding a 398x224 frame (the 256x144 videos) raises."""

    def __init__(self, inner):
        self.inner, self.name, self.revision, self.prompt = inner, inner.name, inner.revision, inner.prompt
        self.calls: list[int] = []

    def caption(self, images):
        self.calls.append(len(images))
        if any(image.size == (398, 224) for image in images):
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.inner.caption(images)


class _FlakyScorer:
    """The tiny CLAP, except that it rejects audio shorter than 2.5 s (a clip it cannot use)."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.revision = inner.name, inner.revision
        self.sampling_rate, self.embed_dim = inner.sampling_rate, inner.embed_dim

    def embed_audio(self, waveforms):
        if any(w.size < 2.5 * self.sampling_rate for w in waveforms):
            raise InputRejected("audio too short (simulated)")
        return self.inner.embed_audio(waveforms)

    def embed_text(self, texts):
        return self.inner.embed_text(texts)


def test_model_failures_are_recorded_and_the_run_completes(
    reference_options, gen_inputs, blip2_captioner, clap_scorer, tmp_path
):
    captioner, scorer = _FlakyCaptioner(blip2_captioner), _FlakyScorer(clap_scorer)
    summary = generate_triplets(
        gen_inputs["good_csv"],
        tmp_path / "out",
        captioner,
        scorer,
        rank=0,
        world_size=1,
        num_workers=0,
        **{**reference_options, "shard_size": 6},
    )
    with open(gen_inputs["good_csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = {}
    for i, row in enumerate(rows):  # sizes cycle 320x240, 160x120, 256x144; durations 2, 3, 10.5 s
        if i % 3 == 2:
            expected[row["video_path"]] = "caption_failed"
        elif i % 3 == 0:
            expected[row["video_path"]] = "score_failed"
    assert read_failures(tmp_path / "out") == expected
    assert summary.complete and summary.triplets == 2
    assert summary.failures_by_reason == {"caption_failed": 2, "score_failed": 2}
    assert 1 in captioner.calls  # bisected down to single frames before giving up


@pytest.mark.parametrize("how", ["raises", "ends"])
def test_a_broken_decode_stream_never_commits_a_short_shard(
    how, monkeypatch, reference_options, gen_inputs, blip2_captioner, clap_scorer, tmp_path
):
    import avt_triplets.distributors.local as pipeline

    real = pipeline.iter_decoded

    def dies_after_four(*args, **kwargs):
        for count, item in enumerate(real(*args, **kwargs)):
            if count == 4:
                if how == "raises":
                    raise RuntimeError("decode workers crashed too often (simulated)")
                return
            yield item

    monkeypatch.setattr(pipeline, "iter_decoded", dies_after_four)
    out = tmp_path / "out"
    options = {**reference_options, "shard_size": 3, "num_workers": 0, "rank": 0, "world_size": 1}
    summary = generate_triplets(gen_inputs["good_csv"], out, blip2_captioner, clap_scorer, **options)
    assert summary.shards_done == 1 and len(summary.shard_errors) == 1  # shard 1 got 1 of 3 clips
    assert not schema.stats_path(out, 1).exists() and not schema.data_path(out, 1).exists()

    monkeypatch.setattr(pipeline, "iter_decoded", real)
    resumed = generate_triplets(gen_inputs["good_csv"], out, blip2_captioner, clap_scorer, **options)
    assert resumed.complete and resumed.triplets == len(gen_inputs["good"])
    assert resumed.processed_this_run == 3
