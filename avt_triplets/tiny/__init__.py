"""Tiny random-weight models and synthetic videos, for the offline demo and the tests.

Every builder writes a folder with ``save_pretrained`` (or the backend's own format) and returns
its path, so the product's real loading code (``from_pretrained``, msclap's ``model_fp``) is what
loads them. Imports are lazy: each builder pulls in only the libraries it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_BUILDERS = {
    "make_tiny_blip2": "avt_triplets.tiny.captioners",
    "make_tiny_llava": "avt_triplets.tiny.captioners",
    "make_tiny_qwen2_5_vl": "avt_triplets.tiny.vlm_captioners",
    "make_tiny_smolvlm": "avt_triplets.tiny.vlm_captioners",
    "make_tiny_gemma3": "avt_triplets.tiny.vlm_families",
    "make_tiny_paligemma": "avt_triplets.tiny.vlm_families",
    "make_tiny_llava_onevision": "avt_triplets.tiny.vlm_families",
    "make_tiny_internvl": "avt_triplets.tiny.vlm_families",
    "make_tiny_qwen3_vl": "avt_triplets.tiny.vlm_families",
    "make_tiny_qwen2_5_omni": "avt_triplets.tiny.av_models",
    "make_tiny_caption_llm": "avt_triplets.tiny.av_models",
    "make_tiny_qwen2_audio": "avt_triplets.tiny.audio_models",
    "make_tiny_audio_flamingo3": "avt_triplets.tiny.audio_models",
    "make_tiny_clap": "avt_triplets.tiny.clap",
    "make_tiny_clip": "avt_triplets.tiny.clip",
    "make_tiny_msclap": "avt_triplets.tiny.msclap",
    "make_synthetic_videos": "avt_triplets.tiny.videos",
    "make_tiny_lgcavmae": "avt_triplets.tiny.lgcavmae",
}

__all__ = list(_BUILDERS)


def __getattr__(name: str) -> Any:
    if name in _BUILDERS:
        return getattr(importlib.import_module(_BUILDERS[name]), name)
    raise AttributeError(name)
