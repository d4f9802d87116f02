"""What ``--av-caption-from`` and ``--av-caption-prompt`` say, checked without loading anything: the ``llm:MODEL``
form, the documented merge prompt and its two placeholders. Standard library only, so the options check them when
they are parsed (:mod:`avt_triplets.options`) and :mod:`avt_triplets.caption_mergers` fills the prompt the same way.
"""

from __future__ import annotations

from avt_core.errors import UsageError

LLM_PREFIX = "llm:"
DEFAULT_MERGE_PROMPT = (
    "Two descriptions of the same short video clip follow: what is heard and what is seen. Write one sentence "
    "that describes the clip as a whole, keeping the sounds and the visible things both descriptions name and "
    "adding nothing else.\nHeard: {audio_caption}\nSeen: {visual_caption}"
)
_FIELDS = ("{audio_caption}", "{visual_caption}")


def merger_model(spec: str) -> str:
    """The model of ``--av-caption-from llm:MODEL`` (:class:`UsageError` for any other form)."""
    if not spec.startswith(LLM_PREFIX) or not spec[len(LLM_PREFIX) :].strip():
        raise UsageError(
            f"--av-caption-from {spec!r}: give llm:MODEL (a Hub id or folder of a text model with a chat template)"
        )
    return spec[len(LLM_PREFIX) :].strip()


def check_merge_prompt(prompt: str) -> None:
    """``--av-caption-prompt`` names both captions (else the model would merge without seeing one of them)."""
    missing = [f for f in _FIELDS if f not in prompt]
    if missing:
        raise UsageError(f"--av-caption-prompt must contain {' and '.join(missing)} (where the caption goes)")


def fill_prompt(prompt: str, audio_caption: str, visual_caption: str) -> str:
    """The prompt with both captions in place (plain replacement: other braces in the prompt stay as written)."""
    return prompt.replace("{audio_caption}", audio_caption).replace("{visual_caption}", visual_caption)


__all__ = ["DEFAULT_MERGE_PROMPT", "LLM_PREFIX", "check_merge_prompt", "fill_prompt", "merger_model"]
