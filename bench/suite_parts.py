"""The parts of ``bench/gpu_suite.py``; each records its figures through ``ctx.record`` as soon as it has them.

Every part runs the product's code (``TransformersCaptioner.caption``, ``load_msclap_scorer``, ``generate_triplets``,
``LGCavMaeForPreTraining``, the training collator and dataset) on random-weight models at the published sizes, or
at smoke sizes on CPU. A part checks ``ctx.time_left()`` between measurements and records what it skipped.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Context:
    """What a part needs: size mode, device, where to record, its deadline, models shared between parts."""

    smoke: bool
    device: str
    record: Callable[[str, Any], None]
    deadline: float
    workdir: Path
    cache: dict[str, Any] = field(default_factory=dict)

    def time_left(self) -> float:
        return self.deadline - time.time()

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"


def release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _reset_peak(ctx: Context) -> None:
    import torch

    if ctx.cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(ctx: Context) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if ctx.cuda else None


# ----------------------------------------------------------------------------------------------
# (a) captioner: BLIP-2 OPT-2.7B frames/s at batch 32 / 128 / auto, eager vs --caption-compile


def _frames(count: int) -> list:
    """Decoded-frame-like RGB images (short side 224, 4:3), 16 distinct ones repeated."""
    from PIL import Image

    rng = np.random.default_rng(0)
    distinct = [Image.fromarray(rng.integers(0, 256, (224, 298, 3), dtype=np.uint8)) for _ in range(16)]
    return [distinct[i % len(distinct)] for i in range(count)]


def _time_captions(ctx: Context, captioner, size: int, repeats: int) -> dict[str, Any]:
    """Warm-up batch (compilation lands here), then ``repeats`` timed batches of ``size`` frames, captioned the way
    the pipeline does: ``caption_pixels`` of rows the decode workers preprocessed (that preprocessing is timed
    apart, as ``preprocess_ms_per_frame`` of one CPU worker)."""
    frames = _frames(size)
    started = time.perf_counter()
    from avt_triplets.model_inputs import rows_of

    prepared = captioner.image_preprocessor()([np.asarray(frame) for frame in frames])
    preprocess_s = time.perf_counter() - started
    rows = captioner.stack(rows_of(prepared), pin=False)
    _reset_peak(ctx)
    started = time.perf_counter()
    captions = captioner.caption_pixels(rows)
    warmup_s = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        if times and ctx.time_left() < 2 * times[-1] + 5:
            break
        started = time.perf_counter()
        captioner.caption_pixels(rows)
        times.append(time.perf_counter() - started)
    median = statistics.median(times or [warmup_s])
    return {
        "batch_size": size,
        "frames_per_s": round(size / median, 2),
        "batch_s_median": round(median, 4),
        "timed_batches": len(times),
        "warmup_s": round(warmup_s, 2),
        "peak_memory_gib": _peak_gib(ctx),
        "preprocess_ms_per_frame": round(1000 * preprocess_s / size, 3),
        "first_captions": captions[:2],
    }


def _caption_variants(ctx: Context, captioner, sizes: list[int], label: str, repeats: int) -> dict:
    results = {}
    for size in sizes:
        if ctx.time_left() < (5 if ctx.smoke else 30):
            ctx.record(f"{label}_bs{size}", {"skipped": "out of time"})
            continue
        try:
            results[size] = _time_captions(ctx, captioner, size, repeats)
        except Exception as error:  # noqa: BLE001 - record and go on with the other sizes
            results[size] = {"batch_size": size, "error": f"{type(error).__name__}: {error}"[:500]}
            release_memory()
        ctx.record(f"{label}_bs{size}", results[size])
    return results


def captioner_part(ctx: Context) -> None:
    import torch
    from random_models import BLIP2_OPT_2_7B, BLIP2_SMOKE, build_blip2_captioner

    from avt_triplets.auto_batch_size import probe_caption_batch_size
    from avt_triplets.caption_compile import compile_captioner

    spec = BLIP2_SMOKE if ctx.smoke else BLIP2_OPT_2_7B
    dtype = torch.bfloat16 if ctx.cuda else torch.float32
    max_new_tokens = 8 if ctx.smoke else 30
    started = time.perf_counter()
    captioner = build_blip2_captioner(spec, device=ctx.device, dtype=dtype, max_new_tokens=max_new_tokens)
    model = captioner.model
    ctx.record(
        "model",
        {
            "name": spec["name"],
            "parameters_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
            "dtype": str(dtype),
            "attention": model.config._attn_implementation,
            "new_tokens_per_caption": max_new_tokens,
            "build_s": round(time.perf_counter() - started, 1),
        },
    )
    sizes = [2, 4] if ctx.smoke else [32, 128]
    repeats = 1 if ctx.smoke else 3
    eager = _caption_variants(ctx, captioner, sizes, "eager", repeats)
    auto = probe_caption_batch_size(
        captioner, 8 if ctx.smoke else 1024
    )  # what --caption-batch-size auto runs
    ctx.record("auto_batch_size", auto)
    eager.update(_caption_variants(ctx, captioner, [auto], "eager", repeats))
    reference = captioner.caption(_frames(sizes[0]))
    ctx.record(
        "reference_distinct_captions", len(set(reference))
    )  # says whether the agreement below is telling

    compile_captioner(captioner, backend="aot_eager" if ctx.smoke else None)
    ctx.record("compile_backend", captioner.generate_kwargs["compile_config"].backend)
    # the most useful sizes first: the time box may stop the part before the last one
    compiled = _caption_variants(ctx, captioner, [sizes[-1], auto, sizes[0]], "compiled", repeats)
    ctx.record("compiled_captions_equal_eager_fraction", _equal_fraction(captioner, reference, sizes[0]))
    speedups = {
        f"bs{size}": round(compiled[size]["frames_per_s"] / eager[size]["frames_per_s"], 3)
        for size in compiled
        if "frames_per_s" in compiled[size] and "frames_per_s" in eager.get(size, {})
    }
    ctx.record("compiled_speedup", speedups)
    rates = [r["frames_per_s"] for r in [*eager.values(), *compiled.values()] if "frames_per_s" in r]
    ctx.record("best_frames_per_s", max(rates, default=None))
    ctx.cache["captioner"] = captioner
    ctx.cache["caption_batch_size"] = sizes[-1]


def _equal_fraction(captioner, reference: list[str], size: int) -> float:
    captions = captioner.caption(_frames(size))
    return round(sum(a == b for a, b in zip(captions, reference)) / len(reference), 3)


# ----------------------------------------------------------------------------------------------
# (a2) captioner families: SmolVLM-256M and Qwen2.5-VL-3B frames/s at auto batch size, peak memory

FAMILY_SPECS = {  # label -> (model_type, smoke spec, published spec), names in bench/random_models.py
    "smolvlm_256m": ("idefics3", "SMOLVLM_SMOKE", "SMOLVLM_256M"),
    "qwen2_5_vl_3b": ("qwen2_5_vl", "QWEN2_5_VL_SMOKE", "QWEN2_5_VL_3B"),
}
FAMILY_PROBE_START = 256  # largest batch the auto probe tries on a GPU (a chunk of 64 clips x 4 frames)


def _family_captioner(ctx: Context, model_type: str, spec: dict, max_new_tokens: int):
    """The random model around the family's processor: published image settings at the published sizes, the
    tiny builder's (32 px tiles) at the smoke sizes, so the tower's input size matches."""
    import torch
    from published_processors import published_processor, tiny_folder
    from random_models import build_family_captioner
    from transformers import AutoProcessor

    if ctx.smoke:
        processor = AutoProcessor.from_pretrained(tiny_folder(model_type, ctx.workdir))
    else:
        processor = published_processor(model_type, ctx.workdir)
    dtype = torch.bfloat16 if ctx.cuda else torch.float32
    return build_family_captioner(
        spec, processor, device=ctx.device, dtype=dtype, max_new_tokens=max_new_tokens
    )


def _time_family(ctx: Context, captioner, size: int, repeats: int) -> dict[str, Any]:
    """Frames/s of ``caption_pixels`` on batches of ``size`` rows stacked as the pipeline stacks them, from 16
    distinct frames preprocessed once (a published SmolVLM frame is 13 tiles: preprocessing every row of a
    large batch would take minutes of one CPU core, which decode workers share out in a run)."""
    from avt_triplets.model_inputs import rows_of

    distinct = [np.asarray(frame) for frame in _frames(16)]
    started = time.perf_counter()
    rows = rows_of(captioner.image_preprocessor()(distinct))
    preprocess_s = time.perf_counter() - started
    started = time.perf_counter()
    batch = captioner.stack([rows[i % len(rows)] for i in range(size)], pin=ctx.cuda)
    stack_s = time.perf_counter() - started
    _reset_peak(ctx)
    times = []
    for _ in range(repeats + 1):  # the first is the warm-up
        if len(times) > 1 and ctx.time_left() < 2 * times[-1] + 5:
            break
        started = time.perf_counter()
        captioner.caption_pixels(batch)
        times.append(time.perf_counter() - started)
    median = statistics.median(times[1:] or times)
    return {
        "batch_size": size,
        "frames_per_s": round(size / median, 2),
        "batch_s_median": round(median, 4),
        "timed_batches": len(times) - 1,
        "peak_memory_gib": _peak_gib(ctx),
        "preprocess_ms_per_frame": round(1000 * preprocess_s / len(distinct), 2),
        "stack_ms_per_frame": round(1000 * stack_s / size, 3),
        "row_shapes": {key: list(value.shape) for key, value in rows[0].items()},
    }


def captioner_families_part(ctx: Context) -> None:
    import random_models

    from avt_triplets.auto_batch_size import probe_caption_batch_size

    max_new_tokens = 8 if ctx.smoke else 30
    for label, (model_type, smoke_name, published_name) in FAMILY_SPECS.items():
        if ctx.time_left() < (5 if ctx.smoke else 30):
            ctx.record(label, {"skipped": "out of time"})
            continue
        spec = getattr(random_models, smoke_name if ctx.smoke else published_name)
        started = time.perf_counter()
        captioner = _family_captioner(ctx, model_type, spec, max_new_tokens)
        model = {
            "name": spec["name"],
            "parameters_b": round(sum(p.numel() for p in captioner.model.parameters()) / 1e9, 3),
            "dtype": captioner.dtype,
            "adapter": captioner.adapter.name,
            "layout": captioner.input_plan().layout,
            "build_s": round(time.perf_counter() - started, 1),
        }
        try:
            auto = probe_caption_batch_size(captioner, 8 if ctx.smoke else FAMILY_PROBE_START)
            result = {"model": model, "auto_batch_size": auto}
            result.update(_time_family(ctx, captioner, auto, 1 if ctx.smoke else 3))
        except Exception as error:  # noqa: BLE001 - record and go on with the other family
            result = {"model": model, "error": f"{type(error).__name__}: {error}"[:500]}
        ctx.record(label, result)
        del captioner
        release_memory()


# ----------------------------------------------------------------------------------------------
# (b) scorer: msclap 2023 audio clips/s and captions/s


def load_benchmark_scorer(ctx: Context):
    """msclap 2023 (full size or tiny) with random weights, written to disk and loaded the product's way."""
    from avt_triplets.msclap_scorer import load_msclap_scorer
    from avt_triplets.tiny.msclap import make_random_msclap_2023, make_tiny_msclap

    folder = ctx.workdir / "msclap"
    if not (folder / "CLAP_weights_2023.pth").is_file():
        (make_tiny_msclap if ctx.smoke else make_random_msclap_2023)(folder)
    return load_msclap_scorer(weights=folder, device=ctx.device)


