"""``--av-captioner MODEL``: an omni model captions a clip from its frames and its audio together (issue 21 §1).

The family driven here is Qwen2.5-Omni's *thinker* (the text-generating half: Qwen2.5-VL vision tower,
Whisper-style audio tower, Qwen2 text model with time-aligned 3-D M-RoPE), through its real
``Qwen2_5OmniProcessor``: the clip's frames go in as one video (``fps`` says how far apart they are), its audio as
one audio item, and :data:`DEFAULT_AV_PROMPT` (or ``--av-caption-prompt``) as the text of the same
user turn of the model's chat template. A folder saved from the thinker loads as
``Qwen2_5OmniThinkerForConditionalGeneration``; a full Qwen2.5-Omni checkpoint (``model_type`` ``qwen2_5_omni``,
e.g. ``Qwen/Qwen2.5-Omni-3B``) loads whole and its thinker is used (the talker is never run).

Gemma 3n (the other omni family of transformers 5) needs ``timm`` for its vision tower, which this environment does
not have; it is not driven here.

``--av-captions N`` candidates per clip: the first is greedy; candidate ``k > 0`` is sampled (:data:`SAMPLING`)
with a seed derived from the run's seed, the clip's key and ``k`` (:func:`~avt_triplets.extra_models.clip_seed`),
so every clip gets the same candidates in every run and on every worker. The audio must be at the model's
:attr:`OmniAvCaptioner.sampling_rate` (16 kHz for Qwen2.5-Omni).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from avt_core.errors import RunAborted
from avt_triplets.captioner_contract import GREEDY
from avt_triplets.extra_models import ModelIdentity, ModelSpec, check_source_type, clip_seed, load_checked

DEFAULT_AV_PROMPT = (
    "Describe in one sentence what happens in this video clip: what is seen and what is heard."
)
DEFAULT_AV_MAX_NEW_TOKENS = 48
SAMPLING = {"do_sample": True, "temperature": 0.8, "top_p": 0.95, "num_beams": 1}
THINKER, FULL = "qwen2_5_omni_thinker", "qwen2_5_omni"


def _load_thinker(name_or_path: Any, **kwargs: Any) -> Any:
    """The thinker, from a thinker folder or from a full Qwen2.5-Omni checkpoint."""
    from transformers import (
        AutoConfig,
        Qwen2_5OmniForConditionalGeneration,
        Qwen2_5OmniThinkerForConditionalGeneration,
    )

    config = AutoConfig.from_pretrained(name_or_path, revision=kwargs.get("revision"))
    if config.model_type == FULL:
        return Qwen2_5OmniForConditionalGeneration.from_pretrained(name_or_path, **kwargs).thinker
    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(name_or_path, **kwargs)


def _spec() -> ModelSpec:
    from transformers import AutoProcessor

    return ModelSpec(
        option="--av-captioner",
        model_types=(THINKER, FULL),
        kind="a Qwen2.5-Omni model (its thinker, or the whole model)",
        load_model=_load_thinker,
        load_processor=AutoProcessor.from_pretrained,
    )


class OmniAvCaptioner:
    """Captions one clip (frames + audio) with a Qwen2.5-Omni thinker; ``count`` candidates per clip."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        identity: ModelIdentity,
        prompt: str,
        max_new_tokens: int,
        candidates: int = 1,
    ):
        self.model, self.processor, self.identity = model, processor, identity
        self.name, self.prompt, self.max_new_tokens = identity.name, prompt, max_new_tokens
        self.candidates = candidates  # --av-captions: what the run asks for, recorded with the model

    @property
    def sampling_rate(self) -> int:
        """The audio rate the model's feature extractor takes."""
        return int(self.processor.feature_extractor.sampling_rate)

    def record(self) -> dict[str, Any]:
        """The manifest's ``av_captioner`` record: identity, prompt, greedy and sampling settings, candidates."""
        generation = {**GREEDY, "max_new_tokens": self.max_new_tokens}
        made = {
            "prompt": self.prompt,
            "generation": generation,
            "sampling": SAMPLING,
            "candidates": self.candidates,
        }
        return {**self.identity.record(), **made}

    def chat_text(self) -> str:
        """The prompt in a user turn holding the clip's video and audio, as the model's chat template writes it."""
        content = [{"type": "video"}, {"type": "audio"}, {"type": "text", "text": self.prompt}]
        conversation = [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)

    def inputs(self, frames: Sequence[np.ndarray], audio: np.ndarray, fps: float) -> Any:
        """The processor's batch of one for a clip: frames (HxWx3 uint8, ``fps`` apart) as one video, audio as
        one item."""
        batch = self.processor(
            text=[self.chat_text()],
            videos=[list(frames)],
            audio=[np.asarray(audio, dtype=np.float32)],
            videos_kwargs={"fps": fps},
            return_tensors="pt",
        )
        dtype = next(self.model.parameters()).dtype
        device = next(self.model.parameters()).device
        return {k: v.to(device, dtype if v.is_floating_point() else v.dtype) for k, v in batch.items()}

    def _generate(self, inputs: dict[str, Any], settings: dict[str, Any]) -> str:
        import torch

        with torch.inference_mode():
            generated = self.model.generate(**inputs, **settings, max_new_tokens=self.max_new_tokens)
        new = generated[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new, skip_special_tokens=True)[0].strip()

    def caption_clip(
        self,
        frames: Sequence[np.ndarray],
        audio: np.ndarray,
        *,
        fps: float,
        count: int = 1,
        seed: int = 0,
        key: str = "",
    ) -> list[str]:
        """``count`` candidate captions of one clip: the greedy one, then sampled ones seeded per (clip, k)."""
        import torch

        inputs = self.inputs(frames, audio, fps)
        candidates = [self._generate(inputs, GREEDY)]
        device = next(self.model.parameters()).device
        for k in range(1, count):
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(clip_seed(seed, key, k))
                candidates.append(self._generate(inputs, SAMPLING))
        return candidates


