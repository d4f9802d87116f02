"""The steps behind every table: generate → filter → pretrain → fine-tune / evaluate, as `avt` command lines.

A ``Plan`` collects the steps the chosen tables need; each model, dataset and evaluation has one folder under the
work directory, named after what it is, so tables that need the same thing share its step:

    data/<dataset>.<captioner>/          avt generate (+ avt filter: top-k / random-k configs)
    data/<dataset>.labelled/             labelled fine-tuning / evaluation sets (see LABELLED_SETS_WITHOUT_CAPTIONS)
    pretrain/<spec>/                     avt pretrain     e.g. vs+k-top30.blip2.l2-0.01
    finetune/<spec>.<task>/              avt finetune     task: vggsound | audioset
    eval/retrieval/<spec>/               avt evaluate retrieval (VGGSound test, AudioSet eval)
    eval/classification/<spec>.<task>/  avt evaluate classification
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avt_core.dataclass_cli import flag
from avt_recipes.inputs import Models, Sources
from avt_recipes.runner import Step
from avt_recipes.settings import NOMINAL_CLIPS, FinetuneRecipe, Settings, gpu_hours, split_batch
from avt_recipes.tables import Outcome

# Pretraining datasets: (folder name part, table label).
DATA_NAMES = {"vggsound-train": ("vs", "VS"), "kinetics": ("k", "K")}
TASKS = {"vggsound": ("vggsound-train", "vggsound-test"), "audioset": ("audioset-20k", "audioset-eval")}
RETRIEVAL_SETS = {"VGGSound": "vggsound-test", "AudioSet": "audioset-eval"}
# Steps run phase by phase, so every dataset exists (and every input problem shows) before any training starts.
PHASES = ("generate", "filter", "pretrain", "finetune", "evaluate")

# ---- Labelled sets: THE one place to switch how they are packaged ------------------------------------------------
# Fine-tuning and evaluation sets need audio, frames and labels only: `avt generate --captioner none` stores them
# without loading any model. False generates them like triplets (captioned and scored by the pretraining captioner:
# correct, but ~0.4 GPU-h of captions nobody reads on real data, docs/reproduce.md).
LABELLED_SETS_WITHOUT_CAPTIONS = True


@dataclass(frozen=True)
class PretrainSpec:
    """One pretraining run: datasets as (dataset, config or None for every clip), captioner, and λ2."""

    parts: tuple[tuple[str, str | None], ...]
    captioner: str = "blip2"
    lambda2: float = 0.01

    @property
    def name(self) -> str:
        data = "+".join(DATA_NAMES[d][0] + (f"-{c}" if c else "") for d, c in self.parts)
        return f"{data}.{self.captioner}.l2-{self.lambda2:g}"

    @property
    def data_label(self) -> str:
        """E.g. ``VS + K top30`` (``K (all)`` for every clip of K alone)."""
        names = [DATA_NAMES[d][1] + (f" {c}" if c else "") for d, c in self.parts]
        return names[0] + " (all)" if len(names) == 1 and self.parts[0][1] is None else " + ".join(names)


def options(**values: object) -> list[str]:
    """``--name value`` pairs in order: ``snake_case`` names become ``--kebab-case``; None and False leave the
    option out, True gives a bare flag, floats print in their shortest form (5e-04 -> 0.0005)."""
    argv: list[str] = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        argv.append(flag(name))
        if value is not True:
            argv.append(f"{value:g}" if isinstance(value, float) else str(value))
    return argv


def data_parts(vggsound: bool, kinetics_k: int | None) -> tuple[tuple[str, str | None], ...]:
    """VGGSound (every clip) and/or Kinetics' top k % (k = 100: every clip)."""
    parts: list[tuple[str, str | None]] = [("vggsound-train", None)] if vggsound else []
    if kinetics_k is not None:
        parts.append(("kinetics", None if kinetics_k == 100 else f"top{kinetics_k}"))
    return tuple(parts)