def _time_calls(ctx: Context, fn, make_batch: Callable[[int], list], repeats: int) -> dict[str, Any]:
    """One warm-up call, then ``repeats`` timed calls of ``fn(make_batch(call_index))``."""
    _reset_peak(ctx)
    batch = make_batch(0)
    started = time.perf_counter()
    fn(batch)
    warmup_s = time.perf_counter() - started
    times = []
    for call in range(1, repeats + 1):
        batch = make_batch(call)
        started = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return {
        "batch_size": len(batch),
        "per_s": round(len(batch) / median, 2),
        "batch_s_median": round(median, 4),
        "warmup_s": round(warmup_s, 2),
        "peak_memory_gib": _peak_gib(ctx),
    }


def scorer_part(ctx: Context) -> None:
    started = time.perf_counter()
    scorer = load_benchmark_scorer(ctx)
    ctx.record(
        "model",
        {
            "name": "random-weight msclap 2023" + (" (tiny)" if ctx.smoke else " (published sizes)"),
            "parameters_m": round(sum(p.numel() for p in scorer.model.parameters()) / 1e6, 1),
            "sampling_rate": scorer.sampling_rate,
            "build_and_load_s": round(time.perf_counter() - started, 1),
        },
    )
    sizes = [4] if ctx.smoke else [64, 256]
    repeats = 1 if ctx.smoke else 3
    rng = np.random.default_rng(0)
    seconds = 2.0 if ctx.smoke else 10.0
    clips = [
        (0.1 * rng.standard_normal(int(seconds * scorer.sampling_rate))).astype(np.float32)
        for _ in range(max(sizes))
    ]
    words = "a dog barks while a man plays guitar on a busy street near the beach at night".split()
    captions = [" ".join(rng.choice(words, 12)) for _ in range(max(sizes))]
    for size in sizes:
        audio = _time_calls(ctx, scorer.embed_audio, lambda _call, n=size: clips[:n], repeats)
        audio["clip_seconds"] = seconds
        ctx.record(f"audio_bs{size}", audio)
        # new strings every call: the scorer caches text embeddings by string
        text = _time_calls(
            ctx, scorer.embed_text, lambda call, n=size: [f"{call} {c}" for c in captions[:n]], repeats
        )
        ctx.record(f"text_bs{size}", text)
    ctx.record("audio_clips_per_s", audio["per_s"])  # at the largest batch
    ctx.record("captions_per_s", text["per_s"])
    ctx.cache["scorer"] = scorer


