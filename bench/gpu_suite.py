"""The GPU benchmark suite: one command, one JSON document, finished inside a time box even when a part fails.

Parts (``bench/suite_parts.py``), all with random weights at the published sizes (nothing is downloaded):

* ``captioner``: BLIP-2 OPT-2.7B frames/s and GPU memory at caption batch 32 / 128 / auto (largest that fits:
  probe from 1024, halve on out-of-memory), eager vs ``--caption-compile``; how often the two agree;
* ``captioner_families``: SmolVLM-256M and Qwen2.5-VL-3B (their published configs, published image-processor
  settings): frames/s at the auto batch size (probe from 256, halve on out-of-memory), peak memory, their
  variable-size batches built as the pipeline builds them (per-frame rows collated in the stacking thread);
* ``scorer``: msclap 2023 audio clips/s (10 s clips) and captions/s at batch 64 / 256;
* ``generate``: ``generate_triplets`` (what ``avt generate`` runs) on 300 synthetic 10 s clips with those models:
  clips/s, its ratio to the models alone (goal >= 0.9), GPU utilisation sampled through NVML;
* ``train_step``: one LG-CAV-MAE pretraining step, paper config, batch 48: ours (SDPA, bf16 autocast) vs the
  official CAV-MAE way (eager attention, fp16 autocast + GradScaler): samples/s ratio (goal >= 1.5), peak memory
  (goal <= official), first-step loss agreement;
* ``dataloader``: pretraining input pipeline samples/s per CPU worker, and workers needed per GPU.

How it stays inside the box: the parts run in a child process that reports every figure the moment it has it.
Each part gets a deadline (the global one minus the later parts' share of ``--time-budget-s``, shares in proportion
to their budgets), checks it between measurements, and is killed 15 s after it; a part that fails, crashes its process or times out is recorded
with its error and partial figures, and a fresh child goes on with the next part. The parent, which never touches
the GPU, prints the JSON document (and writes ``--out``) at the end, at the global deadline, or on SIGTERM.

    python bench/gpu_suite.py                       # on a GPU machine: <= 8 minutes on one H100
    python bench/gpu_suite.py --smoke               # tiny models on CPU, same code paths (CI runs this)
    python bench/gpu_suite.py --parts train_step dataloader --out suite.json

On the lent GPU machine, ``bench/run_gpu_suite.sh`` installs the carried wheels first (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

PART_NAMES = ("captioner", "captioner_families", "scorer", "generate", "train_step", "dataloader")
# Seconds each part may take on one H100 (sum 455: with process start-up the suite stays under 8 minutes).
BUDGETS_S = {
    "captioner": 165,
    "captioner_families": 75,
    "scorer": 35,
    "generate": 105,
    "train_step": 40,
    "dataloader": 35,
}
SMOKE_BUDGETS_S = {
    "captioner": 40,
    "captioner_families": 20,
    "scorer": 15,
    "generate": 25,
    "train_step": 15,
    "dataloader": 10,
}
KILL_GRACE_S = 15.0
EVENT = "@@gpu-suite "


def part_deadlines(
    parts: list[str], start: float, box_s: float, budgets: dict[str, float]
) -> dict[str, float]:
    """Each part's deadline: the global one minus the later parts' share of the box (shares follow budgets)."""
    total = sum(budgets[p] for p in parts)
    return {
        part: start + box_s * (1 - sum(budgets[p] for p in parts[i + 1 :]) / total)
        for i, part in enumerate(parts)
    }


# ----------------------------------------------------------------------------------------------
# child: runs parts, reports events on stdout


def _emit(kind: str, **fields) -> None:
    sys.stdout.write(EVENT + json.dumps({"event": kind, **fields}, default=str) + "\n")
    sys.stdout.flush()


def _device_info(device: str) -> dict:
    import torch
    import transformers

    info = {
        "device": device,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(
            name=props.name,
            memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            multiprocessors=props.multi_processor_count,
        )
    else:
        info["name"] = "CPU (no CUDA device)"
    return info


def _inject_fault(args: argparse.Namespace, part: str) -> None:
    """Test hooks: make a part fail or hang, to show the others still run and the document still comes out."""
    if part == args.fail_part:
        raise RuntimeError(f"injected failure in {part}")
    if part == args.hang_part:
        time.sleep(3600)


def run_child(args: argparse.Namespace) -> int:
    import torch
    from suite_parts import PARTS, Context, release_memory

    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    _emit("device", info=_device_info(device))
    deadlines = json.loads(args.deadlines)
    cache: dict = {}
    with tempfile.TemporaryDirectory(prefix="gpu_suite_") as tmp:
        for part in args.parts:
            deadline = deadlines[part]
            _emit("start", part=part, deadline=deadline)
            ctx = Context(
                smoke=args.smoke,
                device=device,
                record=lambda key, value, part=part: _emit("result", part=part, key=key, value=value),
                deadline=deadline,
                workdir=Path(tmp),
                cache=cache,
            )
            try:
                _inject_fault(args, part)
                PARTS[part](ctx)
                _emit("end", part=part, status="ok")
            except Exception as error:  # noqa: BLE001 - a failing part is recorded; the others still run
                tail = traceback.format_exc(limit=6)[-2000:]
                _emit(
                    "end",
                    part=part,
                    status="error",
                    error=f"{type(error).__name__}: {error}"[:1000],
                    trace=tail,
                )
            release_memory()
    return 0


# ----------------------------------------------------------------------------------------------
# parent: starts children, enforces deadlines, assembles the document


class Report:
    """The JSON document, filled in as events arrive; printed exactly once."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.started = time.time()
        self.doc = {
            "suite": "avt gpu suite",
            "smoke": args.smoke,
            "time_budget_s": args.time_budget_s,
            "device": None,
            "complete": False,
            "parts": {name: {"status": "not run", "results": {}} for name in args.parts},
        }
        self._lock = threading.Lock()
        self._printed = False
        self.child: subprocess.Popen | None = None

    def finish(self) -> None:
        with self._lock:
            if self._printed:
                return
            self._printed = True
            self.doc["elapsed_s"] = round(time.time() - self.started, 1)
            self.doc["complete"] = all(p["status"] == "ok" for p in self.doc["parts"].values())
            text = json.dumps(self.doc, indent=2, default=str)
            if self.args.out:
                Path(self.args.out).write_text(text + "\n")
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def _child_command(args: argparse.Namespace, parts: list[str]) -> list[str]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--deadlines",
        json.dumps(args.deadlines),
    ]
    command += ["--parts", *parts] + (["--smoke"] if args.smoke else [])
    for flag, value in (("--fail-part", args.fail_part), ("--hang-part", args.hang_part)):
        if value:
            command += [flag, value]
    return command


