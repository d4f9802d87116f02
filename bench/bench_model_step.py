"""Benchmark one LG-CAV-MAE pretraining step (forward + backward) and print JSON.

Timing: one seeded model and batch (fixed masking noise), the variants (attention backend x bf16 autocast) run
*interleaved* step by step in one process, so a shared, noisy machine slows them all alike; per variant we report
the median and the minimum step time. The attention backend is switched on the same weights
(`config._attn_implementation`), so losses are comparable: `loss_abs_diff_vs_eager_fp32` is the numerics check.
`--compile` adds `torch.compile` variants (timed the same way, after their compilation warm-up).

Memory: each variant runs once more in a fresh process (CUDA: `max_memory_allocated`; CPU: how far the process
RSS rises above its level after the model is built, i.e. activations + gradients); `--no-memory` skips it.

    python bench/bench_model_step.py                        # paper config, batch 2, eager vs sdpa, fp32 + bf16
    python bench/bench_model_step.py --device cuda --batch-size 32 --compile
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _parse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--batch-size", type=int, default=2, help="Clips per step (paper: 48-256 over 4 GPUs)."
    )
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per variant.")
    parser.add_argument(
        "--warmup", type=int, default=1, help="Untimed steps per variant first (compiles here)."
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available).")
    parser.add_argument("--attn", nargs="+", default=["eager", "sdpa"], help="Attention implementations.")
    parser.add_argument("--no-bf16", action="store_true", help="Skip the bf16-autocast variants.")
    parser.add_argument(
        "--compile", action="store_true", help="Add torch.compile variants (slow to compile)."
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default).")
    parser.add_argument("--no-memory", action="store_true", help="Skip the per-variant peak-memory runs.")
    parser.add_argument("--tiny", action="store_true", help="Tiny config instead of the paper config.")
    parser.add_argument("--no-text", action="store_true", help="Skip the LG text terms (plain CAV-MAE step).")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # internal: one variant, JSON
    return parser


def _config_kwargs(tiny: bool) -> dict:
    if not tiny:
        return {}  # LGCavMaeConfig defaults are the paper/official config
    return {
        "audio_length": 256,
        "image_size": 64,
        "hidden_size": 64,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "num_modality_specific_layers": 2,
        "decoder_hidden_size": 32,
        "decoder_num_hidden_layers": 1,
        "decoder_num_attention_heads": 2,
        "decoder_intermediate_size": 64,
        "text_embed_dim": 32,
    }


def _setup(options: dict):
    """Seeded model + batch; returns (model, inputs, device)."""
    import torch

    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining

    if options["threads"]:
        torch.set_num_threads(options["threads"])
    device = torch.device(options["device"])
    torch.manual_seed(0)
    config = LGCavMaeConfig(**_config_kwargs(options["tiny"]))
    model = LGCavMaeForPreTraining(config).to(device).train()
    generator = torch.Generator().manual_seed(1)
    batch = options["batch_size"]
    inputs = {
        "audio_values": torch.randn(batch, config.audio_length, config.num_mel_bins, generator=generator),
        "pixel_values": torch.randn(batch, 3, config.image_size, config.image_size, generator=generator),
        "audio_noise": torch.rand(batch, config.num_audio_patches, generator=generator),
        "visual_noise": torch.rand(batch, config.num_visual_patches, generator=generator),
    }
    if not options["no_text"]:
        inputs["text_embeds"] = torch.randn(batch, config.text_embed_dim, generator=generator)
    return model, {key: value.to(device) for key, value in inputs.items()}, device


def _make_step(model, inputs, device, variant: dict):
    """A closure running one fwd+bwd of `variant` and returning the loss."""
    import torch

    forward = torch.compile(model) if variant["compile"] else model

    def step() -> float:
        model.config._attn_implementation = variant["attn"]
        model.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=variant["bf16"]):
            loss = forward(**inputs).loss
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss.item()

    return step


def _name(variant: dict) -> str:
    return variant["attn"] + ("+bf16" if variant["bf16"] else "") + ("+compile" if variant["compile"] else "")


def _time_interleaved(options: dict, variants: list[dict]) -> dict[str, dict]:
    model, inputs, device = _setup(options)
    steps = {_name(v): _make_step(model, inputs, device, v) for v in variants}
    results = {name: {"times": [], "warmup_s": 0.0} for name in steps}
    for name, step in steps.items():
        start = time.perf_counter()
        for _ in range(options["warmup"]):
            results[name]["loss"] = step()
        results[name]["warmup_s"] = round(time.perf_counter() - start, 2)
    for _ in range(options["steps"]):
        for name, step in steps.items():
            start = time.perf_counter()
            results[name]["loss"] = step()
            results[name]["times"].append(time.perf_counter() - start)
    return results


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _memory_probe(options: dict, variant: dict) -> dict:
    """Memory of warm-up + one step of `variant` in this fresh process.

    CUDA: `max_memory_allocated` (weights, grads, activations). CPU: the rise of the process RSS above its level
    after building the model, sampled every millisecond by a thread (activations + gradients + workspace; the
    allocator may keep freed pages, so this is the high-water mark of the step).
    """
    import threading

    import torch

    model, inputs, device = _setup(options)
    step = _make_step(model, inputs, device, variant)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        for _ in range(options["warmup"] + 1):
            step()
        return {"peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20, "kind": "cuda_max_allocated"}
    baseline, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for _ in range(options["warmup"] + 1):
        step()
    done.set()
    sampler.join()
    return {"peak_memory_mb": peak[0] - baseline, "kind": "cpu_rss_rise_during_step"}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def _variant_result(variant: dict, timings: dict[str, dict], batch_size: int) -> dict:
    """One variant's step times, and how its loss and speed compare with eager fp32 (when that was timed)."""
    timing = timings[_name(variant)]
    median = statistics.median(timing["times"])
    result = {
        "variant": _name(variant),
        "attn_implementation": variant["attn"],
        "bf16_autocast": variant["bf16"],
        "torch_compile": variant["compile"],
        "step_s_median": round(median, 4),
        "step_s_min": round(min(timing["times"]), 4),
        "samples_per_s": round(batch_size / median, 3),
        "warmup_s": timing["warmup_s"],
        "loss": timing["loss"],
    }
    reference = timings.get("eager")
    if reference:
        result["loss_abs_diff_vs_eager_fp32"] = abs(timing["loss"] - reference["loss"])
        result["speedup_vs_eager_fp32_median"] = round(statistics.median(reference["times"]) / median, 3)
        result["speedup_vs_eager_fp32_min"] = round(min(reference["times"]) / min(timing["times"]), 3)
    return result


