"""Per-family captioner adapters, selected by the model config's ``model_type`` in one table.

To add a family: one module here defining its :class:`CaptionerAdapter` (only what differs from
:data:`GENERIC`), one entry in :data:`_FAMILIES`, a tiny builder in :mod:`avt_triplets.tiny.vlm_families`
(``FAMILY_BUILDERS``) and one test entry through ``avt generate``
(``tests/avt_triplets/test_vlm_family_captions.py``; docs/architecture.md, "How to add a family"). A model type
not listed gets :data:`GENERIC`, and the load log says so.
"""

from __future__ import annotations

from avt_triplets.captioner_adapters.base import (
    CLIP_PROMPTS,
    DEFAULT_CHAT_PROMPT,
    GENERIC,
    CaptionerAdapter,
    VideoInput,
)
from avt_triplets.captioner_adapters.blip2 import BLIP2
from avt_triplets.captioner_adapters.gemma3 import GEMMA3
from avt_triplets.captioner_adapters.idefics3 import IDEFICS3
from avt_triplets.captioner_adapters.internvl import INTERNVL
from avt_triplets.captioner_adapters.llava import LLAVA
from avt_triplets.captioner_adapters.llava_onevision import LLAVA_ONEVISION
from avt_triplets.captioner_adapters.paligemma import PALIGEMMA
from avt_triplets.captioner_adapters.qwen2_5_vl import QWEN2_5_VL
from avt_triplets.captioner_adapters.qwen3_vl import QWEN3_VL

_FAMILIES: tuple[CaptionerAdapter, ...] = (
    *(BLIP2, LLAVA, QWEN2_5_VL, IDEFICS3),
    *(GEMMA3, PALIGEMMA, LLAVA_ONEVISION, INTERNVL, QWEN3_VL),
)

# model_type -> adapter: the one table
ADAPTERS: dict[str, CaptionerAdapter] = {
    model_type: adapter for adapter in _FAMILIES for model_type in adapter.model_types
}


def adapter_for(model_type: str | None) -> CaptionerAdapter:
    """The adapter registered for ``model_type``, else :data:`GENERIC`."""
    return ADAPTERS.get(model_type or "", GENERIC)


def video_families() -> list[str]:
    """The adapters that declare a video input (``--caption-unit clip``), by name, in table order."""
    return [adapter.name for adapter in _FAMILIES if adapter.video is not None]


__all__ = [
    "ADAPTERS",
    "CLIP_PROMPTS",
    "DEFAULT_CHAT_PROMPT",
    "GENERIC",
    "CaptionerAdapter",
    "VideoInput",
    "adapter_for",
    "video_families",
]
