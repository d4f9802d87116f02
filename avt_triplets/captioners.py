"""Image captioners: one caption per video frame (LG-CAV-MAE §2.3 step 2).

One transformers backend covers BLIP-2 (the paper's choice, ``Salesforce/blip2-opt-2.7b``), LLaVA-1.5
(``llava-hf/llava-1.5-7b-hf``), Qwen2.5-VL, SmolVLM and any other image-text-to-text model, by Hub id or local
folder: ``AutoProcessor`` + ``AutoModelForImageTextToText``, implementing the captioner contract
(:mod:`avt_triplets.captioner_contract`); what differs between families comes from the adapter registered for the
model's ``model_type`` (:mod:`avt_triplets.captioner_adapters`).

Where frames are preprocessed (:func:`plan_inputs`, logged at load): images of any size that become same-shaped
``pixel_values`` with one prompt (BLIP-2, LLaVA-1.5) are preprocessed in the decode workers and stacked; images whose
inputs vary in size (Qwen's patch grids, SmolVLM's tiles) are preprocessed one at a time in the decode workers with
their metadata and prompt ids, and collated per batch, when that collation equals the processor's own batch of the
same images (checked on synthetic images); anything else is preprocessed in the model process.

``caption_unit="clip"`` (``--caption-unit clip``, families whose adapter declares a video input): a clip's sampled
frames go through the processor's ``videos=`` path as one video with each prompt of ``clip_prompts``, one
caption per prompt (:meth:`TransformersCaptioner.caption_video`); the video is preprocessed in the model process
(the load log says so). Any other family is refused before its weights load, naming the families that can.

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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from avt_core.errors import UsageError
from avt_triplets.captioner_adapters import (
    DEFAULT_CHAT_PROMPT,
    GENERIC,
    CaptionerAdapter,
    adapter_for,
    video_families,
)
from avt_triplets.captioner_contract import GREEDY, Captioner, CaptionerIdentity, CaptionUnit, InputPlan
from avt_triplets.devices import batch_to_device, default_device
from avt_triplets.image_batches import CollatedBatch, collate_rows
from avt_triplets.legacy_checkpoints import fill_missing_fields
from avt_triplets.model_sources import check_model_source, loading_errors, require_model_type
from avt_triplets.options import DEFAULT_CAPTIONER, DEFAULT_MAX_NEW_TOKENS
from avt_triplets.revisions import local_digest, resolve_commit_hash
from avt_triplets.schema import FRAME_SHORT_SIDE

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
    "plan_inputs",
    "resolve_dtype",
    "require_video_support",
    "variable_layout_reason",
]


def resolve_dtype(dtype: Any, device: torch.device) -> torch.dtype:
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


def check_captioner_options(
    name_or_path: str | os.PathLike, dtype: Any = None, caption_unit: CaptionUnit = "frame"
) -> None:
    """Raise :class:`UsageError` for captioner options that cannot work, before anything is loaded."""
    check_model_source(name_or_path, "--captioner")
    resolve_dtype(dtype, default_device("cpu"))
    if os.path.isdir(name_or_path):  # a local folder's config costs nothing to read: a wrong model fails here
        with loading_errors("the captioner", name_or_path):
            config = _require_captioner_type(name_or_path)
        require_video_support(name_or_path, getattr(config, "model_type", None), caption_unit)


def require_video_support(
    name_or_path: Any,
    model_type: str | None,
    caption_unit: CaptionUnit,
    adapter: CaptionerAdapter | None = None,
) -> None:
    """``--caption-unit clip`` needs a family whose adapter declares a video input (read from ``config.json``'s
    ``model_type``, before any weights load); else one :class:`UsageError` naming the families that have one."""
    adapter = adapter or adapter_for(model_type)
    if caption_unit != "clip" or adapter.video is not None:
        return
    raise UsageError(
        f"--caption-unit clip: {name_or_path} is a {model_type!r} model, whose adapter "
        f"({adapter.name}) takes images only; video-capable families: "
        f"{', '.join(video_families())} (or use --caption-unit frame)"
    )


def _require_captioner_type(name_or_path: str | os.PathLike, revision: str | None = None) -> Any:
    """The model's config, one ``AutoModelForImageTextToText`` loads (BLIP-2, LLaVA, ...)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    config = AutoConfig.from_pretrained(name_or_path, revision=revision)
    kind = "an image-text-to-text model (BLIP-2, LLaVA, ...) that AutoModelForImageTextToText loads"
    require_model_type("--captioner", name_or_path, config, MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES, kind)
    return config


