"""``--caption-compile``: greedy captioning with a static KV cache and a ``torch.compile``d decoding step.

Captioning ~2M frames is the whole cost of triplet generation. With HF ``generate`` in eager mode each decoding
step of OPT-2.7B launches hundreds of small kernels from Python; at 30 tokens per caption that launch overhead, not
the GPU, bounds the rate. transformers' own recipe removes it: a ``StaticCache`` (fixed-shape KV tensors, so the
step has static shapes) plus automatic compilation of the model's forward for the decoding steps
(``cache_implementation="static"`` + a ``CompileConfig``; ``mode="reduce-overhead"`` replays the step as a CUDA
graph). The prefill (vision tower, Q-Former/projector, prompt) stays eager: its shapes change with the prompt.

What this does to a loaded :class:`~avt_triplets.captioners.TransformersCaptioner`:

* passes ``cache_implementation="static"`` and a ``CompileConfig`` to every ``generate`` call
  (``captioner.generate_kwargs``). BLIP-2 forwards them to its language model's ``generate``, LLaVA uses them
  itself, so one setting covers both;
* makes sure attention is SDPA (transformers 5's default; a model loaded with ``eager`` is switched);
* compiles on every device. transformers only auto-compiles on accelerators; the option is honoured on CPU too
  (``_compile_all_devices``), which is slow to warm up but lets the CPU tests run the compiled path.

Greedy decoding over a static cache computes the same logits as the dynamic cache (the unused cache slots are
masked out), so captions are unchanged; the tests compare both paths on the tiny BLIP-2 and LLaVA. The first batch
of each new batch size pays the compilation (tens of seconds for OPT-2.7B); after the second distinct size
``torch.compile`` switches to a dynamic batch dimension, so a run's tail batches don't recompile again.
Dtype is unchanged: bf16 on GPU and fp32 on CPU by default (see :func:`avt_triplets.captioners.load_captioner`).
"""

from __future__ import annotations

import logging
from typing import Any

from avt_core.errors import UsageError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_BACKEND", "compile_captioner", "static_compile_kwargs"]

DEFAULT_BACKEND = "inductor"

# Attention implementations that work with a static cache under torch.compile.
_COMPILABLE_ATTENTION = ("sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")


def static_compile_kwargs(device_type: str, backend: str = DEFAULT_BACKEND) -> dict[str, Any]:
    """``generate`` keyword arguments for a static KV cache and a compiled decoding step.

    ``mode``: CUDA graphs (``reduce-overhead``, transformers' default) on CUDA; plain inductor elsewhere.
    ``backend``: a ``torch.compile`` backend; ``"aot_eager"`` traces the same graph without generating kernels
    (tests and smoke runs use it to stay fast on CPU).
    """
    from transformers import CompileConfig

    config = CompileConfig(
        backend=backend,
        mode="reduce-overhead" if device_type == "cuda" and backend == "inductor" else "default",
    )
    config._compile_all_devices = (
        True  # honour the option on CPU/MPS too (transformers compiles on GPUs only)
    )
    return {"cache_implementation": "static", "compile_config": config}


def _ensure_compilable_attention(model: Any) -> None:
    implementation = getattr(model.config, "_attn_implementation", None)
    if implementation in _COMPILABLE_ATTENTION:
        return
    if not getattr(model, "_supports_sdpa", False):
        raise UsageError(
            f"--caption-compile: {type(model).__name__} uses {implementation!r} attention and does not support "
            "SDPA; run without --caption-compile"
        )
    logger.info(
        "switching %s from %r to SDPA attention for --caption-compile", type(model).__name__, implementation
    )
    model.set_attn_implementation("sdpa")


def compile_captioner(captioner: Any, *, backend: str | None = None) -> Any:
    """Make ``captioner`` (a :class:`~avt_triplets.captioners.TransformersCaptioner`) decode with a static
    cache and a compiled step (``backend``: default :data:`DEFAULT_BACKEND`); returns the same object.
    Raises :class:`UsageError` for models that can't."""
    backend = backend or DEFAULT_BACKEND
    from avt_triplets.captioners import TransformersCaptioner

    if not isinstance(captioner, TransformersCaptioner):
        raise UsageError(f"--caption-compile needs a transformers captioner, got {type(captioner).__name__}")
    model = captioner.model
    if not getattr(model, "_can_compile_fullgraph", False):
        raise UsageError(
            f"--caption-compile: {type(model).__name__} does not support a static KV cache under torch.compile "
            "(transformers marks it not compilable); run without --caption-compile"
        )
    _ensure_compilable_attention(model)
    captioner.generate_kwargs.update(static_compile_kwargs(model.device.type, backend))
    logger.info(
        "captioner %s: static KV cache + torch.compile (%s) of the decoding step", captioner.name, backend
    )
    return captioner
