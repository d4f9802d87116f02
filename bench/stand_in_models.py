"""Stand-in models for overlap benchmarks: they hold each batch for a fixed time without using the CPU.

A GPU kernel keeps the model process waiting while the CPU is free for everything else; a ``time.sleep`` does
the same on a machine without a GPU. The stand-ins sit behind the product's own classes, so everything around
the model call is the code users run:

* :func:`stand_in_captioner`: a :class:`~avt_triplets.captioners.TransformersCaptioner` whose processor is
  BLIP-2's real image processor at 224 px (the CPU cost of preprocessing is the real one) and whose model's
  ``generate`` holds ``ms_per_frame`` per frame of the batch and returns one fixed caption;
* :func:`stand_in_family_captioner`: the same over another family's real processor at its published settings
  (Qwen2.5-VL's dynamic resolution, SmolVLM's tiles, ...), inputs in that family's batch layout;
* :class:`StandInScorer`: a :class:`~avt_triplets.windowed_scorer.WindowedScorer` with msclap's audio layout
  (44.1 kHz, 7 s windows) that holds ``ms_per_window`` per audio window and ``ms_per_text`` per caption and
  returns fixed embeddings.

``held_s`` on each stand-in adds up the time it held batches (the time the models alone would take);
``holds`` records when each hold started and ended (``time.perf_counter``), to see the pipeline fill and drain.
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import torch

from avt_triplets.windowed_scorer import RepeatedWindows, WindowedScorer

# BLIP-2's image processor (Salesforce/blip2-opt-2.7b): 224 x 224, bicubic, CLIP's mean and std.
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
_IMAGE_TOKEN = 50265
_CAPTION = "w10 w11 w12 w13 w14 w15"
_TEXT_CAPTION = "a dog barking in the yard"  # words of the tiny tokenizers' vocabulary


class HoldingCaptionModel(torch.nn.Module):
    """``generate`` sleeps ``ms_per_frame`` per image and returns the same token ids for every image."""

    def __init__(self, ms_per_frame: float, caption_ids: list[int]):
        super().__init__()
        self.vision_model = torch.nn.Linear(1, 1)  # a vision tower, for the captioner's input dtype
        self.ms_per_frame = ms_per_frame
        self.caption_ids = torch.tensor([caption_ids])
        self.held_s = 0.0
        self.holds: list[tuple[float, float]] = []
        self.frames = 0

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def generate(self, pixel_values: torch.Tensor, input_ids: torch.Tensor | None = None, **_: object):
        # one prompt per image; a variable-size batch's pixel rows are patches or tiles, not images
        images = pixel_values.shape[0] if input_ids is None else input_ids.shape[0]
        started = time.perf_counter()
        time.sleep(self.ms_per_frame * images / 1000)
        self.holds.append((started, time.perf_counter()))
        self.held_s += self.holds[-1][1] - started
        self.frames += images
        return self.caption_ids.expand(images, -1)


def stand_in_captioner(ms_per_frame: float, max_new_tokens: int = 30):
    """The product's captioner class over a :class:`HoldingCaptionModel` and BLIP-2's real processor."""
    from random_models import _word_tokenizer
    from transformers import Blip2Processor, BlipImageProcessor

    from avt_triplets.captioners import TransformersCaptioner

    tokenizer = _word_tokenizer(_IMAGE_TOKEN)
    image_processor = BlipImageProcessor(
        size={"height": 224, "width": 224}, image_mean=_CLIP_MEAN, image_std=_CLIP_STD
    )
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=32)
    ids = [2, *tokenizer(_CAPTION, add_special_tokens=False)["input_ids"], 2]
    model = HoldingCaptionModel(ms_per_frame, ids)
    return TransformersCaptioner(
        model, processor, name="stand-in captioner", revision=None, prompt=None, max_new_tokens=max_new_tokens
    )


def stand_in_family_captioner(model_type: str, ms_per_frame: float, workdir, image_size: int | str = 224):
    """The product's captioner class over a :class:`HoldingCaptionModel` and the family's real processor at its
    published image settings (:mod:`published_processors`), with the family's adapter: Qwen2.5-VL's patch rows
    and ``image_grid_thw``, SmolVLM's tiles, as the pipeline prepares, ships and collates them."""
    from published_processors import published_processor

    from avt_triplets.captioner_adapters import adapter_for
    from avt_triplets.captioners import TransformersCaptioner

    processor = published_processor(model_type, workdir)
    tokenizer = processor.tokenizer
    ids = tokenizer(_TEXT_CAPTION, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids, "the tiny vocabulary lacks the stand-in caption's words"
    model = HoldingCaptionModel(ms_per_frame, [*ids, tokenizer.eos_token_id])
    return TransformersCaptioner(
        model,
        processor,
        name=f"stand-in {model_type} captioner",
        revision=None,
        prompt=None,
        adapter=adapter_for(model_type),
        image_size=image_size,
    )


class StandInScorer(WindowedScorer):
    """msclap's audio layout (44.1 kHz mono, 7 s windows, 50 % overlap); holds batches, fixed embeddings."""

    name = "stand-in scorer"
    revision = None
    embed_dim = 1024
    sampling_rate = 44_100
    window_samples = 7 * 44_100
    dtype = "float32"
    weights_digest = None

    def __init__(self, ms_per_window: float, ms_per_text: float):
        self.ms_per_window, self.ms_per_text = ms_per_window, ms_per_text
        self.held_s = 0.0
        self.holds: list[tuple[float, float]] = []

    def _hold(self, seconds: float) -> None:
        started = time.perf_counter()
        time.sleep(seconds)
        self.holds.append((started, time.perf_counter()))
        self.held_s += self.holds[-1][1] - started

    device = torch.device("cpu")

    def audio_preprocessor(self) -> RepeatedWindows:
        return RepeatedWindows(self.window_samples)

    def _embed_prepared(self, batch: torch.Tensor) -> torch.Tensor:
        self._hold(self.ms_per_window * len(batch) / 1000)
        return torch.ones((len(batch), self.embed_dim))

    def _embed_texts(self, texts: list[str]) -> torch.Tensor:
        self._hold(self.ms_per_text * len(texts) / 1000)
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.embed_dim) for t in texts]
        return torch.from_numpy(np.stack(rows).astype(np.float32))
