"""Run a recipe's steps through the real `avt` commands: skip the finished ones, resume the rest, or print them.

A step is one `avt` command line that writes one folder under the work directory. Its identity is that folder: two
recipes asking for the same folder share the step (the VGGSound + Kinetics top-30 % model of Tables 3, 4, 5 and 6
is pretrained once), and asking for it with two different command lines is an error, never a silent overwrite.

A finished step leaves a marker (``WORK/.recipe-steps/<folder>.json``) holding its command (paths under the work
directory written relative to it, so a moved work directory stays valid), and a rerun of any recipe skips a step whose
marker and output both exist; an output deleted by hand is made again. A step cut short is simply run again: every command it uses resumes on its own (`avt generate` keeps its
finished shards, `avt pretrain` / `avt finetune` get ``--resume latest``). The options that only follow the number of
GPUs (per-device batch size, workers) are kept apart (``Step.layout``), so a finished step stays finished when the
recipe is rerun on another machine.

Commands run in a child process (``avt ...``, or ``accelerate launch --num_processes N -m avt ...`` for
the steps that use every GPU), or in this process with ``in_process`` (the offline ``--tiny`` runs: no interpreter
start-up per step). ``dry_run`` prints each command with its GPU-hour estimate instead of running it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from avt_core.errors import RunAborted, UsageError

MARKER_DIR = ".recipe-steps"
WORK = "$WORK"  # the work directory in recorded commands


@dataclass(frozen=True)
class Step:
    """One `avt` command writing ``output`` (a file or folder relative to the work directory)."""

    output: str
    argv: tuple[str, ...]  # subcommand first; what the step's result depends on
    layout: tuple[str, ...] = ()  # options that follow the GPU count only (not part of the step's identity)
    distributed: bool = False  # uses every GPU through `accelerate launch` when there are several
    gpu_hours: float = 0.0  # estimate on H100-class GPUs (avt_recipes/settings.py says how)
    title: str = ""

    @property
    def command(self) -> tuple[str, ...]:
        return (*self.argv, *self.layout)


@dataclass
class Summary:
    """What a run did: steps run, skipped (finished earlier) and planned (dry run), and the GPU-hours of each."""

    ran: list[Step] = field(default_factory=list)
    skipped: list[Step] = field(default_factory=list)
    planned: list[Step] = field(default_factory=list)

    def gpu_hours(self, which: str) -> float:
        return sum(step.gpu_hours for step in getattr(self, which))


def unique_steps(steps: Iterable[Step]) -> list[Step]:
    """Steps in first-seen order, each output once; the same output from two command lines is an error."""
    seen: dict[str, Step] = {}
    for step in steps:
        known = seen.get(step.output)
        if known is None:
            seen[step.output] = step
        elif known.argv != step.argv:
            raise UsageError(
                f"two steps write {step.output} with different commands:\n  {shlex.join(known.argv)}\n"
                f"  {shlex.join(step.argv)}"
            )
    return list(seen.values())


class Runner:
    """Runs steps in order under ``work_dir`` with ``gpus`` GPUs (see the module docstring)."""

    def __init__(
        self,
        work_dir: str | Path,
        gpus: int = 1,
        *,
        dry_run: bool = False,
        in_process: bool = False,
        out: TextIO | None = None,
    ):
        if gpus < 1:
            raise UsageError(f"--gpus must be at least 1, got {gpus}")
        if in_process and gpus > 1:
            raise UsageError("in-process runs use one device: drop --in-process or use --gpus 1")
        self.work_dir = Path(work_dir).absolute()
        self.gpus = gpus
        self.dry_run = dry_run
        self.in_process = in_process
        self.out = out or sys.stdout

    # -- markers -------------------------------------------------------------------------------------------------
    def marker(self, step: Step) -> Path:
        return self.work_dir / MARKER_DIR / (step.output.replace("/", "__") + ".json")

    def portable(self, argv: Sequence[str]) -> list[str]:
        """``argv`` with the work directory written as ``$WORK`` (what markers record and compare)."""
        root = str(self.work_dir)
        return [WORK + arg[len(root) :] if arg.startswith(root) else arg for arg in argv]

    def is_done(self, step: Step) -> bool:
        """Finished earlier with the same command and its output still there; another command is an error."""
        path = self.marker(step)
        if not path.exists() or not (self.work_dir / step.output).exists():
            return False
        recorded = json.loads(path.read_text())["argv"]
        if recorded != self.portable(step.argv):
            raise UsageError(
                f"{self.work_dir / step.output} was made by another command:\n  {shlex.join(recorded)}\n"
                f"this recipe needs:\n  {shlex.join(self.portable(step.argv))}\n"
                f"delete {self.work_dir / step.output} and {path} to redo it, or use another --work-dir"
            )
        return True

    def _mark_done(self, step: Step, seconds: float) -> None:
        path = self.marker(step)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "argv": self.portable(step.argv),
            "layout": list(step.layout),
            "gpus": self.gpus,
            "seconds": seconds,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path)

    # -- commands ------------------------------------------------------------------------------------------------
    def launch_prefix(self, step: Step) -> list[str]:
        """How the step's command starts: `avt`, or `accelerate launch` over every GPU."""
        if step.distributed and self.gpus > 1:
            return ["accelerate", "launch", "--num_processes", str(self.gpus), "-m", "avt"]
        return ["avt"]

    def shell_line(self, step: Step) -> str:
        return shlex.join([*self.launch_prefix(step), *step.command])

    def _child_argv(self, step: Step) -> list[str]:
        """The shell line's program as this interpreter runs it (no reliance on PATH)."""
        prefix = self.launch_prefix(step)
        if prefix[0] == "accelerate":
            prefix = [sys.executable, "-m", "accelerate.commands.launch", *prefix[2:]]
        else:
            prefix = [sys.executable, "-m", "avt"]
        return [*prefix, *step.command]

    def _execute(self, step: Step) -> int:
        if self.in_process:
            from avt.cli import main as avt

            return avt(list(step.command))
        return subprocess.run(self._child_argv(step), check=False).returncode

    # -- running -------------------------------------------------------------------------------------------------
    def run(self, steps: Sequence[Step]) -> Summary:
        """Run (or, dry, print) every step not finished yet, in order; stop at the first failure."""
        summary = Summary()
        steps = unique_steps(steps)
        for number, step in enumerate(steps, 1):
            head = f"[{number}/{len(steps)}] {step.title or step.output}"
            if self.is_done(step):
                print(f"{head}: done earlier, skipped ({step.output})", file=self.out, flush=True)
                summary.skipped.append(step)
                continue
            if self.dry_run:
                print(f"{head}  (~{step.gpu_hours:.2f} GPU-h)\n  {self.shell_line(step)}", file=self.out)
                summary.planned.append(step)
                continue
            print(f"\n{head}\n$ {self.shell_line(step)}", file=self.out, flush=True)
            started = time.perf_counter()
            code = self._execute(step)
            if code:
                raise RunAborted(
                    f"step {step.output} failed (exit code {code}); finished steps are kept and the failed one "
                    "resumes: fix the cause and rerun the same recipe command",
                    resumable=True,
                )
            self._mark_done(step, round(time.perf_counter() - started, 1))
            summary.ran.append(step)
        return summary


__all__ = ["MARKER_DIR", "Runner", "Step", "Summary", "unique_steps"]