def vision_dtype(model: Any, adapter: CaptionerAdapter = GENERIC) -> torch.dtype:
    """The dtype of the model's vision tower, as ``adapter`` finds it (Qwen's tower is ``visual``)."""
    return adapter.vision_dtype(model)


def processor_inputs(
    processor: Any, images: list[Image.Image], prompt_text: str | None, unused: Sequence[str] = ()
) -> Any:
    """The processor's inputs for ``images`` (with ``prompt_text`` for each, when there is one), as tensors,
    without the ``unused`` keys (outputs generate() does not take, such as PaliGemma's training labels). With a
    prompt, the images are given one per prompt (``[[image], ...]``): Gemma 3's processor reads a flat list as one
    prompt's images."""
    kwargs: dict[str, Any] = {"images": images, "return_tensors": "pt"}
    if prompt_text is not None:
        kwargs["images"] = [[image] for image in images]
        kwargs["text"] = [prompt_text] * len(images)
        kwargs["padding"] = True
    inputs = processor(**kwargs)
    for key in unused:
        inputs.pop(key, None)
    return inputs


class ProcessorImages:
    """A captioner's own processor as a decode worker runs it: RGB uint8 frames -> the inputs by key, each with
    a leading frame dimension. ``per_image`` (variable-size layouts): one processor call per frame, whose every
    output (pixel rows, grid, the prompt's ids with that image's tokens) is kept; else one call for all frames and
    only ``pixel_values`` (the prompt is the same for every image). Picklable without the model, so it travels to
    spawned workers and Ray tasks."""

    def __init__(
        self, processor: Any, prompt_text: str | None, per_image: bool = False, unused: Sequence[str] = ()
    ):
        self.processor, self.prompt_text, self.per_image = processor, prompt_text, per_image
        self.unused = tuple(unused)

    def __call__(self, frames: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        from PIL import Image

        images = [Image.fromarray(np.asarray(frame)).convert("RGB") for frame in frames]
        if not self.per_image:
            return {
                "pixel_values": processor_inputs(self.processor, images, self.prompt_text)[
                    "pixel_values"
                ].numpy()
            }
        outputs = [
            processor_inputs(self.processor, [image], self.prompt_text, self.unused) for image in images
        ]
        return {key: np.stack([output[key].numpy() for output in outputs]) for key in outputs[0].keys()}


_TEXT_KEYS = {"input_ids", "attention_mask", "token_type_ids"}


def _probe_images() -> list[Image.Image]:
    from PIL import Image

    return [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (40, 90), (20, 90, 200))]


def _fixed_size_reason(processor: Any, prompt_text: str | None, unused: Sequence[str] = ()) -> str | None:
    """None when images of any size become same-shaped ``pixel_values`` and identical prompt ids (BLIP-2,
    LLaVA-1.5), so frames can be preprocessed apart from the prompt and batched later; else why not."""
    inputs = [processor_inputs(processor, [image], prompt_text, unused) for image in _probe_images()]
    keys = set(inputs[0].keys())
    if "pixel_values" not in keys:
        return "the processor gives no pixel_values"
    if keys - _TEXT_KEYS - {"pixel_values"} or keys != set(inputs[1].keys()):
        return f"the processor describes each image with more than pixels ({', '.join(sorted(keys))})"
    if not all(inputs[0][key].shape == inputs[1][key].shape for key in keys):
        return "the input size depends on the image size"
    if not all(inputs[0][key].equal(inputs[1][key]) for key in keys - {"pixel_values"}):
        return "the prompt's image tokens depend on the image size"
    return None


