"""--caption-compile (static KV cache + torch.compile'd decoding step) gives the eager path's captions.

The compiled path really runs: torch._dynamo must have compiled frames during the compiled captions, and the
static cache must have been built (a compiled step over a dynamic cache would not be the option's path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avt_core.errors import UsageError
from avt_triplets.caption_compile import compile_captioner
from avt_triplets.captioners import load_captioner


def _frames(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 256, (36 + i, 48, 3), dtype=np.uint8)) for i in range(count)]


def _compiled_frames() -> int:
    from torch._dynamo.utils import counters

    return sum(counters["stats"].values())


def _caption_batches(captioner, frames) -> list[str]:
    # two batch sizes: the second one makes the static cache and the compiled step meet a new shape
    return captioner.caption(frames[:4]) + captioner.caption(frames[4:])


@pytest.mark.parametrize("which", ["tiny_blip2", "tiny_llava"])
def test_compiled_static_cache_captions_equal_eager(which, request):
    folder: Path = request.getfixturevalue(which)
    captioner = load_captioner(str(folder), device="cpu", max_new_tokens=12)
    frames = _frames(6)
    eager = _caption_batches(captioner, frames)
    assert len(set(eager)) > 1  # the frames give different captions, so equality below means something

    torch._dynamo.reset()
    compile_captioner(captioner, backend="aot_eager")  # same graphs as inductor, no kernel build: fast on CPU
    before = _compiled_frames()
    compiled = _caption_batches(captioner, frames)
    assert _compiled_frames() > before, "generate() did not compile the decoding step"
    assert captioner.generate_kwargs["cache_implementation"] == "static"
    assert compiled == eager
    assert captioner.caption([]) == []


def test_inductor_compiled_captions_equal_eager(tiny_llava: Path):
    """The option's real backend (inductor kernels) on the model that compiles quickest."""
    captioner = load_captioner(str(tiny_llava), device="cpu", max_new_tokens=8)
    frames = _frames(3)
    eager = captioner.caption(frames)
    torch._dynamo.reset()
    compile_captioner(captioner)
    assert captioner.generate_kwargs["compile_config"].backend == "inductor"
    assert captioner.caption(frames) == eager


def test_eager_attention_is_switched_to_sdpa(tiny_blip2: Path):
    captioner = load_captioner(str(tiny_blip2), device="cpu", max_new_tokens=4)
    captioner.model.set_attn_implementation("eager")
    assert captioner.model.config._attn_implementation == "eager"
    compile_captioner(captioner, backend="aot_eager")
    assert captioner.model.config._attn_implementation == "sdpa"


def test_models_that_cannot_compile_are_refused(tiny_blip2: Path, monkeypatch):
    with pytest.raises(UsageError, match="transformers captioner"):
        compile_captioner(object())
    captioner = load_captioner(str(tiny_blip2), device="cpu", max_new_tokens=4)
    monkeypatch.setattr(type(captioner.model), "_can_compile_fullgraph", False)
    with pytest.raises(UsageError, match="static KV cache"):
        compile_captioner(captioner)
    assert captioner.generate_kwargs == {}
