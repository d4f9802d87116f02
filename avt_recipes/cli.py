"""The command line every recipe shares: the user's data, the GPU count, the work directory, --tiny and --dry-run.

A recipe module defines ``KEY``, ``TITLE`` and ``build(plan) -> Table`` (the rows it needs, planned on the shared
``Plan``) and ends with ``raise SystemExit(run_recipes([this module]))``, which plans, checks the inputs, runs the steps
(avt_recipes/runner.py), then prints each table next to the paper's numbers and writes it under ``WORK/tables/``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from avt_core.errors import EXIT_INTERRUPTED, RunAborted, UsageError, report_error
from avt_recipes import tables
from avt_recipes.experiments import Plan
from avt_recipes.inputs import DataInput, Models, Sources, vggsound_inputs
from avt_recipes.runner import Runner, Summary
from avt_recipes.settings import PAPER, TINY

EPILOG = """\
Steps run phase by phase (generation first) and are skipped once finished (markers in WORK/.recipe-steps/): rerun
the same command to resume after a failure or an interruption. Recipes sharing a --work-dir share their steps (the
VGGSound + Kinetics top-30 % model is pretrained once for Tables 1 and 3-6). --dry-run prints every command with
its GPU-hour estimate. Hyperparameters, GPU-hours and where we differ from the paper: docs/reproduce.md.
"""

_DEFAULT_MODELS = Models()
# (option, help): paths. Folders of videos or CSV/JSONL lists, read as `avt generate` reads them.
DATA_OPTIONS = (
    ("--vggsound", "VGGSound train clips, or VGGSound's own CSV (ytid,start,label,split) for both splits"),
    ("--vggsound-test", "VGGSound test clips (when --vggsound has no split column)"),
    ("--vggsound-root", "folder the VGGSound lists' paths are relative to (default: the list's folder)"),
    ("--kinetics", "Kinetics-700 clips (their labels are not used)"),
    ("--kinetics-root", "folder the Kinetics list's paths are relative to"),
    ("--audioset-train", "AudioSet-20K (balanced train segments), for fine-tuning"),
    ("--audioset-eval", "AudioSet eval segments, for retrieval and classification"),
    ("--audioset-root", "folder the AudioSet lists' paths are relative to"),
    ("--audioset-labels", "AudioSet's class_labels_indices.csv (index,mid,display_name)"),
)
# (option, default, help): each option is the ``Models`` field of the same name.
MODEL_OPTIONS = (
    ("--blip2", _DEFAULT_MODELS.blip2, "BLIP-2 captioner (default: %(default)s)"),
    ("--llava", _DEFAULT_MODELS.llava, "LLaVA-1.5 captioner, Table 2 (default: %(default)s)"),
    ("--scorer-weights", None, "msclap: a local CLAP_weights_2023.pth instead of downloading it"),
    ("--scorer-text-model", None, "msclap: a local GPT-2 folder instead of downloading 'gpt2'"),
    ("--vitmae", _DEFAULT_MODELS.vitmae, "ImageNet MAE of the IN-initial start (default: %(default)s)"),
)


def build_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data (folders of videos or CSV/JSONL lists; see `avt generate --help`)")
    for option, help_text in DATA_OPTIONS:
        metavar = "DIR" if option.endswith("-root") else "CSV" if option.endswith("-labels") else "PATH"
        data.add_argument(option, type=Path, metavar=metavar, help=help_text)
    models = parser.add_argument_group("models (Hub ids or local folders)")
    for option, default, help_text in MODEL_OPTIONS:
        models.add_argument(option, default=default, help=help_text)
    run = parser.add_argument_group("running")
    # fmt: off
    run.add_argument("--gpus", type=int, default=1, help="GPUs to use; generation, pretraining and fine-tuning run under `accelerate launch` on all of them")
    run.add_argument("--max-batch-per-gpu", type=int, help="most clips one GPU holds; a larger per-GPU batch is split by gradient accumulation")
    run.add_argument("--work-dir", type=Path, default=Path("recipes-work"), help="where every dataset, model, result and table goes (default: %(default)s)")
    run.add_argument("--dry-run", action="store_true", help="print the commands and their GPU-hour estimates; run nothing")
    run.add_argument("--tiny", action="store_true", help="synthetic clips and tiny random-weight models, offline, on the CPU (what CI runs)")
    run.add_argument("--in-process", action="store_true", help="run the avt commands in this process (default with --tiny)")
    # fmt: on
    return parser


def sources_from_args(args: argparse.Namespace, work_dir: Path) -> Sources:
    inputs: dict[str, DataInput] = {}
    if args.vggsound:
        inputs.update(vggsound_inputs(args.vggsound, args.vggsound_test, args.vggsound_root))
    elif args.vggsound_test:
        inputs["vggsound-test"] = DataInput(args.vggsound_test, args.vggsound_root)
    for name, path, root in (
        ("kinetics", args.kinetics, args.kinetics_root),
        ("audioset-20k", args.audioset_train, args.audioset_root),
        ("audioset-eval", args.audioset_eval, args.audioset_root),
    ):
        if path:
            inputs[name] = DataInput(path, root)
    return Sources(inputs=inputs, audioset_labels=args.audioset_labels)


def _dest(option: str) -> str:
    return option.removeprefix("--").replace("-", "_")


def make_plan(args: argparse.Namespace) -> Plan:
    work_dir = args.work_dir.absolute()
    if args.tiny:
        given = [option for option, _ in DATA_OPTIONS if getattr(args, _dest(option))]
        if given:
            raise UsageError(f"--tiny makes its own synthetic data: drop {', '.join(given)}")
        from avt_recipes.tiny import make_tiny_models, make_tiny_sources

        sources = make_tiny_sources(work_dir / "tiny" / "inputs")
        models = make_tiny_models(work_dir / "tiny" / "models")
        return Plan(work_dir, args.gpus, TINY, sources, models, args.max_batch_per_gpu)
    models = Models(**{_dest(option): getattr(args, _dest(option)) for option, _, _ in MODEL_OPTIONS})
    sources = sources_from_args(args, work_dir)
    return Plan(work_dir, args.gpus, PAPER, sources, models, args.max_batch_per_gpu)


def _plan_and_run(recipes: Sequence[ModuleType], args: argparse.Namespace) -> tuple[Plan, list, Summary]:
    plan = make_plan(args)
    built = [recipe.build(plan) for recipe in recipes]
    if not args.dry_run:
        plan.sources.require(plan.needed_datasets())
    for note in sorted(plan.notes):
        print(f"note: {note}")
    runner = Runner(plan.work_dir, args.gpus, dry_run=args.dry_run, in_process=args.in_process or args.tiny)
    return plan, built, runner.run(plan.ordered_steps())


def run_recipes(
    recipes: Sequence[ModuleType], argv: Sequence[str] | None = None, description: str = "", prog: str = ""
) -> int:
    """Plan the tables of ``recipes`` on one plan, run the union of their steps once, print every table."""
    prog = prog or f"python -m {recipes[0].__spec__.name}"
    args = build_parser(description or recipes[0].__doc__ or "", prog).parse_args(argv)
    try:
        plan, built, summary = _plan_and_run(recipes, args)
    except KeyboardInterrupt:
        print("interrupted: finished steps are kept; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UsageError, RunAborted) as error:
        return report_error(error)
    for table in built:
        print("\n" + tables.render(table), flush=True)
        tables.write(table, plan.work_dir / "tables")
    which = "planned" if args.dry_run else "ran"
    print(
        f"GPU-hours (H100-class estimate, docs/reproduce.md): {summary.gpu_hours(which):.1f} {which} now, "
        f"{summary.gpu_hours('skipped'):.1f} done earlier; tables in {plan.work_dir / 'tables'}"
    )
    return 0


__all__ = ["build_parser", "make_plan", "run_recipes", "sources_from_args"]
