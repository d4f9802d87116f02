"""`avt generate INPUT --output-dir DIR`: videos -> captioned, CLAP-scored audio-visual-text triplets.

Runs on one process, or on many with ``accelerate launch --multi_gpu --num_processes N -m avt
generate ...`` (or ``torchrun``; each process takes its own shards, rerun the same command to resume).
On a CPU-only machine the same launch works with ``--device cpu`` (gloo). Note that
``accelerate launch --cpu --num_processes N`` starts one process unless given an MPI hostfile.

The options are the fields of :class:`~avt_triplets.options.ModelOptions` and
:class:`~avt_triplets.options.GenerationOptions` (flags, defaults, help and checks live there). Everything that can
be checked without the models (input, output folder, options, model paths) is checked before they load.
Ctrl-C or SIGTERM drops the shard in flight and prints one line saying what is finished and how to resume.
Heavy libraries are imported inside :func:`run` so ``avt --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from avt_core import interrupts
from avt_core.common_options import add_log_level
from avt_core.dataclass_cli import add_options, options_from_any
from avt_core.help_format import DefaultsHelpFormatter
from avt_core.run_config import deprecate_flag
from avt_triplets.options import CLIPS, MODELS, RUN, GenerationOptions, ModelOptions  # light imports only

EPILOG = """\
examples:
  avt generate videos/ -o triplets/
      caption every frame (BLIP-2), score the captions against the audio (msclap 2023), keep the best
  avt generate vggsound.csv --split test --captioner none -o vggsound-test/
      labelled clips without captions and without any model (a fine-tuning or evaluation set); files are
      found as {ytid}_{start:06d}.mp4 next to the list (--path-template, --input-root)
  avt generate eval_segments.csv --label-csv class_labels_indices.csv --captioner none -o audioset-eval/
      AudioSet: the split is the file; ids such as /m/09x0r are stored as their display names

A --captioner none output has no caption columns (captions, caption_scores, caption, caption_index, clap_score,
text_embedding): `avt finetune` and `avt evaluate` read it; `avt filter` makes random-k subsets of it, not top-k.
Rerun the same command to resume; finished shards are kept.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = DefaultsHelpFormatter
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="A folder of videos (searched recursively); a CSV/JSONL list with video_path[,start_s][,labels] "
        "(labels ';'-separated)[,split][,whole_video]; VGGSound's vggsound.csv (ytid,start,label,split rows, no "
        "header) or a split file (ytid_start.mp4,label rows); or an "
        "AudioSet segment list (# comment lines, then YTID, start_seconds, end_seconds, positive_labels). Rows "
        "with a YouTube id name their files with --path-template; --split picks a split, --label-csv maps "
        "AudioSet ids to names.",
    )
    parser.add_argument(
        "--output-dir",
        "-o",
        required=True,
        metavar="DIR",
        help="Output folder: new, empty, or an earlier `avt generate` output (a rerun resumes it).",
    )
    groups = add_options(parser, ModelOptions, (MODELS, CLIPS, RUN))
    add_options(parser, GenerationOptions, made=groups)
    groups[RUN].add_argument(
        "--dry-run",
        action="store_true",
        help="Say what a run would do and stop: inputs found and missing, shards planned, done and pending, the "
        "models and their revisions (Hub commit or local content digest), the output folder's state and an "
        "estimate of GPU-hours; nothing is loaded, decoded or written. Exit 0 when a run would start, 2 with the "
        "run's own error line when it would be refused. The last line is the plan as JSON.",
    )
    add_log_level(
        groups[RUN], "WARNING", "DEBUG lists every failed clip, INFO the files a folder input skipped"
    )
    deprecate_flag(parser, "--output", "--output-dir")


def resume_command(args: argparse.Namespace) -> str:
    """The command line that resumes this run: the same one."""
    return interrupts.resume_command(getattr(args, "_argv", None) or sys.argv[1:])


def _record_options(args: argparse.Namespace, options: GenerationOptions) -> None:
    """``avt_config.yaml`` once the folder is an avt output (its manifest written), also when the run stops early:
    a folder that is not one yet is left alone, so a rerun still finds it empty."""
    from avt_core import storage
    from avt_core.run_config import write_run_config
    from avt_triplets.output_folder import is_avt_output

    root = storage.as_path(args.output_dir, options.storage_options)
    if is_avt_output(root):
        write_run_config(root, "generate", args)


def dry_run(args: argparse.Namespace) -> int:
    """``--dry-run``: the plan, printed as a summary and one JSON line; a refusal propagates as the real run's."""
    import json

    from avt_triplets.generation_plan import plan_generation

    models = options_from_any(ModelOptions, args)
    options = options_from_any(GenerationOptions, args)
    plan = plan_generation(args.input, args.output_dir, options, models)
    print(plan.format())
    print(json.dumps({"dry_run": plan.as_dict()}, default=str))
    return 0


def run(args: argparse.Namespace) -> int:
    from avt_core.errors import EXIT_INTERRUPTED, RunAborted, UsageError
    from avt_triplets.manifest import planned_models
    from avt_triplets.models import check_model_options
    from avt_triplets.pipeline import generate_triplets
    from avt_triplets.run_plan import plan_run
    from avt_triplets.summary import summarize

    if getattr(args, "dry_run", False):
        return dry_run(args)
    models = options_from_any(ModelOptions, args)
    options = options_from_any(GenerationOptions, args)
    with interrupts.sigterm_as_interrupt():  # also when run() is called without avt.cli
        try:
            if not models.labels_only:
                check_model_options(models)  # everything that can be checked before a model loads
            planned = planned_models(models)  # so a refusal to resume lists model changes too
            plan = plan_run(
                args.input, args.output_dir, options, captioned=not models.labels_only, models=planned
            )
            missing = plan.inputs.missing
            if missing is not None and missing.missing:  # up front, before any model loads
                print(missing.count_line(), file=sys.stderr)  # (none missing: logged at INFO only)
            try:
                summary = generate_triplets(plan, models=models)  # the checks ran once, here
            except UsageError:
                raise  # refused before writing (the output is held by another run): its config stays as it is
            except BaseException:
                _record_options(args, options)
                raise
            _record_options(args, options)
        except KeyboardInterrupt:
            done = summarize(args.output_dir)
            print(
                f"interrupted: {done.shards_done} of {done.shards_total} shards are finished in {args.output_dir} "
                f"(the shard in flight was dropped); resume with: {resume_command(args)}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        except RunAborted as error:
            if not error.resumable:
                raise
            raise RunAborted(f"{error}; resume with: {resume_command(args)}") from error
    if summary.card_path is not None or summary.rank == 0:
        prefix = f"[rank {summary.rank}] " if summary.world_size > 1 else ""
        print(prefix + summary.format().replace("\n", "\n" + prefix))
    if summary.empty_result and (summary.complete or summary.captions_mostly_empty):
        print(
            f"error: {summary.empty_result}; see {args.output_dir}/failures for each clip's reason",
            file=sys.stderr,
        )
        return 1
    if summary.missing_videos:
        print(f"error: {summary.missing_videos}", file=sys.stderr)
        return 1
    return 1 if summary.shard_errors or summary.card_error else 0
