"""Benchmark one LG-CAV-MAE pretraining step (forward + backward) and print JSON.

Each variant (attention backend x bf16 autocast x torch.compile) runs in its own fresh process, so peak memory is
per variant (CUDA: `max_memory_allocated`; CPU: the process's peak RSS, which includes weights and the Python
runtime). All variants build the same seeded model and batch with fixed masking noise, so their losses are
comparable: `loss_abs_diff_vs_eager_fp32` is the numerics check.

    python bench/bench_model_step.py                       # paper config, batch 2, sdpa vs eager (+ bf16)
    python bench/bench_model_step.py --compile --batch-size 8 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _parse() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--batch-size", type=int, default=2, help="Clips per step (paper: 48-256 over 4 GPUs)."
    )
    parser.add_argument("--steps", type=int, default=3, help="Timed steps per variant (median reported).")
    parser.add_argument(
        "--warmup", type=int, default=1, help="Untimed steps first (compilation happens here)."
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available).")
    parser.add_argument(
        "--attn", nargs="+", default=["eager", "sdpa"], help="Attention implementations to compare."
    )
    parser.add_argument("--bf16", action="store_true", help="Also time each backend under bf16 autocast.")
    parser.add_argument("--compile", action="store_true", help="Also time torch.compile of each variant.")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default).")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="Tiny config instead of the paper config (smoke test of the script).",
    )
    parser.add_argument("--no-text", action="store_true", help="Skip the LG text terms (plain CAV-MAE step).")
    parser.add_argument("--single", default=None, help=argparse.SUPPRESS)  # internal: one variant, JSON spec
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


def _run_variant(spec: dict) -> dict:
    """Time one variant in this process."""
    import resource

    import torch

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    config = LGCavMaeConfig(attn_implementation=spec["attn"], **_config_kwargs(spec["tiny"]))
    model = LGCavMaeForPreTraining(config).to(device).train()
    generator = torch.Generator().manual_seed(1)
    batch = spec["batch_size"]
    inputs = {
        "audio_values": torch.randn(batch, config.audio_length, config.num_mel_bins, generator=generator),
        "pixel_values": torch.randn(batch, 3, config.image_size, config.image_size, generator=generator),
        "audio_noise": torch.rand(batch, config.num_audio_patches, generator=generator),
        "visual_noise": torch.rand(batch, config.num_visual_patches, generator=generator),
    }
    if not spec["no_text"]:
        inputs["text_embeds"] = torch.randn(batch, config.text_embed_dim, generator=generator)
    inputs = {key: value.to(device) for key, value in inputs.items()}
    step_fn = torch.compile(model) if spec["compile"] else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=spec["bf16"])

    def step() -> float:
        model.zero_grad(set_to_none=True)
        with autocast:
            loss = step_fn(**inputs).loss
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss.item()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(spec["warmup"]):
        loss = step()
    warmup_s = time.perf_counter() - start
    times = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "attn_implementation": spec["attn"],
        "bf16_autocast": spec["bf16"],
        "torch_compile": spec["compile"],
        "step_s_median": round(median, 4),
        "step_s_min": round(min(times), 4),
        "step_s_all": [round(t, 4) for t in times],
        "samples_per_s": round(batch / median, 3),
        "peak_memory_mb": round(peak_mb, 1),
        "peak_memory_kind": "cuda_max_allocated" if device.type == "cuda" else "process_max_rss",
        "warmup_s": round(warmup_s, 2),
        "loss": loss,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse().parse_args(argv)
    if args.single:
        print(json.dumps(_run_variant(json.loads(args.single))))
        return 0

    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    variants = [(attn, False, False) for attn in args.attn]
    if args.bf16:
        variants += [(attn, True, False) for attn in args.attn]
    if args.compile:
        variants += [(attn, bf16, True) for attn, bf16, _ in list(variants)]
    results = []
    for attn, bf16, compiled in variants:
        spec = {
            "attn": attn,
            "bf16": bf16,
            "compile": compiled,
            "device": device,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "warmup": args.warmup,
            "threads": args.threads,
            "tiny": args.tiny,
            "no_text": args.no_text,
        }
        completed = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--single", json.dumps(spec)],
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            results.append({**spec, "error": completed.stderr.strip().splitlines()[-1:]})
            continue
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    reference = next(
        (
            r
            for r in results
            if r.get("attn_implementation") == "eager" and not r["bf16_autocast"] and not r["torch_compile"]
        ),
        None,
    )
    for result in results:
        if reference and "loss" in result:
            result["loss_abs_diff_vs_eager_fp32"] = abs(result["loss"] - reference["loss"])
            result["speedup_vs_eager_fp32"] = round(reference["step_s_median"] / result["step_s_median"], 3)
    report = {
        "benchmark": "lgcavmae_pretraining_step_fwd_bwd",
        "config": "tiny"
        if args.tiny
        else "paper (LGCavMaeConfig defaults: 11+1 layers, 768 wide, decoder 8x512)",
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else _cpu_name(),
        "torch_threads": args.threads or torch.get_num_threads(),
        "batch_size": args.batch_size,
        "text_terms": not args.no_text,
        "torch": torch.__version__,
        "results": results,
    }
    if results and all("step_s_median" in r for r in results):
        fastest = min(results, key=lambda r: r["step_s_median"])
        report["fastest"] = {k: fastest[k] for k in ("attn_implementation", "bf16_autocast", "torch_compile")}
    print(json.dumps(report, indent=2))
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


if __name__ == "__main__":
    raise SystemExit(main())
