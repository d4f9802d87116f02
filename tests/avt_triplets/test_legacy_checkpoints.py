"""Issues 8.7 and 17.5: BLIP-2 / LLaVA-1.5 folders in the transformers 4.x layouts caption, and read as 4.x printed them.

The fixtures are the tiny builders' folders saved by transformers 5, then stripped of what 4.x never wrote:
BLIP-2's ``image_token_index`` (config) and ``num_query_tokens`` (processor); LLaVA's ``patch_size``,
``vision_feature_select_strategy`` and ``num_additional_image_tokens`` (processor), its chat template moved
into ``tokenizer_config.json``; and ``clean_up_tokenization_spaces: true``, which 4.x wrote for OPT. Two more
LLaVA-1.5 layouts: transformers 4.4x (processor config with ``patch_size`` but no ``num_additional_image_tokens``,
the image processor in ``preprocessor_config.json``, the template in ``chat_template.json``) and 4.36 (no
processor config and no chat template at all).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avt_triplets.captioners import TransformersCaptioner, load_captioner
from avt_triplets.model_inputs import rows_of


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


@pytest.fixture(scope="module")
def legacy_blip2(tiny_blip2, tmp_path_factory) -> Path:
    folder = shutil.copytree(tiny_blip2, tmp_path_factory.mktemp("legacy") / "blip2")
    _edit_json(folder / "config.json", lambda c: c.pop("image_token_index"))
    _edit_json(folder / "processor_config.json", lambda c: c.pop("num_query_tokens"))
    _edit_json(folder / "tokenizer_config.json", lambda c: c.update(clean_up_tokenization_spaces=True))
    return folder


@pytest.fixture(scope="module")
def legacy_llava(tiny_llava, tmp_path_factory) -> Path:
    folder = shutil.copytree(tiny_llava, tmp_path_factory.mktemp("legacy") / "llava")

    def strip(config):
        for key in ("patch_size", "vision_feature_select_strategy", "num_additional_image_tokens"):
            config.pop(key)

    _edit_json(folder / "processor_config.json", strip)
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink()
    _edit_json(folder / "tokenizer_config.json", lambda c: c.update(chat_template=template))
    return folder


def _image_processor_apart(folder: Path, processor_fields: dict) -> None:
    """4.x kept the image processor in ``preprocessor_config.json`` and only the processor's own fields in
    ``processor_config.json`` (none at all before 4.4x)."""
    processor = json.loads((folder / "processor_config.json").read_text())
    image_processor = {**processor["image_processor"], "processor_class": "LlavaProcessor"}
    (folder / "preprocessor_config.json").write_text(json.dumps(image_processor, indent=2))
    (folder / "processor_config.json").unlink()
    if processor_fields:
        (folder / "processor_config.json").write_text(json.dumps(processor_fields, indent=2))


@pytest.fixture(scope="module")
def llava_transformers_4_4x(tiny_llava, tmp_path_factory) -> Path:
    """As llava-hf's LLaVA-1.5 folders were saved by transformers 4.44-4.46."""
    folder = shutil.copytree(tiny_llava, tmp_path_factory.mktemp("legacy") / "llava-4.4x")
    processor = json.loads((folder / "processor_config.json").read_text())
    _image_processor_apart(
        folder,
        {
            "image_token": "<image>",
            "patch_size": processor["patch_size"],
            "processor_class": "LlavaProcessor",
            "vision_feature_select_strategy": "default",
        },
    )
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink()
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    return folder


@pytest.fixture(scope="module")
def llava_transformers_4_36(tiny_llava, tmp_path_factory) -> Path:
    """As LLaVA-1.5 folders were saved by transformers 4.36, the first release with LLaVA: no processor config,
    no chat template anywhere, the image token an added token of the tokenizer only."""
    folder = shutil.copytree(tiny_llava, tmp_path_factory.mktemp("legacy") / "llava-4.36")
    _image_processor_apart(folder, {})
    (folder / "chat_template.jinja").unlink()

    def tokenizer_4_36(config):
        for key in ("image_token", "extra_special_tokens", "backend"):
            config.pop(key, None)

    _edit_json(folder / "tokenizer_config.json", tokenizer_4_36)
    _edit_json(folder / "config.json", lambda c: c.pop("image_seq_length"))
    return folder


def _frames() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)) for _ in range(3)]