# ----------------------------------------------------------------------------------------------
# (c) avt generate end to end on synthetic clips with the same models


class UtilisationSampler:
    """Samples ``torch.cuda.utilization()`` (NVML) every ``interval`` seconds while the block runs."""

    def __init__(self, enabled: bool, interval: float = 0.2) -> None:
        self.enabled, self.interval, self.samples = enabled, interval, []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch

        while not self._stop.wait(self.interval):
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception as error:  # noqa: BLE001 - no NVML: say so instead of failing the part
                self.error = f"{type(error).__name__}: {error}"
                return

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join()

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"mean_percent": None, "note": self.error or "no CUDA device: not sampled"}
        values = np.asarray(self.samples)
        return {
            "mean_percent": round(float(values.mean()), 1),
            "p10_percent": round(float(np.percentile(values, 10)), 1),
            "p50_percent": round(float(np.percentile(values, 50)), 1),
            "samples": len(values),
        }


def generate_part(ctx: Context) -> None:
    from types import SimpleNamespace

    import bench_generate as bg

    captioner = ctx.cache.get("captioner")
    if captioner is None:  # the captioner part failed: measure eager
        import torch
        from random_models import BLIP2_OPT_2_7B, BLIP2_SMOKE, build_blip2_captioner

        dtype = torch.bfloat16 if ctx.cuda else torch.float32
        spec = BLIP2_SMOKE if ctx.smoke else BLIP2_OPT_2_7B
        captioner = build_blip2_captioner(
            spec, device=ctx.device, dtype=dtype, max_new_tokens=8 if ctx.smoke else 30
        )
    scorer = ctx.cache.get("scorer") or load_benchmark_scorer(ctx)
    clips, seconds = (6, 2.0) if ctx.smoke else (300, 10.0)
    args = SimpleNamespace(
        clips=clips,
        shard_size=3 if ctx.smoke else 100,
        num_workers=1 if ctx.smoke else None,
        caption_batch_size=ctx.cache.get("caption_batch_size", 8 if ctx.smoke else 128),
        score_batch_size=4 if ctx.smoke else 64,
    )
    ctx.record(
        "setup",
        {
            "clips": clips,
            "clip_seconds": seconds,
            "captioner": captioner.name,
            "caption_compile": "compile_config" in captioner.generate_kwargs,
            "caption_batch_size": args.caption_batch_size,
            "score_batch_size": args.score_batch_size,
            "num_workers": args.num_workers if args.num_workers is not None else "default (cores - 1, <= 8)",
        },
    )
    list_csv = bg.make_clip_list(ctx.workdir / "videos", clips, seconds)
    warm = bg.make_clip_list(ctx.workdir / "warm", 2, min(seconds, 2.0))
    bg.end_to_end(warm, ctx.workdir / "warm_out", captioner, scorer, args, clips=2)
    alone = bg.models_alone(list_csv, captioner, scorer, args.caption_batch_size, args.score_batch_size)
    models_clips_per_s = clips / (alone["caption_s"] + alone["score_s"])
    ctx.record("models_alone_clips_per_s", round(models_clips_per_s, 3))
    with UtilisationSampler(ctx.cuda) as sampler:
        e2e = bg.end_to_end(list_csv, ctx.workdir / "out", captioner, scorer, args)
    clips_per_s = clips / e2e["wall_s"]
    ctx.record("end_to_end_clips_per_s", round(clips_per_s, 3))
    ctx.record("end_to_end_over_models_alone", round(clips_per_s / models_clips_per_s, 3))
    ctx.record("frames_per_s", round(alone["frames"] / e2e["wall_s"], 2))
    ctx.record("stage_seconds", {k: round(v, 2) for k, v in e2e["seconds"].items()})
    ctx.record("gpu_utilisation", sampler.summary())


