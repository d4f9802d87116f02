"""``--av-caption-from llm:MODEL``: a local text LLM merges a clip's audio and visual captions into one
audio-visual caption (issue 21 §1).

AVCaps wrote its audio-visual captions by asking GPT-4 to merge the human audio and visual captions of a clip; this
is that step, done locally by any ``AutoModelForCausalLM`` with a chat template (Qwen2.5-Instruct, Llama-3-Instruct,
...). The prompt is :data:`DEFAULT_MERGE_PROMPT` (``--av-caption-prompt`` overrides it; it must name both
``{audio_caption}`` and ``{visual_caption}``); it goes in one user turn of the model's own chat template, and the
answer is decoded greedily, so a rerun writes the same captions. The manifest records the prompt with the model's
identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from avt_core.errors import RunAborted, UsageError
from avt_triplets.caption_merge_prompt import (
    DEFAULT_MERGE_PROMPT,
    check_merge_prompt,
    fill_prompt,
    merger_model,
)
from avt_triplets.captioner_contract import GREEDY
from avt_triplets.extra_models import ModelIdentity, ModelSpec, check_source_type, load_checked

DEFAULT_MERGE_MAX_NEW_TOKENS = 48


def _spec() -> ModelSpec:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return ModelSpec(
        option="--av-caption-from",
        model_types=MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        kind="a text model that AutoModelForCausalLM loads (Qwen2, Llama, ...)",
        load_model=AutoModelForCausalLM.from_pretrained,
        load_processor=AutoTokenizer.from_pretrained,
    )


class LlmCaptionMerger:
    """Merges (audio caption, visual caption) pairs with a chat LLM, greedily, one batch of pairs per call."""

    def __init__(self, model: Any, tokenizer: Any, identity: ModelIdentity, prompt: str, max_new_tokens: int):
        if tokenizer.chat_template is None:
            raise UsageError(f"--av-caption-from {identity.name}: its tokenizer has no chat template")
        check_merge_prompt(prompt)
        tokenizer.padding_side = "left"  # decoder-only batched generation
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer, self.identity = model, tokenizer, identity
        self.name, self.prompt, self.max_new_tokens = identity.name, prompt, max_new_tokens

    def record(self) -> dict[str, Any]:
        """The manifest's ``av_caption_merger`` record: the model's identity, the prompt, the generation."""
        generation = {**GREEDY, "max_new_tokens": self.max_new_tokens}
        return {**self.identity.record(), "prompt": self.prompt, "generation": generation}

    def chat_text(self, audio_caption: str, visual_caption: str) -> str:
        """The model's input for one pair: the filled prompt in a user turn of its chat template."""
        message = {"role": "user", "content": fill_prompt(self.prompt, audio_caption, visual_caption)}
        return self.tokenizer.apply_chat_template([message], add_generation_prompt=True, tokenize=False)

    def merge(self, audio_captions: Sequence[str], visual_captions: Sequence[str]) -> list[str]:
        """One audio-visual caption per (audio, visual) pair."""
        import torch

        texts = [self.chat_text(a, v) for a, v in zip(audio_captions, visual_captions, strict=True)]
        device = next(self.model.parameters()).device
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.inference_mode():
            generated = self.model.generate(
                **inputs,
                **GREEDY,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new = generated[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(new, skip_special_tokens=True)]


def check_merger_options(spec: str, prompt: str | None = None, revision: str | None = None) -> None:
    """The cheap pre-run checks of ``--av-caption-from`` / ``--av-caption-prompt`` (:class:`UsageError`)."""
    if prompt is not None:
        check_merge_prompt(prompt)
    check_source_type(_spec(), merger_model(spec), revision)


def load_caption_merger(
    spec: str,
    *,
    prompt: str | None = None,
    device: Any = None,
    dtype: Any = None,
    revision: str | None = None,
    max_new_tokens: int = DEFAULT_MERGE_MAX_NEW_TOKENS,
) -> LlmCaptionMerger:
    """Load the LLM of ``--av-caption-from llm:MODEL`` as a caption merger."""
    from avt_triplets.captioners import resolve_dtype
    from avt_triplets.devices import default_device

    name = merger_model(spec)
    device = default_device(device)
    model, tokenizer, identity = load_checked(
        _spec(), name, device=device, dtype=resolve_dtype(dtype, device), revision=revision
    )
    return LlmCaptionMerger(model, tokenizer, identity, prompt or DEFAULT_MERGE_PROMPT, max_new_tokens)


def check_caption_merger(merger: LlmCaptionMerger) -> str:
    """Merge one synthetic pair; the merged caption, or :class:`RunAborted` naming the model when it fails or says
    nothing (NaN weights, only end-of-sequence tokens)."""
    try:
        merged = merger.merge(["a dog barking in the yard"], ["a dog in a yard"])
    except Exception as error:  # noqa: BLE001 - any failure means the merger can't run
        raise RunAborted(
            f"the caption merger {merger.name!r} fails on a synthetic pair of captions, before any video was "
            f"decoded: {type(error).__name__}: {error}"
        ) from error
    if not merged or not merged[0].strip():
        raise RunAborted(
            f"the caption merger {merger.name!r} merges a synthetic pair of captions into {merged!r}, before any "
            "video was decoded: it loads but writes nothing (NaN weights, or only end-of-sequence tokens)"
        )
    return merged[0]


__all__ = [
    "DEFAULT_MERGE_MAX_NEW_TOKENS",
    "DEFAULT_MERGE_PROMPT",
    "LlmCaptionMerger",
    "check_caption_merger",
    "check_merge_prompt",
    "check_merger_options",
    "fill_prompt",
    "load_caption_merger",
    "merger_model",
]
