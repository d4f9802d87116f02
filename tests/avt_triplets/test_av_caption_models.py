"""The caption-kind models of issue 21 §1 (visual scorer, omni AV captioner, caption-merging LLM), each loaded from
a tiny random folder by the product's real load function: its output equals a plain transformers call on the same
inputs and prompt, computed here; a broken folder is one UsageError line; a NaN model is refused by its probe."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avt_core.errors import RunAborted, UsageError
from avt_triplets.av_captioners import (
    DEFAULT_AV_PROMPT,
    SAMPLING,
    check_av_captioner,
    load_av_captioner,
)
from avt_triplets.caption_mergers import (
    DEFAULT_MERGE_PROMPT,
    check_caption_merger,
    check_merger_options,
    load_caption_merger,
    merger_model,
)
from avt_triplets.extra_models import clip_seed
from avt_triplets.visual_scorers import check_visual_scorer, load_visual_scorer

FPS = 2.0


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(count)]


def _tone(seconds: float = 0.5, rate: int = 16_000, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _damaged(folder: Path, tmp_path: Path) -> Path:
    """A copy of ``folder`` whose weights file is cut in half (an interrupted download)."""
    copy = Path(shutil.copytree(folder, tmp_path / f"damaged_{folder.name}"))
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return copy


def _one_line(error: pytest.ExceptionInfo, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message


def test_visual_scorer_scores_pairs_as_clip_does_and_picks_the_best(tiny_clip):
    from transformers import CLIPModel, CLIPProcessor

    scorer = load_visual_scorer(tiny_clip, device="cpu")
    frames, captions = _frames(3), ["a red circle", "a dog barking in the yard", "a blue triangle"]
    best, scores = scorer.choose(frames, captions)

    model, processor = CLIPModel.from_pretrained(tiny_clip).eval(), CLIPProcessor.from_pretrained(tiny_clip)
    with torch.no_grad():
        out = model(**processor(text=captions, images=frames, return_tensors="pt", padding=True))
    expected = (out.image_embeds * out.text_embeds).sum(-1).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert best == int(np.argmax(expected))
    assert len(set(np.round(scores, 6))) == 3  # the pairs really differ
    assert scorer.record() == {
        "name": str(tiny_clip),
        "revision": None,
        "weights_digest": scorer.identity.weights_digest,
        "dtype": "float32",
    }
    assert len(scorer.record()["weights_digest"]) == 64
    assert np.isfinite(check_visual_scorer(scorer))


def test_visual_scorer_probe_refuses_nan_weights(tiny_clip):
    scorer = load_visual_scorer(tiny_clip, device="cpu")
    with torch.no_grad():
        scorer.model.visual_projection.weight.fill_(float("nan"))
    with pytest.raises(RunAborted, match="visual scorer .* nan"):
        check_visual_scorer(scorer)


def test_av_captioner_captions_as_the_thinker_generates_greedy_then_seeded_samples(tiny_omni):
    from transformers import AutoProcessor, Qwen2_5OmniThinkerForConditionalGeneration

    captioner = load_av_captioner(tiny_omni, device="cpu", max_new_tokens=3)
    frames, audio = _frames(2), _tone()
    candidates = captioner.caption_clip(frames, audio, fps=FPS, count=2, seed=7, key="clip-a")

    processor = AutoProcessor.from_pretrained(tiny_omni)
    model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(tiny_omni).eval()
    turn = [{"type": "video"}, {"type": "audio"}, {"type": "text", "text": DEFAULT_AV_PROMPT}]
    text = processor.apply_chat_template([{"role": "user", "content": turn}], add_generation_prompt=True)
    inputs = processor(
        text=[text], videos=[frames], audio=[audio], videos_kwargs={"fps": FPS}, return_tensors="pt"
    )
    assert "<|AUDIO|>" in text and "<|VIDEO|>" in text

    def plain(**settings) -> str:
        out = model.generate(**inputs, **settings, max_new_tokens=3)
        return processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[
            0
        ].strip()

    assert candidates[0] == plain(do_sample=False)
    torch.manual_seed(clip_seed(7, "clip-a", 1))
    assert candidates[1] == plain(**SAMPLING)
    assert candidates[0] and all(isinstance(c, str) for c in candidates)
    record = captioner.record()
    assert record["prompt"] == DEFAULT_AV_PROMPT and record["sampling"] == SAMPLING
    assert record["generation"] == {"do_sample": False, "num_beams": 1, "max_new_tokens": 3}
    assert check_av_captioner(captioner, clip_seconds=0.5)


def test_merger_merges_as_the_llm_generates_greedy_from_the_documented_prompt(tiny_caption_llm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merger = load_caption_merger(f"llm:{tiny_caption_llm}", device="cpu", max_new_tokens=6)
    merged = merger.merge(["a dog barking in the yard"], ["a red circle moving on a dark background"])

    tokenizer = AutoTokenizer.from_pretrained(tiny_caption_llm)
    model = AutoModelForCausalLM.from_pretrained(tiny_caption_llm).eval()
    prompt = DEFAULT_MERGE_PROMPT.format(
        audio_caption="a dog barking in the yard", visual_caption="a red circle moving on a dark background"
    )
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, do_sample=False, max_new_tokens=6)
    expected = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
    assert merged == [expected]
    assert merger.record()["prompt"] == DEFAULT_MERGE_PROMPT
    assert merger.record()["generation"] == {"do_sample": False, "num_beams": 1, "max_new_tokens": 6}
    assert check_caption_merger(merger)


def test_merger_prompt_override_must_name_both_captions(tiny_caption_llm):
    own = "Audio: {audio_caption} | Video: {visual_caption} | one sentence:"
    merger = load_caption_merger(f"llm:{tiny_caption_llm}", prompt=own, device="cpu", max_new_tokens=2)
    assert merger.record()["prompt"] == own
    assert "Audio: rain | Video: a car | one sentence:" in merger.chat_text("rain", "a car")
    with pytest.raises(UsageError) as error:
        check_merger_options(f"llm:{tiny_caption_llm}", prompt="Merge {audio_caption} please")
    _one_line(error, "--av-caption-prompt", "{visual_caption}")


@pytest.mark.parametrize("spec", ["gpt4", "llm:", "openai:gpt-4o"])
def test_av_caption_from_takes_only_llm_specs(spec):
    with pytest.raises(UsageError) as error:
        merger_model(spec)
    _one_line(error, "--av-caption-from", "llm:MODEL")


def test_damaged_or_wrong_kind_folders_are_one_line_each(tiny_clip, tiny_omni, tiny_caption_llm, tmp_path):
    loaders = {
        "--visual-scorer": (tiny_clip, lambda path: load_visual_scorer(path, device="cpu")),
        "--av-captioner": (tiny_omni, lambda path: load_av_captioner(path, device="cpu")),
        "--av-caption-from": (
            tiny_caption_llm,
            lambda path: load_caption_merger(f"llm:{path}", device="cpu"),
        ),
    }
    for option, (folder, load) in loaders.items():
        with pytest.raises(UsageError) as error:
            load(_damaged(folder, tmp_path))
        _one_line(error, option, "could not load")
    wrong_kind = {
        "--visual-scorer": tiny_caption_llm,
        "--av-captioner": tiny_clip,
        "--av-caption-from": tiny_omni,
    }
    for option, folder in wrong_kind.items():
        with pytest.raises(UsageError) as error:
            loaders[option][1](folder)
        _one_line(error, option, "model_type")


def test_readme_shows_the_merge_prompt_verbatim():
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"```text\n{DEFAULT_MERGE_PROMPT}\n```" in readme
