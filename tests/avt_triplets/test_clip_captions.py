"""Whole-clip captions (issue 20 §3): `avt generate --caption-unit clip` gives each clip window candidates made
from its sampled frames as ONE video, equal to what a plain transformers call makes (processor with ``videos=``,
greedy ``generate``, batch of one), computed here; CLAP picks among them as among frame captions; the manifest, the
card and `avt filter` name the unit; a resume with another unit and an image-only family are refused in one line."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from avt.cli import main as avt_main
from avt_triplets.captioner_adapters import CLIP_PROMPTS
from avt_triplets.media import decode_clip

CLIP_SECONDS, FPS, MAX_NEW_TOKENS = 2.0, 1.0, 4  # two frames per clip window: one video of two frames


@pytest.fixture(scope="module")
def one_clip(gen_inputs, tmp_path_factory) -> Path:
    """A folder of one short synthetic clip (2 s, 320×240)."""
    folder = tmp_path_factory.mktemp("clip_unit")
    row = gen_inputs["good"][0]
    shutil.copy(gen_inputs["root"] / row["video_path"], folder / Path(row["video_path"]).name)
    return folder


def plain_video_captions(model_dir: Path, frames, prompts: list[str]) -> list[str]:
    """The documented usage of a video family, one prompt at a time: the chat template's video turn, the
    processor's ``videos=`` with the frames (already sampled, at FPS), greedy ``generate``, the new tokens."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    video = np.stack([np.asarray(frame.convert("RGB")) for frame in frames])
    metadata = {"total_num_frames": len(frames), "fps": FPS, "frames_indices": list(range(len(frames)))}
    captions = []
    for prompt in prompts:
        turn = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)
        inputs = processor(
            text=[text],
            videos=[video],
            video_metadata=[metadata],
            do_sample_frames=False,
            return_tensors="pt",
        )
        generated = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=MAX_NEW_TOKENS)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        captions.append(" ".join(processor.batch_decode(new_tokens, skip_special_tokens=True)[0].split()))
    return captions