def _same_batch(collated: dict[str, Any], batched: Any) -> bool:
    import torch

    return set(collated) == set(batched.keys()) and all(
        collated[key].shape == batched[key].shape and torch.equal(collated[key], batched[key].cpu())
        for key in collated
    )


def variable_layout_reason(processor: Any, prompt_text: str | None, unused: Sequence[str] = ()) -> str | None:
    """None when one-image processor outputs, collated by :func:`avt_triplets.image_batches.collate_rows`, equal
    the processor's own output for the images together (checked on two images of different shapes), so decode
    workers can preprocess frames one at a time; else why not."""
    preprocess = ProcessorImages(processor, prompt_text, per_image=True, unused=unused)
    rows = [
        {key: value[0] for key, value in preprocess([np.asarray(image)]).items()} for image in _probe_images()
    ]
    collated = collate_rows(rows, _pad_id(processor))
    if not _same_batch(collated, processor_inputs(processor, _probe_images(), prompt_text, unused)):
        return "one-image inputs collated differ from the processor's batch of the same images"
    return None


def _pad_id(processor: Any) -> int:
    tokenizer = getattr(processor, "tokenizer", None)
    pad = getattr(tokenizer, "pad_token_id", None)
    return int(pad) if pad is not None else 0


def plan_inputs(processor: Any, prompt_text: str | None, adapter: CaptionerAdapter) -> InputPlan:
    """Where this model's frames are preprocessed (decode workers or model process), in which layout, and why."""
    try:
        fixed = _fixed_size_reason(processor, prompt_text, adapter.unused_keys)
        if fixed is None:
            reason = "images of any size become same-shaped pixel_values with the same prompt"
            return InputPlan(
                "fixed", reason, ProcessorImages(processor, prompt_text, unused=adapter.unused_keys)
            )
        variable = variable_layout_reason(processor, prompt_text, adapter.unused_keys)
    except Exception as error:  # noqa: BLE001 - a processor that can't do this is captioned the plain way
        logger.debug("image processor probe failed", exc_info=True)
        return InputPlan("raw", f"the processor probe failed ({type(error).__name__}: {error})")
    if variable is not None:
        return InputPlan("raw", f"{fixed}, and {variable}")
    keys = ", ".join(("pixel_values", *adapter.image_keys)) if adapter.image_keys else "pixel_values"
    reason = f"{fixed}: each frame's {keys} and prompt ids travel together, collated per batch"
    preprocess = ProcessorImages(processor, prompt_text, per_image=True, unused=adapter.unused_keys)
    return InputPlan("variable", reason, preprocess)


def _prompt_tensors(
    processor: Any, prompt_text: str | None, device: Any, unused: Sequence[str] = ()
) -> dict[str, torch.Tensor]:
    """The text inputs of one image (the prompt, image tokens included) on ``device``; the same for any image
    in the ``fixed`` layout."""
    inputs = processor_inputs(processor, _probe_images()[:1], prompt_text, unused)
    return {key: value.to(device) for key, value in inputs.items() if key != "pixel_values"}


