"""Image captioners: one caption per video frame (LG-CAV-MAE §2.3 step 2).

One transformers backend covers BLIP-2 (the paper's choice, ``Salesforce/blip2-opt-2.7b``), LLaVA-1.5
(``llava-hf/llava-1.5-7b-hf``) and any other image-text-to-text model, by Hub id or local folder:
``AutoProcessor`` + ``AutoModelForImageTextToText``.

Choices that make captions reproducible and comparable:

* greedy decoding (``do_sample=False``, ``num_beams=1``), so a rerun yields the same captions;
* bf16 on GPU, fp32 on CPU unless ``dtype`` says otherwise;
* prompts: a model with a chat template (LLaVA) gets the prompt in a user turn with an image placeholder,
  through the processor's own ``apply_chat_template`` (default prompt :data:`DEFAULT_CHAT_PROMPT`); a model
  without one (BLIP-2) is prompted with the raw text, and with no prompt at all it does plain captioning;
* left padding, the layout batched generation with decoder-only language models needs;
* the prompt tokens are cut from the output before decoding; special tokens and surrounding whitespace go too;
* captions read as transformers 4.x printed them: when the tokenizer asks for ``clean_up_tokenization_spaces``
  (BLIP-2's OPT tokenizer does), its ``clean_up_tokenization`` is applied ("a dog, it's happy.", not
  "a dog , it 's happy ."), which transformers 5 skips for BPE tokenizers;
* checkpoints saved by transformers 4.x get the fields transformers 5 needs filled in
  (:mod:`avt_triplets.legacy_checkpoints`), with a warning naming each.

The pipeline owns batching and out-of-memory backoff; :meth:`TransformersCaptioner.caption` runs one batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from avt_core.errors import UsageError
from avt_triplets.devices import batch_to_device, default_device
from avt_triplets.legacy_checkpoints import fill_missing_fields
from avt_triplets.model_sources import check_model_source, loading_errors, require_model_type
from avt_triplets.options import DEFAULT_CAPTIONER, DEFAULT_MAX_NEW_TOKENS
from avt_triplets.revisions import local_digest, resolve_commit_hash

if TYPE_CHECKING:
    import torch
    from PIL import Image

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CAPTIONER",
    "DEFAULT_CHAT_PROMPT",
    "Captioner",
    "TransformersCaptioner",
    "check_captioner_options",
    "load_captioner",
]

DEFAULT_CHAT_PROMPT = "Describe this image in one short sentence."


@runtime_checkable
class Captioner(Protocol):
    """What the pipeline needs from a captioner."""

    name: str
    revision: str | None  # resolved Hub commit, None for local folders
    prompt: str | None  # the prompt actually used (None: plain captioning)

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per image, for one batch."""
        ...


def _resolve_dtype(dtype: Any, device: torch.device) -> torch.dtype:
    import torch

    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(resolved, torch.dtype):
            raise UsageError(f"--dtype: unknown dtype {dtype!r} (use e.g. 'bfloat16', 'float16', 'float32')")
        if not resolved.is_floating_point:
            raise UsageError(
                f"--dtype {dtype}: not a floating-point dtype a captioner can run in; use bfloat16, float16 or "
                "float32"
            )
        return resolved
    return dtype


def check_captioner_options(name_or_path: str | os.PathLike, dtype: Any = None) -> None:
    """Raise :class:`UsageError` for captioner options that cannot work, before anything is loaded."""
    check_model_source(name_or_path, "--captioner")
    _resolve_dtype(dtype, default_device("cpu"))
    if os.path.isdir(name_or_path):  # a local folder's config costs nothing to read: a wrong model fails here
        with loading_errors("the captioner", name_or_path):
            _require_captioner_type(name_or_path)


def _require_captioner_type(name_or_path: str | os.PathLike, revision: str | None = None) -> None:
    """The model's config is one ``AutoModelForImageTextToText`` loads (BLIP-2, LLaVA, ...)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    kind = "an image-text-to-text model (BLIP-2, LLaVA, ...) that AutoModelForImageTextToText loads"
    require_model_type("--captioner", name_or_path, config, MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES, kind)


def vision_dtype(model: Any) -> torch.dtype:
    """The dtype of the model's vision tower (its first floating parameter named ``vision``), else
    ``model.dtype``."""
    for name, parameter in model.named_parameters():
        if "vision" in name and parameter.is_floating_point():
            return parameter.dtype
    return model.dtype


def processor_inputs(processor: Any, images: list[Image.Image], prompt_text: str | None) -> Any:
    """The processor's inputs for ``images`` (with ``prompt_text`` for each, when there is one), as tensors."""
    kwargs: dict[str, Any] = {"images": images, "return_tensors": "pt"}
    if prompt_text is not None:
        kwargs["text"] = [prompt_text] * len(images)
        kwargs["padding"] = True
    return processor(**kwargs)