def _argv(clips: Path, out: Path, model_dir: Path, clap: Path, *extra: str) -> list[str]:
    return [
        "generate", str(clips), "--output-dir", str(out), "--captioner", str(model_dir), "--scorer", str(clap),
        "--device", "cpu", "--fps", str(FPS), "--clip-seconds", str(CLIP_SECONDS), "--max-new-tokens",
        str(MAX_NEW_TOKENS), "--num-workers", "0", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("family", "adapter"), [("qwen2_5_vl", "qwen2.5-vl"), ("llava_onevision", "llava-onevision")]
)
def test_clip_captions_are_a_plain_transformers_video_call_scored_by_clap(
    family, adapter, request, tiny_vlm, tiny_clap, one_clip, tmp_path, caplog, capsys
):
    model_dir = request.getfixturevalue("tiny_qwen2_5_vl") if family == "qwen2_5_vl" else tiny_vlm(family)
    out = tmp_path / "out"
    argv = _argv(one_clip, out, model_dir, tiny_clap, "--caption-unit", "clip", "--clip-captions", "2")
    with caplog.at_level(logging.INFO, logger="avt_triplets.captioners"):
        assert avt_main(argv) == 0
    assert f"adapter {adapter}: frames preprocessed in the model process (video inputs)" in caplog.text

    record = json.loads((out / "manifest.json").read_text())["captioner"]
    assert (record["adapter"], record["caption_unit"]) == (adapter, "clip")
    assert record["clip_prompts"] == list(CLIP_PROMPTS[:2])
    (row,) = pq.read_table(out / "data").to_pylist()
    clip = decode_clip(one_clip / row["video_path"], duration_s=CLIP_SECONDS, fps=FPS)
    assert len(clip.frames) == len(row["frames"]) == 2
    assert row["captions"] == plain_video_captions(model_dir, clip.frames, list(CLIP_PROMPTS[:2]))
    assert len(row["caption_scores"]) == 2
    best = int(np.argmax(row["caption_scores"]))  # CLAP chooses among the candidates as among frame captions
    assert (row["caption_index"], row["caption"]) == (best, row["captions"][best])
    assert row["clap_score"] == pytest.approx(row["caption_scores"][best])

    card = (out / "README.md").read_text()
    assert "| captions | per clip window of up to 2 frames, as one video |" in card
    assert "made with `avt generate --caption-unit clip`" in card
    assert (
        "| `caption_index` | int32 | the candidate of `caption` (its prompt: manifest captioner.clip_prompts) |"
        in card
    )

    if family != "qwen2_5_vl":
        return  # the rest is the same for every family: once is enough
    # resumable with the same unit (nothing redone); another unit is refused in one line, before models load
    written = {path.name: path.stat().st_mtime_ns for path in (out / "data").iterdir()}
    assert avt_main(argv) == 0
    assert {path.name: path.stat().st_mtime_ns for path in (out / "data").iterdir()} == written
    capsys.readouterr()
    assert avt_main(_argv(one_clip, out, model_dir, tiny_clap)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert "captioner.caption_unit: 'clip' (existing) != 'frame' (now)" in err[0]

    assert avt_main(["filter", str(out), "--top", "50"]) == 0
    assert "captions per clip window of up to 2 frames" in capsys.readouterr().out


def test_an_image_only_family_is_refused_for_clip_captions_before_loading(
    tiny_blip2, tiny_clap, one_clip, tmp_path, capsys, monkeypatch
):
    import transformers

    def no_weights(*args, **kwargs):
        raise AssertionError("the captioner's weights were loaded before the refusal")

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", no_weights)
    out = tmp_path / "out"
    assert avt_main(_argv(one_clip, out, tiny_blip2, tiny_clap, "--caption-unit", "clip")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --caption-unit clip:")
    assert "'blip-2' model" in err[0]
    for family in ("qwen2.5-vl", "llava-onevision", "internvl", "qwen3-vl"):
        assert family in err[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--clip-captions", "2"], "--clip-captions only applies to --caption-unit clip"),
        (["--caption-unit", "clip", "--clip-captions", "9"], "--clip-captions must be 1 to 4"),
        (["--caption-unit", "video"], "--caption-unit"),
    ],
)
def test_clip_caption_options_are_checked_in_one_line(extra, message, one_clip, tmp_path, capsys):
    argv = ["generate", str(one_clip), "--output-dir", str(tmp_path / "out"), *extra]
    try:
        code = avt_main(argv)
    except SystemExit as exit_:  # argparse's own refusal (an unknown choice), one line too
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_clip_prompts_are_the_documented_list_with_the_given_prompt_first():
    from avt_triplets.options import ModelOptions

    assert ModelOptions(caption_unit="clip").clip_prompts == CLIP_PROMPTS[:3]
    given = ModelOptions(caption_unit="clip", clip_captions=2, caption_prompt="What sounds here?")
    assert given.clip_prompts == ("What sounds here?", CLIP_PROMPTS[1])
    assert ModelOptions().clip_prompts == ()


@pytest.mark.parametrize(("family", "keys"), [("qwen3_vl", 2), ("internvl", 1)])
def test_every_declared_video_family_captions_a_video_as_transformers_does(family, keys, tiny_vlm):
    """The other video families, through the loaded captioner (no CLI run): the adapter's video inputs carry the
    keys it declares, and ``caption_video`` equals the plain transformers call on the same frames."""
    from PIL import Image

    from avt_triplets.captioners import load_captioner

    model_dir = tiny_vlm(family)
    captioner = load_captioner(
        model_dir, device="cpu", max_new_tokens=MAX_NEW_TOKENS, clip_prompts=CLIP_PROMPTS[:1]
    )
    assert captioner.input_plan().layout == "video" and captioner.image_preprocessor() is None
    declared = captioner.adapter.video.keys
    assert len(declared) == keys
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    text = captioner.adapter.render_video_prompt(captioner.processor, CLIP_PROMPTS[0])
    assert set(declared) <= set(captioner.adapter.video_inputs(captioner.processor, text, frames, FPS).keys())
    expected = plain_video_captions(model_dir, [Image.fromarray(f) for f in frames], [CLIP_PROMPTS[0]])
    assert [captioner.caption_video(frames, FPS, CLIP_PROMPTS[0])] == expected


def test_the_run_summary_counts_clip_caption_candidates_not_frames(tmp_path):
    from avt_triplets.summary import GenerationSummary

    counts = dict(shards_total=1, shards_done=1, clips=4, triplets=0, failures_by_reason={}, seconds={})
    summary = GenerationSummary(tmp_path, **counts, captioned_frames=8, empty_captions=6, caption_unit="clip")
    assert "empty         6 of 8 clip caption candidates" in summary.format()
    assert summary.empty_result.startswith(
        "the captioner gave 6 of 8 clip caption candidates an empty caption"
    )
    frames = GenerationSummary(tmp_path, **counts, captioned_frames=8, empty_captions=6)
    assert "empty         6 of 8 frame captions" in frames.format()