# ----------------------------------------------------------------------------------------------
# (d) one LG-CAV-MAE pretraining step: ours (SDPA, bf16 autocast) vs the official way (eager, fp16 + GradScaler)

TRAIN_VARIANTS = {
    "ours_sdpa_bf16": ("sdpa", "bfloat16", False),
    "official_eager_fp16_gradscaler": ("eager", "float16", True),
}


def _train_variant(ctx: Context, model, inputs, initial: dict, variant: tuple, steps: int) -> dict[str, Any]:
    """First step from ``initial`` weights (its loss is the agreement check), one more warm-up, ``steps`` timed."""
    import torch

    from avt_training.optim import build_adam, trainable_parameters

    attn, dtype_name, scaled = variant
    dtype = getattr(torch, dtype_name)
    model.load_state_dict(initial)
    model.config._attn_implementation = attn
    optimizer = build_adam(trainable_parameters(model), lr=1e-4)
    scaler = torch.amp.GradScaler(ctx.device, enabled=scaled)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(ctx.device, dtype=dtype):
            loss = model(**inputs).loss
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        value = loss.item()  # synchronises
        return value

    _reset_peak(ctx)
    first_loss = step()
    step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    batch = next(iter(inputs.values())).shape[0]
    return {
        "attention": attn,
        "autocast": dtype_name,
        "grad_scaler": scaled,
        "step_s_median": round(median, 4),
        "samples_per_s": round(batch / median, 2),
        "peak_memory_gib": _peak_gib(ctx),
        "first_step_loss": first_loss,
    }


