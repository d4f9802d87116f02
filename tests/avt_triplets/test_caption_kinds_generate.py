"""Issue 21 §1 through the CLI: `avt generate` with --visual-scorer (a tiny CLIP), --audio-captioner (a tiny
Qwen2-Audio) and --av-caption-from llm:DIR (a tiny Qwen2 chat LM) over two 1-second clips, and a second run with
--av-captioner (a tiny Qwen2.5-Omni thinker). Each model is loaded by the product's real loading code from a folder.

The rows are checked against plain transformers calls made here on what the rows store (frames, audio, captions):
the visual caption is the caption of the (frame, caption) pair CLIP scores highest, the merged AV caption is the
LLM's greedy answer to the documented prompt, the omni candidates are the thinker's greedy then seeded sampled
answers, one of which the CLAP scorer picks. One deleted shard comes back byte for byte; contradicting options
are one `error:` line before any model loads.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from avt import cli
from avt_triplets import layout, schema
from avt_triplets.av_captioners import DEFAULT_AV_PROMPT, SAMPLING
from avt_triplets.caption_mergers import DEFAULT_MERGE_PROMPT
from avt_triplets.decoding import decode_stored_audio
from avt_triplets.extra_models import clip_seed

MAX_NEW_TOKENS, FPS, SEED = 3, 2, 3


def generate_argv(clips, out, tiny_blip2, tiny_clap, *extra: str, limit: int = 2) -> list[str]:
    return [
        "generate", str(clips.parent), "--output-dir", str(out), "--captioner", str(tiny_blip2),
        "--scorer", str(tiny_clap), "--device", "cpu", "--fps", str(FPS), "--clip-seconds", "1", "--limit", str(limit),
        "--max-new-tokens", str(MAX_NEW_TOKENS), "--seed", str(SEED), "--shard-size", "1", "--num-workers", "0",
        "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def merged_run(
    short_clips, tiny_blip2, tiny_clap, tiny_clip, tiny_qwen2_audio, tiny_caption_llm, tmp_path_factory
):
    out = tmp_path_factory.mktemp("kinds_run") / "out"
    argv = generate_argv(
        short_clips, out, tiny_blip2, tiny_clap, "--visual-scorer", str(tiny_clip),
        "--audio-captioner", str(tiny_qwen2_audio), "--av-caption-from", f"llm:{tiny_caption_llm}",
    )  # fmt: skip
    assert cli.main(argv) == 0
    return out, argv, pq.read_table(out / "data").to_pylist()


def _frames(row: dict) -> list[np.ndarray]:
    from PIL import Image

    return [np.array(Image.open(io.BytesIO(f["bytes"])).convert("RGB")) for f in row["frames"]]


def _clap_text(clap_scorer, caption: str) -> np.ndarray:
    embedding = np.asarray(clap_scorer.embed_text([caption]))[0]
    return embedding / np.linalg.norm(embedding)


def test_clip_chooses_the_visual_caption_and_the_llm_merges_audio_and_visual(
    merged_run, tiny_clip, tiny_caption_llm, clap_scorer
):
    from transformers import AutoModelForCausalLM, AutoTokenizer, CLIPModel, CLIPProcessor

    out, _, rows = merged_run
    clip, clip_processor = (
        CLIPModel.from_pretrained(tiny_clip).eval(),
        CLIPProcessor.from_pretrained(tiny_clip),
    )
    llm, tokenizer = (
        AutoModelForCausalLM.from_pretrained(tiny_caption_llm).eval(),
        AutoTokenizer.from_pretrained(tiny_caption_llm),
    )
    assert len(rows) == 2
    for row in rows:
        assert set(schema.MODALITY_CAPTION_COLUMNS) <= set(row)
        captions, frames = row["captions"], _frames(row)
        assert len(frames) == len(captions) == FPS and row["visual_captions"] == captions
        with torch.no_grad():
            pairs = clip(**clip_processor(text=captions, images=frames, return_tensors="pt", padding=True))
        best = int(np.argmax((pairs.image_embeds * pairs.text_embeds).sum(-1).numpy()))
        assert row["visual_caption"] == captions[best]
        np.testing.assert_allclose(
            row["visual_text_embedding"], _clap_text(clap_scorer, captions[best]), rtol=1e-4, atol=1e-5
        )
        assert row["caption"] == captions[row["caption_index"]]  # the paper's choice is untouched

        prompt = DEFAULT_MERGE_PROMPT.format(
            audio_caption=row["audio_caption"], visual_caption=row["visual_caption"]
        )
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        generated = llm.generate(**ids, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
        merged = tokenizer.decode(generated[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        assert row["av_captions"] == [merged] and row["av_caption"] == merged

    manifest = json.loads((out / layout.MANIFEST_FILE).read_text())
    assert manifest["visual_scorer"]["name"] == str(tiny_clip) and manifest["visual_scorer"]["weights_digest"]
    merger = manifest["caption_merger"]
    assert (merger["name"], merger["prompt"], merger["dtype"]) == (
        str(tiny_caption_llm),
        DEFAULT_MERGE_PROMPT,
        "float32",
    )
    assert merger["generation"] == {"do_sample": False, "num_beams": 1, "max_new_tokens": MAX_NEW_TOKENS}
    assert "av_captioner" not in manifest
    card = (out / layout.CARD_FILE).read_text()
    assert (
        f"| visual scorer | `{tiny_clip.name}` (revision unknown): visual_caption is the frame caption"
        in card
    )
    assert str(tiny_caption_llm) not in card  # local models by folder name only (public.public_manifest)
    assert f"| AV caption merger prompt | `{DEFAULT_MERGE_PROMPT.replace(chr(10), ' ')}` |" in card
    assert "| caption prompt | none |" in card  # the merger's prompt does not answer for the captioner's


def test_a_deleted_shard_comes_back_byte_for_byte_and_dropping_a_model_is_refused(merged_run, capsys):
    out, argv, _ = merged_run
    shard = layout.data_path(out, 1)
    kept = shard.read_bytes()
    for path in (shard, layout.stats_path(out, 1), layout.failures_path(out, 1)):
        path.unlink(missing_ok=True)
    assert cli.main(argv) == 0
    assert shard.read_bytes() == kept

    capsys.readouterr()
    at = argv.index("--visual-scorer")
    assert cli.main(argv[:at] + argv[at + 2 :]) == 2  # the same output without the visual scorer
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "visual_scorer.name" in err and len(err.splitlines()) == 1


def test_the_omni_candidates_are_the_thinkers_greedy_then_seeded_samples(
    short_clips, tiny_blip2, tiny_clap, tiny_omni, tmp_path
):
    from transformers import AutoProcessor, Qwen2_5OmniThinkerForConditionalGeneration

    out = tmp_path / "out"
    extra = ("--av-captioner", str(tiny_omni), "--av-captions", "2")
    assert cli.main(generate_argv(short_clips, out, tiny_blip2, tiny_clap, *extra, limit=1)) == 0
    (row,) = pq.read_table(out / "data").to_pylist()

    processor = AutoProcessor.from_pretrained(tiny_omni)
    model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tiny_omni).eval()
    turn = [{"type": "video"}, {"type": "audio"}, {"type": "text", "text": DEFAULT_AV_PROMPT}]
    text = processor.apply_chat_template([{"role": "user", "content": turn}], add_generation_prompt=True)
    audio = decode_stored_audio(row["audio"])
    inputs = processor(
        text=[text],
        videos=[_frames(row)],
        audio=[audio],
        videos_kwargs={"fps": float(FPS)},
        return_tensors="pt",
    )

    def plain(**settings) -> str:
        generated = model.generate(**inputs, **settings, max_new_tokens=MAX_NEW_TOKENS)
        new = generated[:, inputs["input_ids"].shape[1] :]
        return processor.batch_decode(new, skip_special_tokens=True)[0].strip()

    greedy = plain(do_sample=False)
    torch.manual_seed(clip_seed(SEED, row["clip_id"], 1))
    assert row["av_captions"] == [greedy, plain(**SAMPLING)]
    assert row["av_caption"] in row["av_captions"]  # the scorer's CLAP choice, as for every caption kind
    record = json.loads((out / layout.MANIFEST_FILE).read_text())["av_captioner"]
    assert (record["name"], record["candidates"], record["prompt"]) == (str(tiny_omni), 2, DEFAULT_AV_PROMPT)
    assert record["sampling"] == SAMPLING and "caption_merger" not in json.loads(
        (out / layout.MANIFEST_FILE).read_text()
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--av-captioner", "x", "--av-caption-from", "llm:y"), "give one of them"),
        (("--av-caption-from", "llm:y"), "needs --audio-captioner"),
        (("--audio-captioner", "a", "--av-caption-from", "gpt4"), "llm:MODEL"),
        (("--audio-captioner", "a", "--av-caption-from", "llm:y", "--av-caption-prompt", "{audio_caption}"),
         "{visual_caption}"),
        (("--av-captions", "3"), "give --av-captioner"),
    ],
)  # fmt: skip
def test_contradicting_caption_kind_options_are_one_error_line(short_clips, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert cli.main(generate_argv(short_clips, out, "blip2-dir", "clap-dir", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()
