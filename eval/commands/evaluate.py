"""``avt evaluate retrieval|classification``: the paper's evaluations, written as JSON, Markdown and a plot.

Examples::

    avt evaluate retrieval --model runs/lgcavmae --dataset vggsound=data/vgg_test --dataset audioset=data/as_eval
    avt evaluate classification --model runs/ft_vgg --dataset vggsound=data/vgg_test --output-dir eval_out
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Literal

from avt_core.dataclass_cli import (
    add_options,
    non_negative_int,
    num_workers_option,
    option,
    options_from_any,
    positive_int,
    require_non_negative,
)
from avt_core.help_format import DefaultsHelpFormatter

logger = logging.getLogger(__name__)


EVAL, TASK = "evaluation", "task"
AUTOCAST = {
    "no": "fp32",
    "fp16": "fp16",
    "bf16": "bf16",
}  # --mixed-precision -> the autocast of eval.features


def _mixed_precision(text: str) -> str:
    """``--mixed-precision`` as the training commands spell it; the former ``--precision fp32`` is ``no``."""
    return "no" if text == "fp32" else text


@dataclasses.dataclass(kw_only=True)
class EvaluateArgs:
    """The options both tasks of `avt evaluate` have, named as in the training commands."""

    model: list[str] = option(
        group=EVAL,
        metavar="[NAME=]PATH_OR_ID",
        help="Checkpoint folder or Hub id (repeatable: one table row each). NAME labels the row.",
    )
    dataset: list[str] = option(
        group=EVAL,
        metavar="[NAME=]DIR_OR_ID[:config]",
        help="Triplet dataset: generation output, save_to_disk folder or Hub id, with an optional config "
        "(top30, ...). Repeatable: one column group each. NAME labels the columns (e.g. VGGSound).",
    )
    eval_split: str = option(
        "train",
        group=EVAL,
        deprecated=("--split",),
        help="Split of every --dataset to evaluate (a generation output has one, 'train').",
    )
    revision: str | None = option(
        None, group=EVAL, help="Model revision (branch, tag or commit) for Hub ids."
    )
    output_dir: str = option("eval_results", group=EVAL, help="Where the JSON, Markdown and PNG go.")
    per_device_eval_batch_size: int = option(
        32, group=EVAL, type=positive_int, deprecated=("--batch-size",), help="Clips per forward pass."
    )
    device: str = option("auto", group=EVAL, help="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...")
    mixed_precision: Literal["no", "fp16", "bf16"] = option(
        "no",
        group=EVAL,
        type=_mixed_precision,
        deprecated=("--precision",),
        help="Autocast precision of the forward passes, as --mixed-precision of the training commands (the "
        "official script used fp16 on GPU).",
    )
    num_workers: int | None = num_workers_option("DataLoader workers decoding clips", EVAL)
    max_clips: int | None = option(
        None, group=EVAL, type=positive_int, help="Evaluate at most this many clips (smoke tests)."
    )

    def __post_init__(self) -> None:
        require_non_negative(self, "num_workers")


@dataclasses.dataclass(kw_only=True)
class RetrievalArgs(EvaluateArgs):
    """`avt evaluate retrieval`."""

    protocol: Literal["cavmae", "full"] = option(
        "cavmae",
        group=TASK,
        help="cavmae: a seeded subset of --per-class clips per label (all clips if no labels), middle frame; "
        "full: every clip.",
    )
    per_class: int = option(5, group=TASK, type=positive_int, help="Clips per class in the cavmae protocol.")
    seed: int = option(0, group=TASK, help="Seed of the per-class subset.")
    frame: int | None = option(
        None, group=TASK, type=non_negative_int, help="Frame index to use instead of the middle frame."
    )
    text: bool = option(True, group=TASK, help="Skip text->audio / text->visual retrieval.")
    chunk_size: int = option(
        4096, group=TASK, type=positive_int, help="Queries per similarity block (memory = chunk x N floats)."
    )
    max_k: int = option(50, group=TASK, type=positive_int, help="Largest K of the recall@K curve.")
    report: list[Literal["avcaps"]] = option(
        [],
        group=TASK,
        help="Extra tables: avcaps adds SLAVA's Table II layout (rows = retrieval tasks, columns = models, "
        "recall@10), with audio/visual-caption tasks when the dataset has those columns.",
    )


@dataclasses.dataclass(kw_only=True)
class ClassificationArgs(EvaluateArgs):
    """`avt evaluate classification`."""

    per_device_eval_batch_size: int = option(
        16, group=EVAL, type=positive_int, deprecated=("--batch-size",), help="Clips per forward pass."
    )
    num_frames: int | None = option(
        None,
        group=TASK,
        type=positive_int,
        help="Frame indices to average (default: the most any clip has).",
    )
    label_csv: str | None = option(
        None,
        group=TASK,
        help="Class list index,mid,display_name (AudioSet's class_labels_indices.csv) bridging the dataset's "
        "labels (ids or display names) to the model's classes. Needed only for a model fine-tuned before avt "
        "recorded class ids (config class_mids) on a set labelled with ids; a set's own recorded class list "
        "(avt generate --label-csv) bridges by itself.",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    retrieval = tasks.add_parser(
        "retrieval",
        help="Audio->visual / visual->audio (and text->audio / text->visual) recall@1/5/10 and median rank.",
        description="Retrieval with L2-normalised mean-pooled features of the unmasked modality streams, as the "
        "official CAV-MAE script; text retrieval uses the stored CLAP caption embeddings and the model's "
        "projection heads.",
        formatter_class=DefaultsHelpFormatter,
    )
    add_options(retrieval, RetrievalArgs, (EVAL, TASK))
    retrieval.set_defaults(task_runner=_run_retrieval, _task_options=RetrievalArgs)
    classification = tasks.add_parser(
        "classification",
        help="Accuracy (single-label) or mAP (multi-label) of a fine-tuned classifier, middle and multi-frame.",
        description="Scores every clip once per frame index; the middle frame gives the single-frame result and "
        "the average of per-frame softmax/sigmoid outputs the multi-frame result (official protocol).",
        formatter_class=DefaultsHelpFormatter,
    )
    add_options(classification, ClassificationArgs, (EVAL, TASK))
    classification.set_defaults(task_runner=_run_classification, _task_options=ClassificationArgs)


def run(args: argparse.Namespace) -> int:
    from avt_core.run_config import write_run_config
    from eval.distributed import eval_processes

    options = options_from_any(args._task_options, args)
    if options.num_workers is None:  # the one default of every command's --num-workers
        from avt_core.launch import default_num_workers

        options.num_workers = default_num_workers()
    code = args.task_runner(options, getattr(args, "progress", True))
    if code == 0 and eval_processes().is_main:  # next to the reports (written by the main process alone)
        write_run_config(args.output_dir, f"evaluate {args.task}", args)
    return code


def _versions() -> dict[str, str]:
    import datasets
    import torch
    import transformers

    from avt_triplets import __version__

    return {
        "avt": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
    }


def _evaluate_all(args, task: str, evaluate_one) -> list[dict] | None:
    """Load each model once and evaluate it on every dataset; under ``accelerate launch`` every process extracts
    its share and the main process gets the entries (None elsewhere: it writes nothing)."""
    from avt_triplets.model_sources import check_model_source
    from eval.distributed import eval_processes
    from eval.loading import Named, load_eval_dataset, load_model, load_processor, resolve_device

    processes = eval_processes()
    device = resolve_device(processes.device(args.device))
    models = [Named.parse(m) for m in args.model]
    for model_arg in models:  # before any dataset is read: a mistake costs no time
        check_model_source(model_arg.value, "--model")
    datasets = [Named.parse(d) for d in args.dataset]
    loaded = {d.name: load_eval_dataset(d.value, args.eval_split) for d in datasets}
    entries = []
    for model_arg in models:
        model = load_model(model_arg.value, task, device, revision=args.revision)
        processor = load_processor(model_arg.value, model.config, revision=args.revision)
        for dataset_arg in datasets:
            started = time.perf_counter()
            logger.info("%s: %s on %s", task, model_arg.name, dataset_arg.name)
            entry = evaluate_one(model, processor, loaded[dataset_arg.name], device, dataset_arg.value)
            if entry is None:  # another process than the main one
                continue
            entries.append(
                {
                    "model": model_arg.name,
                    "model_path": model_arg.value,
                    "dataset": dataset_arg.name,
                    "dataset_spec": dataset_arg.value,
                    "split": args.eval_split,
                    "seconds": round(time.perf_counter() - started, 3),
                    **entry,
                }
            )
        del model
    return entries if processes.is_main else None


def _run_retrieval(args: RetrievalArgs, progress: bool) -> int:
    from eval.loading import require_columns
    from eval.reports import plot_recall_curves, retrieval_markdown, write_json
    from eval.runs import RetrievalOptions, evaluate_retrieval
    from eval.slava_retrieval import evaluate_slava_retrieval, is_slava

    def evaluate_one(model, processor, dataset, device, dataset_name):
        require_columns(dataset, ["audio", "frames"], "retrieval", dataset_name)
        options = RetrievalOptions(
            protocol=args.protocol,
            per_class=args.per_class,
            seed=args.seed,
            frame_index=args.frame,
            max_clips=args.max_clips,
            text=args.text,
            batch_size=args.per_device_eval_batch_size,
            device=device,
            precision=AUTOCAST[args.mixed_precision],
            num_workers=args.num_workers,
            chunk_size=args.chunk_size,
            max_k=args.max_k,
            progress=progress,
        )
        if is_slava(model):  # frozen CLIP / CLAP towers + projections: its own feature path, same entry
            return evaluate_slava_retrieval(model, processor, dataset, options)
        return evaluate_retrieval(model, processor, dataset, options)

    entries = _evaluate_all(args, "retrieval", evaluate_one)
    if entries is None:
        return 0
    output_dir = Path(args.output_dir)
    markdown = retrieval_markdown(entries)
    if "avcaps" in args.report:
        from eval.avcaps_report import avcaps_table

        markdown += "\n" + avcaps_table(entries)
    write_json(
        {"task": "retrieval", "entries": entries, "versions": _versions()}, output_dir / "retrieval.json"
    )
    (output_dir / "retrieval.md").write_text(markdown)
    plot_recall_curves(entries, output_dir / "retrieval_recall_at_k.png")
    print(markdown)
    print(
        f"Reports: {output_dir / 'retrieval.json'}, {output_dir / 'retrieval.md'}, {output_dir / 'retrieval_recall_at_k.png'}"
    )
    return 0


def _run_classification(args: ClassificationArgs, progress: bool) -> int:
    from avt_data.rows import recorded_class_table
    from avt_triplets.labels import read_class_table
    from eval.loading import require_columns
    from eval.reports import classification_markdown, write_json
    from eval.runs import ClassificationOptions, evaluate_classification

    listed = read_class_table(args.label_csv) if args.label_csv else None  # before any model loads

    def evaluate_one(model, processor, dataset, device, dataset_name):
        require_columns(dataset, ["audio", "frames", "labels"], "classification", dataset_name)
        options = ClassificationOptions(
            num_frames=args.num_frames,
            max_clips=args.max_clips,
            batch_size=args.per_device_eval_batch_size,
            device=device,
            precision=AUTOCAST[args.mixed_precision],
            num_workers=args.num_workers,
            progress=progress,
        )
        bridges = (recorded_class_table([dataset_name]), listed)  # the set's own class list, --label-csv
        return evaluate_classification(model, processor, dataset, options, bridges)

    entries = _evaluate_all(args, "classification", evaluate_one)
    if entries is None:
        return 0
    output_dir = Path(args.output_dir)
    markdown = classification_markdown(entries)
    write_json(
        {"task": "classification", "entries": entries, "versions": _versions()},
        output_dir / "classification.json",
    )
    (output_dir / "classification.md").write_text(markdown)
    print(markdown)
    print(f"Reports: {output_dir / 'classification.json'}, {output_dir / 'classification.md'}")
    return 0