def train_step_part(ctx: Context) -> None:
    import bench_model_step as bms

    batch = 2 if ctx.smoke else 48
    options = {"device": ctx.device, "batch_size": batch, "threads": 0, "tiny": ctx.smoke, "no_text": False}
    model, inputs, _ = bms._setup(options)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ctx.record(
        "setup", {"config": "tiny" if ctx.smoke else "paper (LGCavMaeConfig defaults)", "batch_size": batch}
    )
    results = {}
    for name, variant in TRAIN_VARIANTS.items():
        results[name] = _train_variant(ctx, model, inputs, initial, variant, 2 if ctx.smoke else 10)
        ctx.record(name, results[name])
        release_memory()
    ours, official = results["ours_sdpa_bf16"], results["official_eager_fp16_gradscaler"]
    ctx.record(
        "samples_per_s_ratio_ours_over_official", round(ours["samples_per_s"] / official["samples_per_s"], 3)
    )
    if ctx.cuda:
        ctx.record(
            "peak_memory_ratio_ours_over_official",
            round(ours["peak_memory_gib"] / official["peak_memory_gib"], 3),
        )
    diff = abs(ours["first_step_loss"] - official["first_step_loss"])
    ctx.record("first_step_loss_abs_diff", diff)
    ctx.record("first_step_loss_rel_diff", diff / max(abs(official["first_step_loss"]), 1e-12))
    ctx.cache["train_samples_per_s"] = ours["samples_per_s"]


# ----------------------------------------------------------------------------------------------
# (e) the pretraining dataloader: samples/s per CPU worker, and how many workers one GPU needs


def dataloader_part(ctx: Context) -> None:
    import os

    import bench_dataloader

    if ctx.smoke:
        workers = [1]
    else:
        workers = sorted({1, min(4, os.cpu_count() or 1), min(8, os.cpu_count() or 1)})
    result = bench_dataloader.measure(
        clips=8 if ctx.smoke else 128,
        batch_size=4 if ctx.smoke else 16,
        workers=workers,
        epochs=1 if ctx.smoke else 2,
    )
    ctx.record("dataloader", result)
    per_worker = max(v["samples_per_second_per_worker"] for v in result["dataloader"].values())
    ctx.record("samples_per_s_per_worker", per_worker)
    gpu_rate = ctx.cache.get("train_samples_per_s")
    if gpu_rate:
        ctx.record("workers_to_feed_one_gpu", round(gpu_rate / per_worker, 1))


PARTS: dict[str, Callable[[Context], None]] = {
    "captioner": captioner_part,
    "captioner_families": captioner_families_part,
    "scorer": scorer_part,
    "generate": generate_part,
    "train_step": train_step_part,
    "dataloader": dataloader_part,
}