class TransformersCaptioner(Captioner):
    """A loaded image-text-to-text model and its processor, captioning greedily; ``adapter`` holds what its
    family does differently."""

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
        adapter: CaptionerAdapter | None = None,
        image_size: int | str = FRAME_SHORT_SIDE,
        clip_prompts: Sequence[str] = (),
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        config = getattr(model, "config", None)  # a stand-in model (bench) has none: the generic adapter
        self.adapter = adapter or adapter_for(getattr(config, "model_type", None))
        self.name = name
        self.revision = revision
        self.weights_digest = weights_digest  # content of a local checkpoint; None for Hub models
        self.dtype = str(vision_dtype(model, self.adapter)).removeprefix("torch.")
        self.max_new_tokens = max_new_tokens
        self.generate_kwargs = {}  # extra generate() options (caption_compile)
        self.uses_chat_template = getattr(processor, "chat_template", None) is not None
        self.prompt = self.adapter.default_prompt(self.uses_chat_template) if prompt is None else prompt
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"
        self.clean_up_spaces = bool(getattr(tokenizer, "clean_up_tokenization_spaces", False))
        self._prompt_text = self.adapter.render_prompt(processor, self.prompt, self.uses_chat_template)
        self.image_size = _resolve_image_size(image_size, self.adapter, processor)
        self.caption_unit: CaptionUnit = "clip" if clip_prompts else "frame"
        self.clip_prompts = tuple(clip_prompts)  # clip unit: one candidate caption per prompt
        if clip_prompts:
            require_video_support(name, getattr(config, "model_type", None), "clip", self.adapter)
        self._plan: InputPlan | None = None  # found out on the first input_plan() call
        self._prompt_tensors: dict[str, torch.Tensor] | None = None  # the prompt's ids, for caption_pixels

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype of the vision tower, which takes ``pixel_values``: BLIP-2 under float16 keeps its Q-Former
        in float32, so ``model.dtype`` (its first parameter's) would say float32 while the tower is float16."""
        return vision_dtype(self.model, self.adapter)

    def identity(self) -> CaptionerIdentity:
        return CaptionerIdentity(
            name=self.name,
            revision=self.revision,
            weights_digest=self.weights_digest,
            dtype=self.dtype,
            prompt=self.prompt,
            max_new_tokens=self.max_new_tokens,
            generation=GREEDY,
            image_size=self.image_size,
            adapter=self.adapter.name,
            caption_unit=self.caption_unit,
            clip_prompts=self.clip_prompts,
        )

    def image_short_side(self) -> int:
        return self.image_size

    def input_plan(self) -> InputPlan:
        if self._plan is None and self.caption_unit == "clip":
            keys = ", ".join(self.adapter.video.keys)
            reason = f"--caption-unit clip: each clip's frames are one video through the processor's ({keys})"
            self._plan = InputPlan("video", reason)
        if self._plan is None:
            self._plan = plan_inputs(self.processor, self._prompt_text, self.adapter)
        return self._plan

    def caption_video(self, frames: Sequence[np.ndarray], fps: float, prompt: str) -> str:
        """One caption of a clip's frames as one video (the processor runs here, in this process), greedy, as
        the family's documented usage: the chat template's video turn, ``videos=``, a batch of one."""
        text = self.adapter.render_video_prompt(self.processor, prompt)
        inputs = self.adapter.video_inputs(self.processor, text, frames, fps)
        return self._generate(inputs.to(self.device, dtype=self.input_dtype))[0]

    def caption(self, images: Sequence[Image.Image]) -> list[str]:
        """One caption per PIL image: the processor runs here, in this process."""
        if len(images) == 0:
            return []
        rgb = [image.convert("RGB") for image in images]
        inputs = processor_inputs(self.processor, rgb, self._prompt_text, self.adapter.unused_keys)
        return self._generate(inputs.to(self.device, dtype=self.input_dtype))

    def stack(self, rows: Sequence[Mapping[str, np.ndarray]], pin: bool) -> Any:
        """Fixed layout: the rows' pixel_values as one host tensor; variable: every key collated."""
        if self.input_plan().layout == "variable":
            return CollatedBatch(rows, _pad_id(self.processor), pin=pin)
        return super().stack(rows, pin)

    def caption_pixels(self, batch: Any) -> list[str]:
        """One caption per row of a :meth:`stack`ed batch (ideally page-locked): the same captions as
        :meth:`caption` of the frames; only the copy to the device and the model run here."""
        if len(batch) == 0:
            return []
        if isinstance(batch, CollatedBatch):
            return self._generate(_batch_on(batch.tensors, self.device, self.input_dtype))
        if self._prompt_tensors is None:
            self._prompt_tensors = _prompt_tensors(
                self.processor, self._prompt_text, self.device, self.adapter.unused_keys
            )
        inputs = {key: value.repeat(len(batch), 1) for key, value in self._prompt_tensors.items()}
        inputs["pixel_values"] = batch_to_device(batch, self.device, self.input_dtype)
        return self._generate(inputs)

    def _generate(self, inputs: Any) -> list[str]:
        import torch

        with torch.inference_mode():
            generated = self.model.generate(
                **inputs, **GREEDY, max_new_tokens=self.max_new_tokens, **self.generate_kwargs
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
            f"TransformersCaptioner(name={self.name!r}, revision={self.revision!r}, prompt={self.prompt!r}, "
            f"adapter={self.adapter.name!r})"
        )


def _batch_on(batch: dict[str, torch.Tensor], device: Any, dtype: Any) -> dict[str, torch.Tensor]:
    """A collated batch on ``device``, floating tensors (pixels) cast to ``dtype`` there."""
    moved = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
    return {key: value.to(dtype) if value.is_floating_point() else value for key, value in moved.items()}


def _resolve_image_size(size: int | str, adapter: CaptionerAdapter, processor: Any) -> int:
    """``--caption-image-size``: the number given, or for ``native`` the model's input size as its adapter reads it
    from the processor (0, the video's own size, for a model that takes any size)."""
    if size != "native":
        return int(size)
    return adapter.native_image_size(processor) or 0


def _log_plan(captioner: TransformersCaptioner, model_type: str | None) -> None:
    """Which adapter, and which path its frames take (decode workers or the model process), and why."""
    adapter = captioner.adapter
    if adapter is GENERIC:
        logger.info("no adapter is registered for model_type %r: the generic adapter is used", model_type)
    logger.info("captioner %s: %s", captioner.name, captioner.input_plan().describe(adapter.name))


def load_captioner(
    name_or_path: str | os.PathLike,
    *,
    prompt: str | None = None,
    device: str | torch.device | None = None,
    dtype: Any = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    revision: str | None = None,
    image_size: int | str = FRAME_SHORT_SIDE,
    clip_prompts: Sequence[str] = (),
) -> TransformersCaptioner:
    """Load an image-text-to-text model (Hub id or local folder) as a greedy captioner.

    ``prompt``: text for chat models (default :data:`DEFAULT_CHAT_PROMPT`) or a prefix for BLIP-2-style models
    (default: none, plain captioning). ``dtype``: torch dtype or its name; default bf16 on GPU, fp32 on CPU.
    ``revision``: Hub branch, tag or commit; the resolved commit is recorded as ``captioner.revision``.
    ``image_size``: the short side frames are captioned at (``"native"``: the model's, see the adapters).
    ``clip_prompts``: caption whole clips as videos (``--caption-unit clip``), one candidate per prompt; a family
    without a video input is refused from its config, before the weights load.
    A local path that does not exist, or a model that cannot be loaded, is a
    :class:`~avt_core.errors.UsageError`.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    check_model_source(name_or_path, "--captioner")
    device = default_device(device)
    dtype = resolve_dtype(dtype, device)
    commit = resolve_commit_hash(name_or_path, revision)
    load_revision = commit or revision
    with loading_errors("the captioner", name_or_path):
        config = _require_captioner_type(name_or_path, load_revision)
    require_video_support(
        name_or_path, getattr(config, "model_type", None), "clip" if clip_prompts else "frame"
    )
    with loading_errors("the captioner", name_or_path):
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
        image_size=image_size,
        clip_prompts=clip_prompts,
    )
    logger.info("loaded %r on %s (%s)", captioner, device, dtype)
    _log_plan(captioner, getattr(model.config, "model_type", None))
    return captioner
