"""The worker stage on its own (avt_triplets/stages/worker.py): decoded clips of one chunk in, rows and failures
out, with a captioner and a scorer whose outputs are known, so which caption wins is not left to a tiny model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from support.stage_clips import chunk_of, decoded, specs

from avt_triplets import schema
from avt_triplets.captioner_contract import Captioner
from avt_triplets.stages.worker import PHASES, ChunkWorker, PackStep, PhaseClock

# captions by a frame's pixel value, and each text's embedding: the best caption is the one along the audio
CAPTIONS = {10: "a dog barking", 11: "rain on a roof", 12: "", 13: "a dog barking"}
TEXTS = {"a dog barking": [1.0, 0.0, 0.0], "rain on a roof": [0.0, 1.0, 0.0], "": [0.0, 0.0, 1.0]}


class KnownCaptioner(Captioner):
    """Captions RGB frames (no image preprocessor) by their pixel value; counts the frames it saw."""

    name, revision, prompt = "known/captioner", None, None

    def __init__(self):
        self.frames = 0

    def caption(self, images):
        self.frames += len(images)
        return [CAPTIONS[int(np.asarray(image).mean())] for image in images]


class KnownScorer:
    """Embeds a waveform as itself (3 samples = a 3-d vector) and a text by ``TEXTS``; counts the texts."""

    def __init__(self):
        self.texts: list[str] = []

    def embed_audio(self, waveforms):
        return np.stack([np.asarray(w, np.float32) for w in waveforms])

    def embed_text(self, texts):
        self.texts += texts
        return np.asarray([TEXTS[t] for t in texts], np.float32)


OPTIONS = SimpleNamespace(caption_batch_size=4, score_batch_size=2, seed=0, fps=1.0)


def test_the_caption_closest_to_the_audio_wins_and_failures_keep_their_place():
    clips = specs(4)
    items = [
        decoded(clips[0], 0, [10, 11], audio=[0.9, 0.1, 0.0]),  # dog audio: "a dog barking" (frame 0)
        decoded(clips[1], 1, [], [], failure=("undecodable", "truncated file")),
        decoded(clips[2], 2, [12, 11], audio=[0.0, 0.2, 0.9]),  # closest to "", which is never chosen
        decoded(clips[3], 3, [11, 13], audio=[0.1, 0.0, 0.0]),  # "a dog barking" again (frame 1)
    ]
    scorer = KnownScorer()
    result = ChunkWorker(KnownCaptioner(), scorer, OPTIONS)(chunk_of(clips), items)

    assert [row["clip_id"] for row in result.rows] == [clips[0].clip_id, clips[2].clip_id, clips[3].clip_id]
    assert [(row["caption"], row["caption_index"]) for row in result.rows] == [
        ("a dog barking", 0),
        ("rain on a roof", 1),
        ("a dog barking", 1),
    ]
    assert result.rows[0]["captions"] == ["a dog barking", "rain on a roof"]
    assert result.rows[0]["clap_score"] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    assert result.rows[1]["clap_score"] == pytest.approx(0.2 / np.hypot(0.2, 0.9))
    assert np.allclose(np.linalg.norm(result.rows[0]["text_embedding"]), 1.0)
    assert result.failures == [
        {"clip_id": clips[1].clip_id, "video_path": clips[1].video_path, "reason": "undecodable",
         "detail": "truncated file"}
    ]  # fmt: skip
    assert sorted(scorer.texts) == sorted(TEXTS)  # each distinct caption of the chunk embedded once
    assert (result.captioned_frames, result.scored_texts, result.empty_captions) == (6, 3, 1)
    assert result.clips == 4 and set(result.seconds) == {"decode", "caption", "score"}
    assert set(result.rows[0]) == set(schema.triplet_features())  # the columns the writer encodes


def test_a_clip_whose_every_caption_is_empty_is_a_caption_failure():
    clips = specs(1)
    result = ChunkWorker(KnownCaptioner(), KnownScorer(), OPTIONS)(
        chunk_of(clips), [decoded(clips[0], 0, [12, 12], audio=[0.0, 0.0, 1.0])]
    )
    assert result.rows == []
    assert [(f["reason"], f["detail"]) for f in result.failures] == [
        ("caption_failed", "every frame's caption is empty")
    ]


class KnownVideoCaptioner(Captioner):
    """``--caption-unit clip`` with known answers: candidate k of a clip is the caption of prompt k, the text
    ``CAPTIONS[first frame's pixel value + k]``; a clip whose first frame is 20 is rejected (as an unusable input)."""

    name, revision, prompt = "known/video-captioner", None, None
    caption_unit, clip_prompts = "clip", ("first prompt", "second prompt")

    def __init__(self):
        self.calls: list[tuple[list[int], float, str]] = []

    def caption(self, images):
        raise AssertionError("clip captions never caption single frames")

    def caption_video(self, frames, fps, prompt):
        from avt_triplets.batching import InputRejected

        pixels = [int(np.asarray(frame).mean()) for frame in frames]
        self.calls.append((pixels, fps, prompt))
        if pixels[0] == 20:
            raise InputRejected("video too long for the model")
        return CAPTIONS[pixels[0] + self.clip_prompts.index(prompt)]


def test_clip_captions_are_one_video_per_prompt_and_clap_picks_the_candidate():
    """Each decodable clip is captioned once per prompt from all its frames in time order (duplicates kept), one
    video per call; CLAP chooses among the candidates as among frame captions; a rejected video fails its clip."""
    clips = specs(4)
    items = [
        decoded(clips[0], 0, [10, 10, 11], audio=[0.1, 0.9, 0.0]),  # "a dog barking" / "rain on a roof": rain
        decoded(clips[1], 1, [], [], failure=("undecodable", "truncated file")),
        decoded(clips[2], 2, [20, 10], audio=[1.0, 0.0, 0.0]),
        decoded(clips[3], 3, [11], audio=[0.0, 0.0, 1.0]),  # "rain on a roof" / "": never the empty one
    ]
    captioner = KnownVideoCaptioner()
    options = SimpleNamespace(caption_batch_size=4, score_batch_size=2, seed=0, fps=0.5)
    result = ChunkWorker(captioner, KnownScorer(), options)(chunk_of(clips), iter(items))

    assert captioner.calls[:2] == [([10, 10, 11], 0.5, "first prompt"), ([10, 10, 11], 0.5, "second prompt")]
    assert [row["clip_id"] for row in result.rows] == [clips[0].clip_id, clips[3].clip_id]
    assert [row["captions"] for row in result.rows] == [
        ["a dog barking", "rain on a roof"],
        ["rain on a roof", ""],
    ]
    assert [(row["caption"], row["caption_index"]) for row in result.rows] == [
        ("rain on a roof", 1),
        ("rain on a roof", 0),
    ]
    assert [(f["clip_id"], f["reason"]) for f in result.failures] == [
        (clips[1].clip_id, "undecodable"),
        (clips[2].clip_id, "caption_failed"),
    ]
    assert "video too long" in result.failures[1]["detail"]
    assert (result.captioned_frames, result.empty_captions) == (4, 1)  # captions made (2 per decodable clip)


def test_without_models_the_stage_packs_labelled_rows():
    """``--captioner none``: the model-free PackStep (the labels-only host's worker); rows carry no caption column."""
    step = PackStep()
    assert not step.captioned and ChunkWorker(KnownCaptioner(), KnownScorer(), OPTIONS).captioned
    clips = specs(2, labels=("Rain", "Thunder"))
    items = [
        decoded(clips[0], 0, [10], audio=[1.0]),
        decoded(clips[1], 1, [], [], failure=("no_audio_stream", "")),
    ]
    result = step(chunk_of(clips), iter(items))  # a stream of arriving clips
    assert [row["labels"] for row in result.rows] == [["Rain", "Thunder"]]
    assert not set(schema.CAPTION_COLUMNS) & set(result.rows[0])
    assert set(result.rows[0]) == set(schema.triplet_features(with_captions=False))
    assert result.rows[0]["original_start_s"] == 10.0 and result.rows[0]["frames"][0]["path"] is None
    assert [f["reason"] for f in result.failures] == ["no_audio_stream"]
    assert result.seconds == {"decode": 1.0}


def test_the_phase_clock_adds_up_each_phase():
    clock = PhaseClock()
    for phase in ("decode", "write", "decode"):
        with clock.timed(phase):
            pass
    assert set(clock.seconds) == {"decode", "write"} <= set(PHASES)
    assert all(seconds >= 0 for seconds in clock.seconds.values())
