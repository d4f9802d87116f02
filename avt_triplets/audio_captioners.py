"""The transformers backend of the audio captioner role: an audio-text-to-text model (Qwen2-Audio) captioning a
clip's audio windows, greedy, one batched ``generate`` per batch of windows.

Loading goes through the checks every model option has (:mod:`avt_triplets.model_sources`: an existing folder
with a ``config.json`` or a well-formed Hub id; a library error while loading as one ``error:`` line) and the
family table of :mod:`avt_triplets.audio_caption_contract` (a ``model_type`` without an adapter is refused before
the weights load). Its feature extractor (Whisper's log-mel) runs here, in the model process: audio windows are
small next to frames, and the stored 16 kHz WAV is already in every decoded item.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from avt_core.errors import UsageError
from avt_triplets.audio_caption_contract import (
    ADAPTERS,
    DEFAULT_AUDIO_PROMPT,
    AudioAdapter,
    AudioCaptionerIdentity,
)
from avt_triplets.captioner_contract import GREEDY
from avt_triplets.devices import default_device
from avt_triplets.model_sources import check_model_source, loading_errors, require_model_type
from avt_triplets.options import DEFAULT_MAX_NEW_TOKENS
from avt_triplets.revisions import local_digest, resolve_commit_hash
from avt_triplets.schema import AUDIO_SAMPLING_RATE

logger = logging.getLogger(__name__)
WHAT = "--audio-captioner"


class TransformersAudioCaptioner:
    """A loaded audio-text-to-text model with its processor and family adapter (the ``AudioCaptioner``
    contract)."""

    def __init__(self, model: Any, processor: Any, adapter: AudioAdapter, *, name: str, revision: str | None,
                 weights_digest: str | None, prompt: str | None, max_new_tokens: int, windows: int):  # fmt: skip
        self.model, self.processor, self.adapter = model, processor, adapter
        self.name, self.revision, self.weights_digest = name, revision, weights_digest
        self.prompt = prompt or DEFAULT_AUDIO_PROMPT
        self.max_new_tokens, self.windows = int(max_new_tokens), int(windows)
        self.sampling_rate = int(processor.feature_extractor.sampling_rate)
        self.device = model.device
        self.dtype = model.dtype
        self.text = processor.apply_chat_template(
            adapter.messages(self.prompt), add_generation_prompt=True, tokenize=False
        )

    def identity(self) -> AudioCaptionerIdentity:
        return AudioCaptionerIdentity(
            name=self.name,
            revision=self.revision,
            weights_digest=self.weights_digest,
            dtype=str(self.dtype).removeprefix("torch."),
            prompt=self.prompt,
            max_new_tokens=self.max_new_tokens,
            generation=dict(GREEDY),
            windows=self.windows,
            sampling_rate=self.sampling_rate,
            adapter=self.adapter.name,
        )

    def inputs(self, windows: Sequence[np.ndarray]) -> Any:
        """The processor's batch of ``windows`` (the prompt once per window), on the model's device and dtype."""
        inputs = self.processor(
            text=[self.text] * len(windows),
            audio=[np.asarray(w, np.float32) for w in windows],
            sampling_rate=self.sampling_rate,
            return_tensors="pt",
            # prompts padded on the left for batched generation; the audio as the family pads it (Qwen2-Audio's
            # encoder takes fixed-length features, AF3's the window's own length)
            text_kwargs={"padding": True, "padding_side": "left"},
        )
        return inputs.to(self.device, dtype=self.dtype)

    def caption_audio(self, windows: Sequence[np.ndarray]) -> list[str]:
        """One caption per window: one greedy ``generate`` over the batch, the prompt cut off the output."""
        import torch

        if len(windows) == 0:
            return []
        inputs = self.inputs(windows)
        with torch.inference_mode():
            generated = self.model.generate(**inputs, **GREEDY, max_new_tokens=self.max_new_tokens)
        new = generated[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return [" ".join(text.split()) for text in texts]

    def __repr__(self) -> str:
        return (
            f"TransformersAudioCaptioner(name={self.name!r}, prompt={self.prompt!r}, windows={self.windows})"
        )


def _adapter_of(name_or_path: str | os.PathLike, revision: str | None) -> AudioAdapter:
    """The family adapter of the model's ``model_type`` (refused when the table has none)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    kind = f"an audio-text-to-text family avt knows ({', '.join(sorted(ADAPTERS))})"
    require_model_type(WHAT, name_or_path, config, ADAPTERS, kind)
    return ADAPTERS[config.model_type]


def check_audio_captioner_options(name_or_path: str | os.PathLike | None) -> None:
    """Raise :class:`UsageError` for an ``--audio-captioner`` that cannot work, before anything loads."""
    if name_or_path is None:
        return
    check_model_source(name_or_path, WHAT)
    if os.path.isdir(name_or_path):  # a local config costs nothing to read: a wrong family fails here
        with loading_errors("the audio captioner", name_or_path):
            _adapter_of(name_or_path, None)


def load_audio_captioner(
    name_or_path: str | os.PathLike,
    *,
    prompt: str | None = None,
    device: Any = None,
    dtype: Any = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    revision: str | None = None,
    windows: int = 1,
) -> TransformersAudioCaptioner:
    """Load an audio-text-to-text model (Hub id or local folder) as a greedy audio captioner; ``dtype``: bf16 on
    GPU, fp32 on CPU by default (as the captioner)."""
    import transformers

    from avt_triplets.captioners import resolve_dtype  # one dtype policy for every model of a run

    check_model_source(name_or_path, WHAT)
    device = default_device(device)
    dtype = resolve_dtype(dtype, device)
    commit = resolve_commit_hash(name_or_path, revision)
    with loading_errors("the audio captioner", name_or_path):
        adapter = _adapter_of(name_or_path, commit or revision)
        processor = transformers.AutoProcessor.from_pretrained(name_or_path, revision=commit or revision)
        model_class = getattr(transformers, adapter.model_class)  # the family's class (see ADAPTERS)
        model = model_class.from_pretrained(name_or_path, revision=commit or revision, dtype=dtype)
    rate = getattr(getattr(processor, "feature_extractor", None), "sampling_rate", None)
    if rate != AUDIO_SAMPLING_RATE:
        raise UsageError(
            f"{WHAT} {name_or_path}: its feature extractor takes {rate} Hz audio; avt captions the stored "
            f"{AUDIO_SAMPLING_RATE} Hz audio"
        )
    model.to(device).eval()
    captioner = TransformersAudioCaptioner(
        model,
        processor,
        adapter,
        name=str(name_or_path),
        revision=commit,
        weights_digest=local_digest(name_or_path),
        prompt=prompt,
        max_new_tokens=max_new_tokens,
        windows=windows,
    )
    logger.info("loaded %r on %s (%s), adapter %s", captioner, device, dtype, adapter.name)
    return captioner


__all__ = ["TransformersAudioCaptioner", "check_audio_captioner_options", "load_audio_captioner"]
