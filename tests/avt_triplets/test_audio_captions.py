"""Issue 21 §1 (generation): `avt generate --audio-captioner DIR` captions each clip's audio with an audio-language
model (a tiny random Qwen2-Audio built from its real config and processor classes), the CLAP scorer scores every
candidate against the clip's audio, and the rows carry the audio column group.

One tiny run over two 1-second clips (module fixture) serves every check: the captions equal a plain transformers
call (processor + greedy ``generate``, batch of one) on the same stored audio window and prompt, computed here; the
scores are the scorer's; the manifest records the audio captioner's identity; a deleted shard comes back byte for
byte; another ``--audio-caption-windows`` is refused before any model loads; ``avt filter --by
audio_caption_score`` ranks by the new column and the card lists the group.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import wave
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from avt import cli
from avt_triplets import layout, models, schema, selection
from avt_triplets.audio_caption_contract import IDENTITY_FIELDS

WINDOWS, MAX_NEW_TOKENS = 2, 4
PROMPT = "What sound is this?"


@pytest.fixture(scope="module")
def two_clips(short_clips, tmp_path_factory) -> Path:
    """Two 1 s clips of different classes (their tones differ), in a folder of their own."""
    folder = tmp_path_factory.mktemp("audio_clips")
    with open(short_clips, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in (rows[0], rows[-1]):
        shutil.copy(short_clips.parent / row["video_path"], folder / Path(row["video_path"]).name)
    return folder


def generate_argv(clips: Path, out: Path, tiny_blip2, tiny_clap, audio_model, *extra: str) -> list[str]:
    return [
        "generate", str(clips), "--output-dir", str(out), "--captioner", str(tiny_blip2), "--scorer", str(tiny_clap),
        "--audio-captioner", str(audio_model), "--audio-caption-windows", str(WINDOWS),
        "--audio-caption-prompt", PROMPT, "--device", "cpu", "--fps", "1", "--clip-seconds", "1",
        "--max-new-tokens", str(MAX_NEW_TOKENS), "--shard-size", "1", "--num-workers", "0", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def audio_run(two_clips, tiny_blip2, tiny_clap, tiny_qwen2_audio, tmp_path_factory):
    out = tmp_path_factory.mktemp("audio_run") / "out"
    argv = generate_argv(two_clips, out, tiny_blip2, tiny_clap, tiny_qwen2_audio)
    assert cli.main(argv) == 0
    return out, argv


def stored_audio(row: dict) -> np.ndarray:
    """The row's ``audio`` column (16-bit PCM WAV) as float32, read with the standard library."""
    with wave.open(io.BytesIO(row["audio"]["bytes"]), "rb") as reader:
        assert reader.getframerate() == schema.AUDIO_SAMPLING_RATE
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def plain_transformers_captions(model_dir: Path, audio: np.ndarray) -> list[str]:
    """Qwen2-Audio's documented usage on each of the clip's ``WINDOWS`` equal windows, one at a time: the chat
    template with the audio in the user turn, the processor, greedy ``generate``, the new tokens decoded."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    processor = AutoProcessor.from_pretrained(model_dir)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(model_dir).eval()
    turn = [{"type": "audio", "audio_url": "window.wav"}, {"type": "text", "text": PROMPT}]
    text = processor.apply_chat_template(
        [{"role": "user", "content": turn}], add_generation_prompt=True, tokenize=False
    )
    edges = [round(k * len(audio) / WINDOWS) for k in range(WINDOWS + 1)]
    captions = []
    for start, end in zip(edges[:-1], edges[1:]):
        inputs = processor(text=text, audio=[audio[start:end]], sampling_rate=16_000, return_tensors="pt")
        generated = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=MAX_NEW_TOKENS)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        captions.append(" ".join(processor.batch_decode(new_tokens, skip_special_tokens=True)[0].split()))
    return captions


def test_audio_captions_are_a_plain_transformers_call_on_the_stored_audio(
    audio_run, tiny_qwen2_audio, clap_scorer
):
    out, _ = audio_run
    rows = pq.read_table(out / "data").to_pylist()
    assert len(rows) == 2
    for row in rows:
        assert set(schema.AUDIO_CAPTION_COLUMNS) <= set(row)
        assert row["audio_captions"] == plain_transformers_captions(tiny_qwen2_audio, stored_audio(row))
        scores = row["audio_caption_scores"]
        assert (
            len(scores) == WINDOWS and np.isfinite(scores).all() and np.isfinite(row["audio_caption_score"])
        )
        best = selection.best_caption(
            [np.nan if selection.is_empty_caption(c) else s for c, s in zip(row["audio_captions"], scores)]
        )
        assert (
            row["audio_caption"] == row["audio_captions"][best] and row["audio_caption_score"] == scores[best]
        )
        # the same CLAP text tower and normalisation as text_embedding
        expected = np.asarray(clap_scorer.embed_text([row["audio_caption"]]))[0]
        expected = expected / np.linalg.norm(expected)
        np.testing.assert_allclose(row["audio_text_embedding"], expected, rtol=1e-4, atol=1e-5)
    assert len({c for row in rows for c in row["audio_captions"]}) > 1  # the audio reaches the captions

    record = json.loads((out / layout.MANIFEST_FILE).read_text())["audio_captioner"]
    assert set(IDENTITY_FIELDS) <= set(record)
    assert (record["name"], record["prompt"], record["windows"], record["adapter"]) == (
        str(tiny_qwen2_audio),
        PROMPT,
        WINDOWS,
        "qwen2_audio",
    )
    assert record["weights_digest"] and record["dtype"] == "float32"


def test_a_deleted_shard_comes_back_byte_for_byte_and_other_windows_are_refused(
    audio_run, capsys, monkeypatch
):
    out, argv = audio_run
    shard = layout.data_path(out, 1)
    kept = shard.read_bytes()
    for path in (shard, layout.stats_path(out, 1), layout.failures_path(out, 1)):
        path.unlink(missing_ok=True)
    assert cli.main(argv) == 0
    assert shard.read_bytes() == kept

    capsys.readouterr()
    monkeypatch.setattr(models, "load_models", lambda *args, **kwargs: pytest.fail("a model loaded"))
    windows = argv.index("--audio-caption-windows") + 1
    assert cli.main([*argv[:windows], "3", *argv[windows + 1 :]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "audio_captioner.windows: 2 (existing) != 3 (now)" in err
    assert len(err.splitlines()) == 1
    # without the audio captioner the rows would lack its columns: refused too (both before any model loads)
    start = argv.index("--audio-captioner")
    assert cli.main(argv[:start] + argv[start + 6 :]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "audio_captioner.name: " in err and "(existing) != None (now)" in err and len(err.splitlines()) == 1
    )


def test_filter_ranks_by_the_audio_caption_score_and_the_card_lists_the_group(
    audio_run, tiny_qwen2_audio, tmp_path
):
    out, _ = audio_run
    root = tmp_path / "copy"
    shutil.copytree(out, root)
    assert cli.main(["filter", str(root), "--by", "audio_caption_score", "--top", "50"]) == 0
    subset = selection.read_subsets(root).get("top50_audio_caption_score")
    rows = pq.read_table(root / "data", columns=["clip_id", "audio_caption_score"]).to_pylist()
    best = max(rows, key=lambda row: row["audio_caption_score"])
    assert subset.size == 1 and subset.threshold["audio_caption_score"] == pytest.approx(
        best["audio_caption_score"]
    )
    card = (root / layout.CARD_FILE).read_text()
    for column in schema.AUDIO_CAPTION_COLUMNS:
        assert f"| `{column}` |" in card
    assert schema.COLUMN_ORIGINS["audio_captions"] in card
    assert f"| audio caption prompt | `{PROMPT}` |" in card and "| caption prompt | none |" in card
    assert (
        f"| audio captioner | `{tiny_qwen2_audio.name}` (revision unknown), {WINDOWS} windows per clip"
        in card
    )


@pytest.mark.parametrize("damage", ["truncated weights", "wrong model_type"])
def test_a_broken_audio_captioner_stops_the_run_in_one_line_before_decoding(
    damage, two_clips, tiny_blip2, tiny_clap, tiny_qwen2_audio, tmp_path, capsys
):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_qwen2_audio, broken)
    if damage == "truncated weights":
        weights = broken / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:1000])
    else:
        config = json.loads((broken / "config.json").read_text())
        (broken / "config.json").write_text(json.dumps({**config, "model_type": "qwen2"}))
    out = tmp_path / "out"
    assert cli.main(generate_argv(two_clips, out, tiny_blip2, tiny_clap, broken)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and re.search("audio[ -]captioner", err) and str(broken) in err
    assert len(err.splitlines()) == 1
    assert not (out / "data").exists() or not any((out / "data").iterdir())  # nothing decoded or written


def test_audio_flamingo3_captions_a_batch_of_windows_as_plain_transformers_does_one_by_one(
    tiny_audio_flamingo3,
):
    """The second family through the same backend (its adapter names its class; its processor pads the audio to
    the window, not to a fixed length): a batch of windows of different lengths captions as each window alone
    does with the documented usage (chat template, processor, greedy generate), and the pre-run check passes."""
    from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor

    from avt_triplets.audio_captioners import load_audio_captioner
    from avt_triplets.preflight import check_audio_captioner

    captioner = load_audio_captioner(
        tiny_audio_flamingo3, prompt=PROMPT, max_new_tokens=MAX_NEW_TOKENS, windows=2
    )
    assert captioner.identity().adapter == "audioflamingo3"
    t = np.arange(16_000) / 16_000
    windows = [
        (0.2 * np.sin(2 * np.pi * f * t[:n])).astype(np.float32) for f, n in ((220, 8000), (880, 11_000))
    ]
    captions = captioner.caption_audio(windows)

    processor = AutoProcessor.from_pretrained(tiny_audio_flamingo3)
    model = AudioFlamingo3ForConditionalGeneration.from_pretrained(tiny_audio_flamingo3).eval()
    turn = [{"type": "audio", "path": "window.wav"}, {"type": "text", "text": PROMPT}]
    text = processor.apply_chat_template(
        [{"role": "user", "content": turn}], add_generation_prompt=True, tokenize=False
    )
    expected = []
    for window in windows:
        inputs = processor(text=text, audio=window, return_tensors="pt")
        generated = model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=MAX_NEW_TOKENS)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        expected.append(" ".join(processor.batch_decode(new_tokens, skip_special_tokens=True)[0].split()))
    assert captions == expected and len(set(captions)) == 2
    assert check_audio_captioner(captioner, clip_seconds=1.0)
