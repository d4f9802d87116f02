"""Today's VLM families caption through `avt generate --captioner DIR` exactly as a plain transformers call does
(issue 20 §2): for each family's tiny model, the rows' captions equal what the documented usage gives for the same
frame and prompt (the processor, batch of one, greedy ``generate``), computed here; the frames are preprocessed in
the decode workers (fixed-size or variable-size layout), never in the model process; the manifest records the
family's adapter and prompt."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from avt.cli import main as avt_main
from avt_triplets.captioners import TransformersCaptioner
from avt_triplets.media import decode_clip

FPS, CLIP_SECONDS, MAX_NEW_TOKENS = 0.5, 2.0, 4  # one frame per clip


@dataclass(frozen=True)
class Family:
    adapter: str  # the manifest's captioner.adapter
    prompt: str  # the family's default prompt (README: recommended prompt per family)
    layout: str  # how the decode workers hand frames over: "fixed" or "variable"
    chat: bool = True  # prompted through the chat template (else a raw task prefix)
    workers: int = 0  # decode worker processes (1: inputs cross to the model process in shared memory)


FAMILIES = {
    "gemma3": Family("gemma3", "Describe this image in one short sentence.", "fixed"),
    "paligemma": Family("paligemma", "caption en", "fixed", chat=False),
    "llava_onevision": Family("llava-onevision", "Describe this image in one short sentence.", "variable"),
    "internvl": Family(
        "internvl", "Please describe the image shortly.", "variable", workers=1
    ),  # 5 or 3 tiles
    "qwen3_vl": Family("qwen3-vl", "Describe this image in one sentence.", "variable"),
}


@pytest.fixture(scope="module")
def two_clips(gen_inputs, tmp_path_factory) -> Path:
    """A folder of two clips (a red circle at 320×240, a green square at 256×144; a frame each): one batch holds
    frames of both shapes, so variable-size layouts are padded and collated."""
    folder = tmp_path_factory.mktemp("family_clips")
    for row in (gen_inputs["good"][0], gen_inputs["good"][5]):
        shutil.copy(gen_inputs["root"] / row["video_path"], folder / Path(row["video_path"]).name)
    return folder


def plain_transformers_captions(model_dir: Path, frames, family: Family) -> list[str]:
    """The documented usage of the family, one frame at a time: processor (through the chat template, with the
    image in the user turn) + greedy ``generate``; the new tokens decoded without special tokens."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    captions = []
    for frame in frames:
        if family.chat:
            turn = [{"type": "image", "image": frame}, {"type": "text", "text": family.prompt}]
            inputs = processor.apply_chat_template(
                [{"role": "user", "content": turn}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
        else:
            inputs = processor(images=frame, text=family.prompt, return_tensors="pt")
        generated = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=MAX_NEW_TOKENS)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        captions.append(" ".join(processor.batch_decode(new_tokens, skip_special_tokens=True)[0].split()))
    return captions


@pytest.fixture
def captioner_calls(monkeypatch) -> dict[str, int]:
    """How often the run captioned raw frames (``caption``: preprocessing in the model process) and ready inputs
    (``caption_pixels``: preprocessed by the decode workers)."""
    calls = {"caption": 0, "caption_pixels": 0}
    for method in calls:
        original = getattr(TransformersCaptioner, method)

        def counted(self, batch, _original=original, _method=method):
            calls[_method] += 1
            return _original(self, batch)

        monkeypatch.setattr(TransformersCaptioner, method, counted)
    return calls


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_a_family_captions_through_generate_as_plain_transformers_does(
    model_type, tiny_vlm, tiny_clap, two_clips, captioner_calls, tmp_path, caplog, capsys
):
    import pyarrow.parquet as pq

    family, model_dir, out = FAMILIES[model_type], tiny_vlm(model_type), tmp_path / "out"
    argv = [
        "generate", str(two_clips), "--output", str(out), "--captioner", str(model_dir), "--scorer", str(tiny_clap),
        "--device", "cpu", "--fps", str(FPS), "--clip-seconds", str(CLIP_SECONDS),
        "--max-new-tokens", str(MAX_NEW_TOKENS), "--caption-batch-size", "8", "--num-workers", str(family.workers), "--no-progress",
    ]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="avt_triplets.captioners"):
        assert avt_main(argv) == 0

    record = json.loads((out / "manifest.json").read_text())["captioner"]
    assert (record["adapter"], record["prompt"], record["dtype"]) == (
        family.adapter,
        family.prompt,
        "float32",
    )
    assert (
        f"adapter {family.adapter}: frames preprocessed in the decode workers ({family.layout} inputs)"
        in (caplog.text)
    )
    assert captioner_calls["caption"] == 0 and captioner_calls["caption_pixels"] > 0

    rows = pq.read_table(out / "data").to_pylist()
    assert sorted(row["video_path"] for row in rows) == sorted(p.name for p in two_clips.iterdir())
    for row in rows:
        clip = decode_clip(two_clips / row["video_path"], duration_s=CLIP_SECONDS, fps=FPS)
        assert len(clip.frames) == len(row["captions"]) == 1
        assert row["captions"] == plain_transformers_captions(model_dir, clip.frames, family), row[
            "video_path"
        ]
    assert len({caption for row in rows for caption in row["captions"]}) > 1  # the frames reach the captions

    # resumable: the same command again loads the family with the identity the manifest records and redoes nothing
    written = {path.name: path.stat().st_mtime_ns for path in (out / "data").iterdir()}
    assert avt_main(argv) == 0
    assert {path.name: path.stat().st_mtime_ns for path in (out / "data").iterdir()} == written
    capsys.readouterr()
    assert avt_main([*argv, "--caption-prompt", "What do you hear?"]) == 2  # another prompt: other rows
    assert "captioner.prompt" in capsys.readouterr().err
