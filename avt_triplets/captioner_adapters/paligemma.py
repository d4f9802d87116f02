"""PaliGemma (``google/paligemma-3b-mix-224``, PaliGemma 2 ``-mix`` checkpoints): no chat template; prompted
with a task prefix (``caption en``) written after the image tokens. Without ``<image>`` in the prompt the
processor guesses where the image goes and warns on every call, so the prompt is rendered with it in front
(the same ids). The processor also returns training ``labels``, which generation does not take."""

from typing import Any

from avt_triplets.captioner_adapters.base import CaptionerAdapter

PALIGEMMA_PROMPT = "caption en"


class PaliGemmaAdapter(CaptionerAdapter):
    def render_prompt(self, processor: Any, prompt: str | None, uses_chat_template: bool) -> str | None:
        text = super().render_prompt(processor, prompt, uses_chat_template)
        image_token = getattr(processor, "image_token", None)
        if text is None or uses_chat_template or not image_token or image_token in text:
            return text
        return image_token + text


PALIGEMMA = PaliGemmaAdapter(
    name="paligemma",
    model_types=("paligemma",),
    vision_tower=("vision_tower",),
    plain_prompt=PALIGEMMA_PROMPT,
    unused_keys=("labels",),
    recommended_prompt=PALIGEMMA_PROMPT,
)
