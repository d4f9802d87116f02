"""Gemma 3 (``google/gemma-3-4b-it``): SigLIP tower, ``<start_of_turn>user`` turns, ``token_type_ids`` marking
the image tokens (they attend to each other both ways; they travel with the prompt ids). Its chat template
writes ``<bos>`` and its tokenizer adds one too: the prompt is rendered without the template's, so the model
sees one ``<bos>``, as ``apply_chat_template(..., tokenize=True)`` gives it (a doubled ``<bos>`` degrades
Gemma's output)."""

from typing import Any

from avt_triplets.captioner_adapters.base import DEFAULT_CHAT_PROMPT, CaptionerAdapter


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts ``bos_token`` in front of whatever it encodes."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    return bos_id is not None and tokenizer("")["input_ids"][:1] == [bos_id]


class Gemma3Adapter(CaptionerAdapter):
    def render_prompt(self, processor: Any, prompt: str | None, uses_chat_template: bool) -> str | None:
        text = super().render_prompt(processor, prompt, uses_chat_template)
        tokenizer = getattr(processor, "tokenizer", None)
        bos = getattr(tokenizer, "bos_token", None)
        if uses_chat_template and text and bos and text.startswith(bos) and adds_bos(tokenizer):
            return text[len(bos) :]
        return text


GEMMA3 = Gemma3Adapter(
    name="gemma3",
    model_types=("gemma3",),
    vision_tower=("vision_tower",),
    recommended_prompt=DEFAULT_CHAT_PROMPT,
)