def _kill(child: subprocess.Popen) -> None:
    """The child and everything it started (decode workers, DataLoader workers): its own process group."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_events(stream, events: queue.Queue) -> None:
    for line in stream:
        if line.startswith(EVENT):
            events.put(json.loads(line[len(EVENT) :]))
        else:
            sys.stderr.write(line)  # the child's own prints: keep stdout for the one document
    events.put(None)


def _run_children(args: argparse.Namespace, report: Report) -> None:
    remaining = list(args.parts)
    while remaining:
        child = subprocess.Popen(
            _child_command(args, remaining),
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        report.child = child
        events: queue.Queue = queue.Queue()
        threading.Thread(target=_read_events, args=(child.stdout, events), daemon=True).start()
        current, kill_at = None, args.deadline + args.kill_grace_s
        while True:
            try:
                event = events.get(timeout=max(0.1, kill_at - time.time()))
            except queue.Empty:
                event = "timeout"
            if event is None or event == "timeout":
                if event == "timeout":
                    _kill(child)
                child.wait()
                if not remaining:  # the child ran every part and exited
                    break
                part = current or remaining[0]
                entry = report.doc["parts"][part]
                entry["status"] = (
                    "timeout" if event == "timeout" else f"crashed (exit code {child.returncode})"
                )
                remaining.remove(part)
                break
            if event["event"] == "device":
                report.doc["device"] = event["info"]
            elif event["event"] == "start":
                current = event["part"]
                report.doc["parts"][current].update(
                    status="running", started_s=round(time.time() - report.started, 1)
                )
                kill_at = args.deadlines[current] + args.kill_grace_s
            elif event["event"] == "result":
                report.doc["parts"][event["part"]]["results"][event["key"]] = event["value"]
            elif event["event"] == "end":
                entry = report.doc["parts"][event["part"]]
                entry["status"] = event["status"]
                entry["elapsed_s"] = round(time.time() - report.started - entry.get("started_s", 0.0), 1)
                for key in ("error", "trace"):
                    if key in event:
                        entry[key] = event[key]
                remaining.remove(event["part"])
                current = None
        if time.time() >= args.deadline:
            for part in remaining:
                report.doc["parts"][part]["status"] = "skipped: out of time"
            return


def run_parent(args: argparse.Namespace) -> int:
    report = Report(args)

    def stop(reason: str) -> None:
        report.doc["stopped"] = reason
        if report.child is not None:
            _kill(report.child)
        report.finish()
        os._exit(1)

    signal.signal(signal.SIGTERM, lambda signum, _frame: stop(signal.Signals(signum).name))
    signal.signal(signal.SIGINT, lambda signum, _frame: stop(signal.Signals(signum).name))
    # last resort: whatever happens to the loop below, the document is printed soon after the global deadline
    delay = max(1.0, args.deadline + 2 * args.kill_grace_s - time.time())
    watchdog = threading.Timer(delay, stop, args=("global time box",))
    watchdog.daemon = True
    watchdog.start()
    _run_children(args, report)
    watchdog.cancel()
    report.finish()
    return 0 if report.doc["complete"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--smoke", action="store_true", help="Tiny models on CPU: the same code paths, in seconds."
    )
    parser.add_argument(
        "--parts", nargs="+", choices=PART_NAMES, default=list(PART_NAMES), help="Parts to run."
    )
    parser.add_argument(
        "--time-budget-s",
        type=float,
        default=None,
        help="Global time box (default: 465 s; 170 s with --smoke).",
    )
    parser.add_argument("--out", default=None, help="Also write the JSON document to this file.")
    parser.add_argument(
        "--kill-grace-s", type=float, default=KILL_GRACE_S, help="Seconds a part may overrun its deadline."
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fail-part", default=None, help=argparse.SUPPRESS)  # test hooks
    parser.add_argument("--hang-part", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--deadlines", default=None, help=argparse.SUPPRESS)  # JSON {part: epoch seconds}
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args)
    if args.time_budget_s is None:
        args.time_budget_s = 170.0 if args.smoke else 465.0
    start = time.time()
    args.deadline = start + args.time_budget_s
    budgets = SMOKE_BUDGETS_S if args.smoke else BUDGETS_S
    args.deadlines = part_deadlines(args.parts, start, args.time_budget_s, budgets)
    return run_parent(args)


if __name__ == "__main__":
    raise SystemExit(main())