class ProcessorImages:
    """A captioner's own processor as a decode worker runs it: RGB uint8 frames -> ``pixel_values``
    (float32 numpy, ``[frames, channels, height, width]``), the call :meth:`TransformersCaptioner.caption`
    makes. Picklable without the model, so it travels to spawned workers and Ray tasks."""

    def __init__(self, processor: Any, prompt_text: str | None):
        self.processor, self.prompt_text = processor, prompt_text

    def __call__(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        from PIL import Image

        images = [Image.fromarray(np.asarray(frame)).convert("RGB") for frame in frames]
        return processor_inputs(self.processor, images, self.prompt_text)["pixel_values"].numpy()


_TEXT_KEYS = {"input_ids", "attention_mask", "token_type_ids"}


def _probe_images() -> list[Image.Image]:
    from PIL import Image

    return [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (40, 90), (20, 90, 200))]


def _has_fixed_size_inputs(processor: Any, prompt_text: str | None) -> bool:
    """Whether images of any size become same-shaped ``pixel_values`` and identical prompt ids (BLIP-2, LLaVA-1.5),
    so frames can be preprocessed apart from the prompt and batched later."""
    try:
        inputs = [processor_inputs(processor, [image], prompt_text) for image in _probe_images()]
    except Exception:  # noqa: BLE001 - a processor that can't do this is captioned the plain way
        logger.debug(
            "image processor probe failed; frames are preprocessed in the model process", exc_info=True
        )
        return False
    keys = set(inputs[0].keys())
    if "pixel_values" not in keys or keys - _TEXT_KEYS - {"pixel_values"} or keys != set(inputs[1].keys()):
        return False
    return all(inputs[0][key].shape == inputs[1][key].shape for key in keys) and all(
        inputs[0][key].equal(inputs[1][key]) for key in keys - {"pixel_values"}
    )


def _prompt_tensors(processor: Any, prompt_text: str | None, device: Any) -> dict[str, torch.Tensor]:
    """The text inputs of one image (the prompt, image tokens included) on ``device``; the same for any image
    when :func:`_has_fixed_size_inputs`."""
    inputs = processor_inputs(processor, _probe_images()[:1], prompt_text)
    return {key: value.to(device) for key, value in inputs.items() if key != "pixel_values"}


