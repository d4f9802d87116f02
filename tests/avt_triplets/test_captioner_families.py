"""Each captioner family through `avt generate --captioner DIR` (issue 20 §2): the rows equal a plain transformers
call on the same frame and prompt (processor + generate, batch of one, greedy, same dtype), computed here; the
frames take the fast path (preprocessed where they are decoded, captioned from ready inputs); the manifest
records the family's adapter."""

from __future__ import annotations

import csv
import io
import json
import logging

import pyarrow.parquet as pq
import pytest
import torch

from avt import cli
from avt_triplets import schema
from avt_triplets.captioners import TransformersCaptioner
from avt_triplets.image_batches import CollatedBatch
from avt_triplets.media import decode_clip

CLIP_SECONDS = 3.0
# family -> (tiny model fixture, adapter recorded, batch type of the fast path, decode workers)
FAMILIES = {
    "qwen2.5-vl": ("tiny_qwen2_5_vl", "qwen2.5-vl", CollatedBatch, 1),  # one worker: shared-memory transport
    "smolvlm": ("tiny_smolvlm", "idefics3", CollatedBatch, 0),
    "blip-2": ("tiny_blip2", "blip-2", torch.Tensor, 0),
    "llava-1.5": ("tiny_llava", "llava", torch.Tensor, 0),
}


@pytest.fixture(scope="module")
def two_clips(gen_inputs, tmp_path_factory):
    """A list of two clips of different frame shapes (320x240 -> 298x224, 256x144 -> 398x224)."""
    with open(gen_inputs["good_csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    path = tmp_path_factory.mktemp("two_clips") / "two.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([rows[0], rows[2]])
    root = gen_inputs["good_csv"].parent
    return path, root, [(root / row["video_path"], float(row["start_s"])) for row in (rows[0], rows[2])]


def _oracle(model_dir, frames, prompt: str | None, max_new_tokens: int) -> list[str]:
    """What transformers itself captions, one frame at a time."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    text = prompt
    if processor.chat_template is not None:
        turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)
    captions = []
    for frame in frames:
        kwargs = {"images": [frame], "return_tensors": "pt"}
        if text is not None:
            kwargs["text"] = [text]
        inputs = processor(**kwargs)
        with torch.inference_mode():
            out = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens)
        prompt_ids = inputs.get("input_ids")
        if prompt_ids is not None and torch.equal(out[:, : prompt_ids.shape[1]], prompt_ids):
            out = out[:, prompt_ids.shape[1] :]  # decoder-only models repeat the prompt
        decoded = processor.batch_decode(out, skip_special_tokens=True)[0]
        if getattr(processor.tokenizer, "clean_up_tokenization_spaces", False):
            decoded = processor.tokenizer.clean_up_tokenization(decoded)
        captions.append(" ".join(decoded.split()))
    return captions


@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_family_captions_through_the_cli_as_transformers_does(
    family, request, two_clips, tiny_clap, tmp_path, monkeypatch, caplog
):
    fixture, adapter, batch_type, workers = FAMILIES[family]
    model_dir = request.getfixturevalue(fixture)
    batches: list[type] = []
    real_pixels = TransformersCaptioner.caption_pixels

    def recording(self, batch):
        batches.append(type(batch))
        return real_pixels(self, batch)

    def refuse(self, images):
        raise AssertionError("frames were captioned from PIL images in the model process, not the fast path")

    monkeypatch.setattr(TransformersCaptioner, "caption_pixels", recording)
    monkeypatch.setattr(TransformersCaptioner, "caption", refuse)
    listing, root, clips = two_clips
    out = tmp_path / "out"
    argv = [
        "generate", str(listing), "--input-root", str(root), "-o", str(out), "--captioner", str(model_dir), "--scorer", str(tiny_clap),
        "--device", "cpu", "--max-new-tokens", "4", "--clip-seconds", str(CLIP_SECONDS), "--caption-batch-size",
        "8", "--num-workers", str(workers), "--no-progress",
    ]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="avt_triplets.captioners"):
        assert cli.main(argv) == 0
    manifest = json.loads((out / schema.MANIFEST_FILE).read_text())
    record = manifest["captioner"]
    assert record["adapter"] == adapter and record["generation"] == {"do_sample": False, "num_beams": 1}
    assert f"adapter {adapter}: frames preprocessed in the decode workers" in caplog.text
    assert batches and set(batches) == {batch_type}
    rows = pq.read_table(schema.data_path(out, 0)).to_pylist()
    assert len(rows) == 2
    for row, (path, start) in zip(rows, clips):
        decoded = decode_clip(path, start_s=start, duration_s=CLIP_SECONDS, fps=1.0)
        assert len(row["captions"]) == len(decoded.frames) >= 2
        assert row["captions"] == _oracle(model_dir, decoded.frames, record["prompt"], 4)


def test_native_caption_image_size_decodes_frames_at_the_model_s_size_and_stores_224_px(
    two_clips, tiny_smolvlm, tiny_clap, tmp_path, capsys
):
    """SmolVLM's native size is one tile (32 px here): the captioner sees frames decoded at that short side, the
    dataset keeps its 224 px frames, the manifest records the size (a resume at another size is refused)."""
    from PIL import Image

    listing, root, clips = two_clips
    out = tmp_path / "out"
    argv = [
        "generate", str(listing), "--input-root", str(root), "-o", str(out), "--captioner", str(tiny_smolvlm),
        "--scorer", str(tiny_clap), "--device", "cpu", "--max-new-tokens", "4", "--clip-seconds", str(CLIP_SECONDS),
        "--num-workers", "0", "--no-progress", "--caption-image-size", "native",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    record = json.loads((out / schema.MANIFEST_FILE).read_text())["captioner"]
    assert record["image_size"] == 32
    rows = pq.read_table(schema.data_path(out, 0)).to_pylist()
    for row, (path, start) in zip(rows, clips, strict=True):
        small = decode_clip(path, start_s=start, duration_s=CLIP_SECONDS, fps=1.0, short_side=32)
        assert min(small.frames[0].size) == 32
        assert row["captions"] == _oracle(tiny_smolvlm, small.frames, record["prompt"], 4)
        stored = Image.open(io.BytesIO(row["frames"][0]["bytes"]))
        assert min(stored.size) == schema.FRAME_SHORT_SIDE
    capsys.readouterr()
    assert cli.main([*argv[:-1], "112"]) == 2  # the same output at another size: refused, not mixed
    assert "captioner.image_size: 32 (existing) != 112 (now)" in capsys.readouterr().err