@dataclass
class Plan:
    """The steps (in order) and result files of the tables being built; see the module docstring."""

    work_dir: Path
    gpus: int
    settings: Settings
    sources: Sources
    models: Models
    max_batch_per_gpu: int | None = None  # larger per-GPU batches are split by gradient accumulation
    steps: list[Step] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)  # said once before running (e.g. a rounded batch size)
    _counts: dict[str, int] = field(default_factory=dict)

    def ordered_steps(self) -> list[Step]:
        """The steps phase by phase (generation first), in planning order within a phase."""
        return sorted(self.steps, key=lambda step: PHASES.index(step.argv[0]))

    def main_spec(self, **overrides) -> PretrainSpec:
        """The paper's best setting: VGGSound + Kinetics top 30 %, BLIP-2 captions, λ2 = 0.01."""
        values = dict(parts=data_parts(True, self.settings.main_k), lambda2=self.settings.lambda2)
        return PretrainSpec(**{**values, **overrides})

    def needed_datasets(self) -> set[str]:
        """The datasets the planned steps read (checked before anything runs)."""
        return {name for name in NOMINAL_CLIPS if any(f"data/{name}." in s.output for s in self.steps)}

    # -- counting (GPU-hour estimates) ---------------------------------------------------------------------------
    def clips(self, dataset: str, config: str | None = None) -> float:
        source = self.sources.get(dataset)
        if dataset not in self._counts:
            self._counts[dataset] = source.count() if source else NOMINAL_CLIPS[dataset]
        share = 1.0 if config is None else int(config.removeprefix("top").removeprefix("random")) / 100
        return self._counts[dataset] * share

    # -- steps -------------------------------------------------------------------------------------------------
    def _path(self, relative: str) -> Path:
        return self.work_dir / relative

    def _batch_layout(self, what: str, global_batch: int) -> tuple[list[str], int]:
        """Per-GPU batch options for ``global_batch`` and the global batch they give."""
        per_gpu, accumulation = split_batch(global_batch, self.gpus, self.max_batch_per_gpu)
        actual = per_gpu * accumulation * self.gpus
        if actual != global_batch:
            self.notes.add(
                f"{what}: global batch {actual} ({self.gpus} GPU(s)) instead of the paper's {global_batch}"
            )
        if accumulation > 1:
            self.notes.add(
                f"{what}: {per_gpu} clips per GPU x {accumulation} accumulation steps (--max-batch-per-gpu); "
                "contrastive negatives come from each pass only"
            )
        layout = ["--per-device-batch-size", str(per_gpu)]
        layout += ["--gradient-accumulation-steps", str(accumulation)] if accumulation > 1 else []
        return [*layout, "--num-workers", str(self.settings.loader_workers)], actual

    def _generate(self, dataset: str, output: str, model_args: list[str], kind: str) -> None:
        source = self.sources.get(dataset)
        inputs = source.generate_args() if source else [f"<{dataset}>"]
        s = self.settings
        argv = ["generate", *inputs, "--output-dir", str(self._path(output)), *model_args]
        argv += options(fps=s.fps, clip_seconds=s.clip_seconds, shard_size=s.shard_size, seed=0)
        layout = options(num_workers=s.generate_workers)
        hours = gpu_hours(f"generate:{kind}", self.clips(dataset))
        self.steps.append(Step(output, tuple(argv), tuple(layout), True, hours, f"generate {output}"))

    def _scorer_args(self) -> list[str]:
        m = self.models
        return options(
            scorer=m.scorer, scorer_weights=m.scorer_weights, scorer_text_model=m.scorer_text_model
        )

    def triplets(self, dataset: str, captioner: str = "blip2") -> Path:
        """A generation output with the top-k / random-k configs every table uses."""
        output = f"data/{dataset}.{captioner}"
        captioner_args = ["--captioner", self.models.captioner(captioner), *self._scorer_args()]
        self._generate(dataset, output, captioner_args, captioner)
        s = self.settings
        argv = ["filter", str(self._path(output)), "--top", *(str(k) for k in s.top_k if k != 100)]
        argv += ["--random", *(str(k) for k in s.random_k), "--seed", "0"]
        self.steps.append(Step(f"{output}/subsets.json", tuple(argv), title=f"filter {output}"))
        return self._path(output)

    def _labelled_models(self) -> list[str]:
        """How labelled sets are packaged (see LABELLED_SETS_WITHOUT_CAPTIONS)."""
        if LABELLED_SETS_WITHOUT_CAPTIONS:
            return ["--captioner", "none"]
        return ["--captioner", self.models.blip2, *self._scorer_args()]

    def labelled(self, dataset: str) -> Path:
        """A fine-tuning / evaluation set (labels needed, captions not); VGGSound train is the triplets' own."""
        if dataset == "vggsound-train":
            return self.triplets(dataset)
        output = f"data/{dataset}.labelled"
        kind = "none" if LABELLED_SETS_WITHOUT_CAPTIONS else "blip2"
        self._generate(dataset, output, self._labelled_models(), kind)
        return self._path(output)

    def pretrained(self, spec: PretrainSpec) -> Path:
        s, m = self.settings, self.models
        datasets = []
        for dataset, config in spec.parts:
            folder = self.triplets(dataset, spec.captioner)
            datasets += ["--dataset", f"{folder}:{config}" if config else str(folder)]
        output = f"pretrain/{spec.name}"
        argv = ["pretrain", *datasets, "--output-dir", str(self._path(output))]
        argv += options(
            contrastive_weight=s.lambda1,
            text_contrastive_weight=spec.lambda2,
            learning_rate=s.pretrain_lr,
            num_epochs=s.pretrain_epochs,
            max_steps=s.pretrain_max_steps,
            seed=0,
            config_name_or_path=m.lgcavmae_config,
            init_from_vitmae=m.vitmae if s.init_from_vitmae else None,
            mixed_precision=s.mixed_precision,
            resume="latest",
        )
        argv += s.extra_pretrain_args
        layout, batch = self._batch_layout("pretraining", s.pretrain_global_batch)
        clips = sum(self.clips(d, c) for d, c in spec.parts)
        samples = s.pretrain_max_steps * batch if s.pretrain_max_steps else s.pretrain_epochs * clips
        hours = gpu_hours("pretrain", samples)
        self.steps.append(Step(output, tuple(argv), tuple(layout), True, hours, f"pretrain {spec.name}"))
        return self._path(output)

    def _evaluate(
        self, task: str, name: str, model: Path, datasets: dict[str, Path], output: str
    ) -> list[str]:
        argv = ["evaluate", task, "--model", f"{name}={model}"]
        for label, folder in datasets.items():
            argv += ["--dataset", f"{label}={folder}"]
        s = self.settings
        return argv + options(
            eval_split="train", mixed_precision=s.eval_precision, output_dir=self._path(output)
        )

    def retrieval(self, spec: PretrainSpec) -> Path:
        """Audio↔visual retrieval of the pretrained model on VGGSound test and AudioSet eval (official protocol)."""
        datasets = {name: self.labelled(dataset) for name, dataset in RETRIEVAL_SETS.items()}
        output = f"eval/retrieval/{spec.name}"
        argv = self._evaluate("retrieval", spec.name, self.pretrained(spec), datasets, output)
        argv += options(protocol="cavmae", per_class=self.settings.retrieval_per_class, seed=0)
        layout = options(
            per_device_eval_batch_size=self.settings.eval_batch_size, num_workers=self.settings.loader_workers
        )
        hours = gpu_hours("inference", 2 * 2 * 2_000)  # ~2k clips per set, audio and visual passes
        self.steps.append(Step(output, tuple(argv), tuple(layout), False, hours, f"retrieval {spec.name}"))
        return self._path(output) / "retrieval.json"

    def finetuned(self, spec: PretrainSpec, task: str) -> Path:
        s = self.settings
        recipe: FinetuneRecipe = getattr(s, task)
        train, _ = TASKS[task]
        output = f"finetune/{spec.name}.{task}"
        argv = ["finetune", "--model", str(self.pretrained(spec)), "--dataset", str(self.labelled(train))]
        argv += options(
            output_dir=self._path(output),
            eval_split="none",
            seed=0,
            learning_rate=recipe.learning_rate,
            head_lr_multiplier=recipe.head_lr_multiplier,
            num_epochs=recipe.num_epochs,
            lr_decay_start_epoch=recipe.lr_decay_start_epoch,
            balanced_sampling=recipe.balanced_sampling,
            max_steps=recipe.max_steps,
            label_csv=self.sources.audioset_labels if task == "audioset" else None,
            mixed_precision=s.mixed_precision,
            resume="latest",
        )
        argv += ["--report-to", "none", "--save-strategy", "no"] if s.tiny else []
        layout, batch = self._batch_layout(f"fine-tuning on {task}", recipe.global_batch)
        samples = recipe.max_steps * batch if recipe.max_steps else recipe.num_epochs * self.clips(train)
        hours = gpu_hours("finetune", samples)
        title = f"fine-tune {spec.name} on {task}"
        self.steps.append(Step(output, tuple(argv), tuple(layout), True, hours, title))
        return self._path(output)

    def classification(self, spec: PretrainSpec, task: str) -> Path:
        """The official multi-frame accuracy (VGGSound) or mAP (AudioSet-20K) of the fine-tuned model."""
        _, test = TASKS[task]
        output = f"eval/classification/{spec.name}.{task}"
        datasets = {task: self.labelled(test)}
        argv = self._evaluate("classification", spec.name, self.finetuned(spec, task), datasets, output)
        layout = options(
            per_device_eval_batch_size=self.settings.eval_batch_size, num_workers=self.settings.loader_workers
        )
        hours = gpu_hours("inference", 10 * self.clips(test))  # every frame of every clip
        title = f"classify {spec.name} ({task})"
        self.steps.append(Step(output, tuple(argv), tuple(layout), False, hours, title))
        return self._path(output) / "classification.json"

    def outcome(self, spec: PretrainSpec, retrieval: bool = True, tasks: tuple[str, ...] = ()) -> Outcome:
        """Plan the steps a table row needs and return where its numbers will be."""
        return Outcome(
            retrieval=self.retrieval(spec) if retrieval else None,
            classification={task: self.classification(spec, task) for task in tasks},
        )


__all__ = ["LABELLED_SETS_WITHOUT_CAPTIONS", "Plan", "PretrainSpec", "data_parts"]