@pytest.mark.parametrize("which", ["blip2", "llava"])
def test_a_transformers_4_checkpoint_captions_like_the_current_layout(which, request, caplog):
    current = load_captioner(request.getfixturevalue(f"tiny_{which}"), device="cpu", max_new_tokens=6)
    with caplog.at_level(logging.WARNING, logger="avt_triplets.captioners"):
        legacy = load_captioner(request.getfixturevalue(f"legacy_{which}"), device="cpu", max_new_tokens=6)
    frames = _frames()
    assert legacy.caption(frames) == current.caption(frames)
    assert legacy.prompt == current.prompt  # LLaVA found its chat template, so it is prompted as a chat
    filled = " ".join(r.getMessage() for r in caplog.records)
    expected = {
        "blip2": ["image_token_index=", "num_query_tokens=4"],
        "llava": [
            "patch_size=8",
            "vision_feature_select_strategy='default'",
            "num_additional_image_tokens=1",
            "chat_template",
        ],
    }[which]
    assert "saved by transformers 4.x" in filled and all(e in filled for e in expected), filled


def test_a_transformers_4_4x_llava_gets_one_image_token_per_feature(
    tiny_llava, llava_transformers_4_4x, caplog
):
    """4.4x saved ``patch_size`` but not ``num_additional_image_tokens``: transformers 5 took it as 0 and expanded
    ``<image>`` into one token too few (575 for LLaVA-1.5's 576 features; 15 for the tiny tower's 16)."""
    current = load_captioner(tiny_llava, device="cpu", max_new_tokens=6)
    with caplog.at_level(logging.WARNING, logger="avt_triplets.captioners"):
        legacy = load_captioner(llava_transformers_4_4x, device="cpu", max_new_tokens=6)
    frames = _frames()
    assert legacy.caption(frames) == current.caption(frames)
    pixels = legacy.image_preprocessor()([np.asarray(frame) for frame in frames])  # the decode workers' path
    assert legacy.caption_pixels(legacy.stack(rows_of(pixels), pin=False)) == current.caption(frames)
    filled = " ".join(r.getMessage() for r in caplog.records)
    assert "num_additional_image_tokens=1" in filled and "patch_size" not in filled, filled


def test_a_transformers_4_36_llava_is_prompted_in_the_llava_1_5_conversation_format(
    tiny_llava, llava_transformers_4_36, caplog
):
    """No chat template anywhere: without one the default prompt carried no ``<image>`` token and the pre-run
    check failed; LLaVA-1.5's own format is used instead, and the log says so."""
    from avt_triplets.captioners import DEFAULT_CHAT_PROMPT
    from avt_triplets.preflight import check_captioner

    current = load_captioner(tiny_llava, device="cpu", max_new_tokens=6)
    with caplog.at_level(logging.WARNING, logger="avt_triplets.captioners"):
        legacy = load_captioner(llava_transformers_4_36, device="cpu", max_new_tokens=6)
    assert legacy.prompt == DEFAULT_CHAT_PROMPT
    assert legacy._prompt_text == f"USER: <image>\n{DEFAULT_CHAT_PROMPT} ASSISTANT:"
    frames = _frames()
    assert legacy.caption(frames) == current.caption(frames)
    assert check_captioner(legacy)  # the pre-run check that used to fail
    filled = " ".join(r.getMessage() for r in caplog.records)
    assert "LLaVA-1.5's conversation format" in filled and "num_additional_image_tokens=1" in filled, filled


def _bpe_tokenizer(clean_up: bool):
    """A GPT-2-style byte-level BPE tokenizer (OPT's kind), whose words carry their leading space."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["a", "Ġdog", "Ġ,", "Ġit", "Ġ's", "Ġhappy", "Ġ.", "</s>"]
    raw = Tokenizer(models.BPE(vocab={w: i for i, w in enumerate(words)}, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="</s>", clean_up_tokenization_spaces=clean_up
    )


@pytest.mark.parametrize(
    "clean_up, expected", [(True, "a dog, it's happy."), (False, "a dog , it 's happy .")]
)
def test_captions_are_cleaned_up_as_transformers_4_did(clean_up, expected, tiny_blip2, monkeypatch):
    captioner = load_captioner(tiny_blip2, device="cpu", max_new_tokens=8)
    tokenizer = _bpe_tokenizer(clean_up)
    processor = captioner.processor
    monkeypatch.setattr(processor, "tokenizer", tokenizer)
    generated = torch.tensor(
        [
            [
                tokenizer.convert_tokens_to_ids(t)
                for t in ["a", "Ġdog", "Ġ,", "Ġit", "Ġ's", "Ġhappy", "Ġ.", "</s>"]
            ]
        ]
    )
    monkeypatch.setattr(captioner.model, "generate", lambda **kwargs: generated)
    rebuilt = TransformersCaptioner(captioner.model, processor, name="bpe", revision=None, prompt=None)
    assert rebuilt.caption(_frames()[:1]) == [expected]