def _peak_memory(options: dict, variant: dict) -> dict:
    """Peak memory of one variant, measured in a fresh process so variants do not inherit each other's peak."""
    probe = json.dumps({"options": options, "variant": variant})
    completed = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--memory-probe", probe],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        return {"peak_memory_error": completed.stderr.strip().splitlines()[-1:]}
    memory = json.loads(completed.stdout.strip().splitlines()[-1])
    return {"peak_memory_mb": round(memory["peak_memory_mb"], 1), "peak_memory_kind": memory["kind"]}


def main(argv: list[str] | None = None) -> int:
    args = _parse().parse_args(argv)
    import torch

    if args.memory_probe:
        probe = json.loads(args.memory_probe)
        print(json.dumps(_memory_probe(probe["options"], probe["variant"])))
        return 0

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    options = {
        "device": device,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": args.threads,
        "tiny": args.tiny,
        "no_text": args.no_text,
    }
    variants = [
        {"attn": a, "bf16": b, "compile": False}
        for b in ([False] if args.no_bf16 else [False, True])
        for a in args.attn
    ]
    if args.compile:
        variants += [{**v, "compile": True} for v in list(variants)]
    timings = _time_interleaved(options, variants)

    results = []
    for variant in variants:
        result = _variant_result(variant, timings, args.batch_size)
        if not args.no_memory:
            result.update(_peak_memory(options, variant))
        results.append(result)

    fastest = min(results, key=lambda r: r["step_s_median"])
    print(
        json.dumps(
            {
                "benchmark": "lgcavmae_pretraining_step_fwd_bwd",
                "config": "tiny"
                if args.tiny
                else "paper (LGCavMaeConfig defaults: 11+1 layers x 768, decoder 8 x 512)",
                "device": device,
                "device_name": torch.cuda.get_device_name() if device == "cuda" else _cpu_name(),
                "torch_threads": args.threads or torch.get_num_threads(),
                "batch_size": args.batch_size,
                "timed_steps_per_variant": args.steps,
                "text_terms": not args.no_text,
                "torch": torch.__version__,
                "results": results,
                "fastest_by_median": fastest["variant"],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