def check_av_captioner_options(name_or_path: str | os.PathLike, revision: str | None = None) -> None:
    """The cheap pre-run checks of ``--av-captioner`` (:class:`UsageError`)."""
    check_source_type(_spec(), name_or_path, revision)


def load_av_captioner(
    name_or_path: str | os.PathLike,
    *,
    prompt: str | None = None,
    device: Any = None,
    dtype: Any = None,
    revision: str | None = None,
    max_new_tokens: int = DEFAULT_AV_MAX_NEW_TOKENS,
    candidates: int = 1,
) -> OmniAvCaptioner:
    """Load a Qwen2.5-Omni thinker (or a whole Qwen2.5-Omni, keeping its thinker) as an AV captioner."""
    from avt_triplets.captioners import resolve_dtype
    from avt_triplets.devices import default_device

    device = default_device(device)
    model, processor, identity = load_checked(
        _spec(), name_or_path, device=device, dtype=resolve_dtype(dtype, device), revision=revision
    )
    return OmniAvCaptioner(
        model, processor, identity, prompt or DEFAULT_AV_PROMPT, max_new_tokens, candidates
    )


def check_av_captioner(captioner: OmniAvCaptioner, clip_seconds: float) -> str:
    """Caption two synthetic frames with a synthetic tone; the caption, or :class:`RunAborted` naming the model
    when it fails or says nothing."""
    from avt_triplets.preflight import probe_frames, synthetic_audio
    from avt_triplets.schema import AUDIO_SAMPLING_RATE

    try:
        if captioner.sampling_rate != AUDIO_SAMPLING_RATE:
            raise ValueError(
                f"its feature extractor takes {captioner.sampling_rate} Hz audio; clips are stored at "
                f"{AUDIO_SAMPLING_RATE} Hz"
            )
        audio = synthetic_audio(AUDIO_SAMPLING_RATE, clip_seconds)
        caption = captioner.caption_clip(probe_frames(), audio, fps=2.0 / clip_seconds)[0]
    except Exception as error:  # noqa: BLE001 - any failure means the captioner can't run
        raise RunAborted(
            f"the AV captioner {captioner.name!r} fails on a synthetic clip, before any video was decoded: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not caption:
        raise RunAborted(
            f"the AV captioner {captioner.name!r} captions a synthetic clip as an empty string, before any video "
            "was decoded: it loads but produces no caption (NaN weights, or only end-of-sequence tokens)"
        )
    return caption


__all__ = [
    "DEFAULT_AV_PROMPT",
    "SAMPLING",
    "OmniAvCaptioner",
    "check_av_captioner",
    "check_av_captioner_options",
    "load_av_captioner",
]