class TransformersCaptioner:
    """A loaded image-text-to-text model and its processor, captioning greedily."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        name: str,
        revision: str | None,
        prompt: str | None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        weights_digest: str | None = None,
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        self.name = name
        self.revision = revision
        self.weights_digest = weights_digest  # content of a local checkpoint; None for Hub models
        self.dtype = str(vision_dtype(model)).removeprefix("torch.")
        self.max_new_tokens = max_new_tokens
        self.generate_kwargs: dict[str, Any] = {}  # extra generate() options (caption_compile)
        self.uses_chat_template = getattr(processor, "chat_template", None) is not None
        self.prompt = DEFAULT_CHAT_PROMPT if (prompt is None and self.uses_chat_template) else prompt
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"
        self.clean_up_spaces = bool(getattr(tokenizer, "clean_up_tokenization_spaces", False))
        self._prompt_text = self._render_prompt()
        self._fixed_size_images: bool | None = None  # found out on the first image_preprocessor() call
        self._prompt_tensors: dict[str, torch.Tensor] | None = None  # the prompt's ids, for caption_pixels

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype of the vision tower, which takes ``pixel_values``: BLIP-2 under float16 keeps its Q-Former
        in float32, so ``model.dtype`` (its first parameter's) would say float32 while the tower is float16."""
        return vision_dtype(self.model)

    def _render_prompt(self) -> str | None:
        """The text that goes with every image: the chat-formatted prompt, the raw prompt, or None."""
        if self.prompt is None:
            return None
        if not self.uses_chat_template:
            return self.prompt
        conversation = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]},
        ]
        return self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per PIL image: the processor runs here, in this process."""
        if len(images) == 0:
            return []
        rgb = [image.convert("RGB") for image in images]
        inputs = processor_inputs(self.processor, rgb, self._prompt_text)
        return self._generate(inputs.to(self.device, dtype=self.input_dtype))

    def image_preprocessor(self) -> ProcessorImages | None:
        """What turns decoded frames into this model's ``pixel_values`` on a CPU worker, or None when the
        processor's output depends on the image size (then frames are captioned through :meth:`caption`)."""
        if self._fixed_size_images is None:
            self._fixed_size_images = _has_fixed_size_inputs(self.processor, self._prompt_text)
        return ProcessorImages(self.processor, self._prompt_text) if self._fixed_size_images else None

    def caption_pixels(self, pixel_values: Sequence[np.ndarray] | torch.Tensor) -> list[str]:
        """One caption per row of ``pixel_values`` made by :meth:`image_preprocessor` (rows, or one stacked host
        tensor, ideally page-locked): the same captions as :meth:`caption` of the frames; only the copy to the
        device and the model run here."""
        if len(pixel_values) == 0:
            return []
        if self._prompt_tensors is None:
            self._prompt_tensors = _prompt_tensors(self.processor, self._prompt_text, self.device)
        inputs = {key: value.repeat(len(pixel_values), 1) for key, value in self._prompt_tensors.items()}
        inputs["pixel_values"] = batch_to_device(pixel_values, self.device, self.input_dtype)
        return self._generate(inputs)

    def _generate(self, inputs: Any) -> list[str]:
        import torch

        with torch.inference_mode():
            generated = self.model.generate(
                **inputs,
                do_sample=False,
                num_beams=1,
                max_new_tokens=self.max_new_tokens,
                **self.generate_kwargs,
            )
        prompt_ids = inputs.get("input_ids")
        if prompt_ids is not None and generated.shape[1] >= prompt_ids.shape[1]:
            if torch.equal(generated[:, : prompt_ids.shape[1]], prompt_ids.to(generated.device)):
                generated = generated[:, prompt_ids.shape[1] :]  # decoder-only: output repeats the prompt
        return self._decode(generated)

    def _decode(self, generated: torch.Tensor) -> list[str]:
        texts = self.processor.batch_decode(
            generated, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        if self.clean_up_spaces:
            texts = [self.processor.tokenizer.clean_up_tokenization(text) for text in texts]
        return [" ".join(text.split()) for text in texts]

    def __repr__(self) -> str:
        return (
            f"TransformersCaptioner(name={self.name!r}, revision={self.revision!r}, prompt={self.prompt!r})"
        )


def load_captioner(
    name_or_path: str | os.PathLike,
    *,
    prompt: str | None = None,
    device: str | torch.device | None = None,
    dtype: Any = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    revision: str | None = None,
) -> TransformersCaptioner:
    """Load an image-text-to-text model (Hub id or local folder) as a greedy captioner.

    ``prompt``: text for chat models (default :data:`DEFAULT_CHAT_PROMPT`) or a prefix for BLIP-2-style models
    (default: none, plain captioning). ``dtype``: torch dtype or its name; default bf16 on GPU, fp32 on CPU.
    ``revision``: Hub branch, tag or commit; the resolved commit is recorded as ``captioner.revision``.
    A local path that does not exist, or a model that cannot be loaded, is a
    :class:`~avt_core.errors.UsageError`.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    check_model_source(name_or_path, "--captioner")
    device = default_device(device)
    dtype = _resolve_dtype(dtype, device)
    commit = resolve_commit_hash(name_or_path, revision)
    load_revision = commit or revision
    with loading_errors("the captioner", name_or_path):
        _require_captioner_type(name_or_path, load_revision)
        processor = AutoProcessor.from_pretrained(name_or_path, revision=load_revision)
        model = AutoModelForImageTextToText.from_pretrained(name_or_path, revision=load_revision, dtype=dtype)
    model.to(device)
    filled = fill_missing_fields(model, processor)
    if filled:
        logger.warning(
            "%s was saved by transformers 4.x; filled what transformers 5 needs: %s",
            name_or_path,
            "; ".join(filled),
        )
    captioner = TransformersCaptioner(
        model,
        processor,
        name=str(name_or_path),
        revision=commit,
        prompt=prompt,
        max_new_tokens=max_new_tokens,
        weights_digest=local_digest(name_or_path),
    )
    logger.info("loaded %r on %s (%s)", captioner, device, dtype)
    return captioner
