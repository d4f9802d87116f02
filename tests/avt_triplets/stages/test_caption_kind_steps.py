"""The worker-stage steps of the visual scorer, the AV captioner and the caption merger, on decoded clips whose
stored frames are real JPEGs (what the steps read) and with models whose answers are known."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
from support.stage_clips import chunk_of, decoded, specs

from avt_triplets.batching import Failed, InputRejected
from avt_triplets.decoding import decode_stored_audio
from avt_triplets.stages.av_captions import KIND, AvCaptionStep, stored_frames
from avt_triplets.stages.caption_merge import CaptionMergeStep
from avt_triplets.stages.visual_choice import VisualChoiceStep
from avt_triplets.stages.worker import CaptionedChunk, ChunkResult


def _jpeg(value: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _clip(spec, index: int, pixels: list[int], failure=None):
    item = decoded(spec, index, pixels, [0.0, 0.0, 1.0], failure=failure)
    return item if failure else replace(item, frames_jpeg=[_jpeg(p) for p in pixels])


def _captioned(items, captions) -> CaptionedChunk:
    return CaptionedChunk(chunk_of(tuple(i.job.clip for i in items)), items, captions, {"caption": 1.0}, 0)


class BrightnessScorer:
    """A (frame, caption) pair scores the frame's brightness when the caption says "bright", else its darkness."""

    def __init__(self):
        self.pairs = 0

    def score_pairs(self, frames, captions):
        self.pairs += len(frames)
        level = np.array([np.asarray(f).mean() / 255.0 for f in frames])
        return np.where(["bright" in c for c in captions], level, 1.0 - level).astype(np.float32)


def test_the_visual_choice_is_the_best_frame_caption_pair_and_skips_empty_or_failed_clips():
    clips = specs(4)
    items = [
        _clip(clips[0], 0, [60, 220, 120]),
        _clip(clips[1], 1, [], failure=("undecodable", "truncated file")),
        _clip(clips[2], 2, [200, 20]),
        _clip(clips[3], 3, [100, 100]),
    ]
    captions = [
        ["a dark room", "a bright sky", "a bright lamp"],  # 220 "bright" (0.86) beats 60 "dark" (0.76)
        None,
        ["", "a dark cave"],  # the empty caption is never scored: the cave (0.92)
        ["a bright sky", Failed("oom")],  # a failed caption: the scorer fails the clip, no choice here
    ]
    scorer = BrightnessScorer()
    chosen = VisualChoiceStep(scorer, batch_size=2)(chunk_of(clips), _captioned(items, captions))
    assert chosen.visual_choice == [1, None, 1, None]
    assert scorer.pairs == 4  # 3 + 1 (the empty caption and the failed clip are not scored)
    assert chosen.captions == captions and "visual_score" in chosen.seconds


class KnownOmni:
    """Candidates name the clip, its frame count, audio length and candidate number; records its seeds."""

    def __init__(self):
        self.calls = []

    def caption_clip(self, frames, audio, *, fps, count, seed, key):
        self.calls.append((key, seed, fps, [f.shape for f in frames], audio.shape))
        if key.startswith("yt/clip02"):
            raise InputRejected("the model cannot use this clip")
        return [f"{key} {len(frames)} frames {k}" for k in range(count)]


def test_av_candidates_come_from_the_stored_frames_and_audio_per_clip():
    clips = specs(3)
    items = [
        _clip(clips[0], 0, [10, 200]),
        _clip(clips[1], 1, [], failure=("undecodable", "truncated file")),
        _clip(clips[2], 2, [50]),
    ]
    omni = KnownOmni()
    out = AvCaptionStep(omni, count=2, seed=5, fps=4.0)(
        chunk_of(clips), _captioned(items, [["a"] * 2, None, ["b"]])
    )
    av = out.extra[KIND]
    assert av[0] == [f"{clips[0].clip_id} 2 frames 0", f"{clips[0].clip_id} 2 frames 1"]
    assert av[1] is None
    assert len(av[2]) == 1 and isinstance(av[2][0], Failed) and "cannot use" in av[2][0].error
    audio_length = decode_stored_audio(items[0].audio_encoded).shape
    assert omni.calls[0] == (clips[0].clip_id, 5, 4.0, [(8, 8, 3), (8, 8, 3)], audio_length)
    assert np.abs(stored_frames(items[0].frames_jpeg)[1].astype(int) - 200).max() <= 2  # the stored JPEG


class KnownMerger:
    def merge(self, audio_captions, visual_captions):
        if any("explode" in a for a in audio_captions):
            raise InputRejected("cannot merge this")
        return [f"{v} while {a}" if a != "silence" else "" for a, v in zip(audio_captions, visual_captions)]


def test_merged_av_captions_join_each_row_and_a_failed_merge_is_a_failure_in_clip_order():
    clips = specs(4)
    rows = [
        {"clip_id": c.clip_id, "video_path": c.video_path, "audio_caption": a, "visual_caption": v}
        for c, a, v in zip(
            clips,
            ["a dog barks", "explode", "silence", "rain falls"],
            ["a yard", "a box", "a wall", "a roof"],
        )
    ]
    earlier = {"clip_id": clips[2].clip_id, "video_path": "x", "reason": "undecodable", "detail": "d"}
    result = ChunkResult(chunk_of(clips), rows=[rows[0], rows[1], rows[3]], failures=[earlier])
    merged = CaptionMergeStep(KnownMerger(), batch_size=2)(chunk_of(clips), result)
    assert [row["av_caption"] for row in merged.rows] == [
        "a yard while a dog barks",
        "a roof while rain falls",
    ]
    assert merged.rows[0]["av_captions"] == ["a yard while a dog barks"]
    assert [(f["clip_id"], f["reason"]) for f in merged.failures] == [
        (clips[1].clip_id, "caption_failed"),
        (clips[2].clip_id, "undecodable"),
    ]
    assert "cannot merge this" in merged.failures[0]["detail"]
    empty = CaptionMergeStep(KnownMerger(), 2)(chunk_of(clips), ChunkResult(chunk_of(clips), rows=[rows[2]]))
    assert empty.rows == [] and "empty caption" in empty.failures[0]["detail"]
