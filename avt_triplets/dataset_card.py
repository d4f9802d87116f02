"""The dataset card of a generation output (``README.md``), its configs, features and score histogram.

The card is what makes a generation output a *dataset*: its YAML ``configs:`` let
``load_dataset(DIR)`` / ``load_dataset(DIR, "top30")`` (and the same on the Hub) read the rows with
no custom code, each subset being a Parquet row filter over the same shards (see
:mod:`avt_triplets.selection`). Its body records how the triplets were made (captioner, scorer,
prompt, fps, clip length, seed, package versions), what was lost (failure counts by reason), and
the ``clap_score`` distribution with the top-k thresholds.

``write_dataset_card`` is called by the writer stage at the end of every ``avt generate`` run, by ``avt filter``
and by ``avt publish`` (:mod:`avt_triplets.publish`, the push to the Hub); it reads the run's files tolerantly, so a
partial output (unfinished shards, no failures yet, an older manifest) still gets a correct card.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard, DatasetCardData

from avt_core import storage
from avt_core.atomic import atomic_write_bytes
from avt_triplets import layout, schema, selection, shards
from avt_triplets.cards import AVT_TAG, CardLicense, read_card_text, update_card
from avt_triplets.labels import ClassTable
from avt_triplets.public import public_manifest
from avt_triplets.shards import RunTotals, collect_totals, flatten

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "all"
SPLIT = "train"
# Files of a generation output that belong on the Hub besides the data shards.
SIDE_FILES = (layout.CARD_FILE, layout.MANIFEST_FILE, layout.SUBSETS_FILE, layout.HISTOGRAM_FILE)


# ----------------------------------------------------------------------------------------------
# Reading a generation output


def read_manifest(root: str | Path) -> dict[str, Any]:
    """``manifest.json`` as a dict; ``{}`` when missing or unreadable (the card then says "unknown")."""
    path = storage.as_path(root) / layout.MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        logger.warning("could not read %s: %s", path, error)
        return {}
    return data if isinstance(data, dict) else {}


def _lookup(flat: dict[str, Any], *names: str, default: Any = None) -> Any:
    """First value whose dotted key equals, or ends with, one of ``names`` (manifests evolve)."""
    for name in names:
        if name in flat and flat[name] not in (None, ""):
            return flat[name]
    for name in names:
        for key, value in flat.items():
            if key.endswith("." + name) and value not in (None, ""):
                return value
    return default


@dataclass
class Provenance:
    """What the card says about how the triplets were made, read from ``manifest.json``."""

    captioner: str = "unknown"
    captioner_revision: str = "unknown"
    caption_prompt: str = "none"
    scorer: str = "unknown"
    scorer_revision: str = "unknown"
    fps: Any = "unknown"
    clip_seconds: Any = "unknown"
    seed: Any = "unknown"
    caption_unit: str = "frame"  # --caption-unit (older manifests: frame)
    clip_prompts: list[str] = field(default_factory=list)  # clip unit: the prompt of each candidate
    avt_version: str = "unknown"
    package_versions: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    audio_captioner: dict[str, Any] | None = None  # its manifest record (--audio-captioner), None without
    # the records of --visual-scorer, --av-captioner, --av-caption-from (those the run had), by record name
    caption_kind_models: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> Provenance:
        # the audio captioner's record is read whole below; its keys must not answer the captioner's lookups
        whole = ("audio_captioner", *_CAPTION_KIND_MODELS)
        flat = flatten({key: value for key, value in manifest.items() if key not in whole})
        captioner = _lookup(flat, "captioner", "captioner.name", "captioner_name", "captioner.model")
        scorer = _lookup(flat, "scorer", "scorer.name", "scorer_name", "scorer.model")
        versions = _lookup(flat, "package_versions", "versions", default=None)
        if not isinstance(versions, dict):
            versions = {
                key.split(".", 1)[1]: str(value)
                for key, value in flat.items()
                if key.startswith(("package_versions.", "versions."))
            }
        return cls(
            captioner=str(captioner if not isinstance(captioner, dict) else captioner.get("name", "unknown"))
            if captioner is not None
            else "unknown",
            captioner_revision=str(
                _lookup(
                    flat, "captioner_revision", "captioner.revision", "caption_revision", default="unknown"
                )
            ),
            caption_prompt=str(_lookup(flat, "caption_prompt", "prompt", "captioner.prompt", default="none")),
            scorer=str(scorer) if scorer is not None else "unknown",
            scorer_revision=str(_lookup(flat, "scorer_revision", "scorer.revision", default="unknown")),
            fps=_lookup(flat, "fps", default="unknown"),
            clip_seconds=_lookup(
                flat,
                "clip_seconds",
                "clip_length",
                "clip_length_s",
                "clip_duration",
                "duration",
                default="unknown",
            ),
            seed=_lookup(flat, "seed", default="unknown"),
            audio_captioner=manifest.get("audio_captioner") or None,
            caption_kind_models={name: manifest[name] for name in _CAPTION_KIND_MODELS if manifest.get(name)},
            caption_unit=str(_lookup(flat, "captioner.caption_unit", default="frame")),
            clip_prompts=list((manifest.get("captioner") or {}).get("clip_prompts") or []),
            avt_version=str(_lookup(flat, "avt_version", "version", default="unknown")),
            package_versions={str(k): str(v) for k, v in versions.items()},
            options={k: v for k, v in flat.items() if not k.startswith(("package_versions.", "versions."))},
        )

    def unit_text(self) -> str:
        """What one caption describes (``--caption-unit``): "per frame", or "per clip window of up to N frames,
        as one video"."""
        if self.caption_unit != "clip":
            return "per frame"
        try:
            count = max(1, math.ceil(float(self.clip_seconds) * float(self.fps) - 1e-9))
        except (TypeError, ValueError):
            return "per clip window (its sampled frames as one video)"
        return f"per clip window of up to {count} frames, as one video"


def data_features(root: str | Path, data_files: Iterable[Path] | None = None) -> datasets.Features | None:
    """Features of the shards: the ones datasets stored in the Parquet schema, else the schema
    module's, restricted to the columns present (a metadata-only output has no media)."""
    files = list(data_files) if data_files is not None else selection.done_shards(root, warn=False)
    if not files:
        return None
    arrow_schema = shards.read_schema(files[0])
    if arrow_schema.metadata and b"huggingface" in arrow_schema.metadata:
        stored = datasets.Features.from_arrow_schema(arrow_schema)
        # the stored metadata may name columns a tool dropped later: keep the columns really present
        return datasets.Features({name: stored[name] for name in arrow_schema.names if name in stored})
    reference = schema.triplet_features(with_media=True, caption_kinds=("audio", "av"))
    inferred = datasets.Features.from_arrow_schema(arrow_schema)
    return datasets.Features({name: reference.get(name, inferred[name]) for name in arrow_schema.names})


# ----------------------------------------------------------------------------------------------
# Subsets and histogram


def _requested(
    given: Iterable[float] | None, recorded: list[float] | None, default: Iterable[float], replace: bool
) -> list[float]:
    """The k values of one kind: the recorded ones plus those given now (only those given, with ``replace``)."""
    if replace:
        return sorted(set(given or ()))
    if given is None:
        return list(recorded) if recorded is not None else list(default)
    return sorted(set(recorded or ()) | set(given))


def plan_subsets(
    root: str | Path,
    top: Iterable[float] | None = None,
    random: Iterable[float] | None = None,
    seed: int | None = None,
    replace: bool = False,
    by: str = selection.SCORE_COLUMN,
) -> selection.SubsetsFile:
    """The subsets over the current finished shards, without writing anything.

    The k values given are added to those already in ``subsets.json`` (with ``replace``: they are the only
    ones); a kind never recorded starts from the paper's defaults (top/random 10, 30, 50), or from none in a
    labelled-only output (``--captioner none``), whose top-k requests raise
    :class:`~avt_triplets.selection.NoScoresError`. ``top`` ranks by ``by`` (``avt filter --by``): the top-k
    configs of each score column are kept side by side. ``seed`` None keeps the recorded seed, else the run's
    seed from the manifest.
    """
    root = storage.as_path(root)
    previous = selection.read_subsets(root)
    if seed is None:
        if previous is not None:
            seed = previous.seed
        else:
            manifest_seed = Provenance.from_manifest(read_manifest(root)).seed
            seed = int(manifest_seed) if isinstance(manifest_seed, int) else 0
    # A labelled-only output has no scores: no top-k (asking for one is an error), no default random-k.
    captioned = is_captioned(root)
    default_top, default_random = (selection.DEFAULT_TOP, selection.DEFAULT_RANDOM) if captioned else ((), ())
    top_by = dict(previous.top_by) if previous and not replace else {}
    # the top k values given are this column's; clap_score's stay as recorded
    if by != selection.SCORE_COLUMN:
        top_by[by] = _requested(top, top_by.get(by), selection.DEFAULT_TOP, replace)
        top = None
    top = _requested(top, previous.top if previous else None, default_top, replace)
    random = _requested(random, previous.random if previous else None, default_random, replace)
    return selection.build_subsets(root, top=top, random=random, seed=seed, top_by=top_by)


def refresh_subsets(root: str | Path, **requested: Any) -> selection.SubsetsFile:
    """Recompute the subsets over the current finished shards and write them with the card (card first,
    ``subsets.json`` last: :func:`write_dataset_card`); ``requested`` are :func:`plan_subsets`'s ``top``,
    ``random``, ``seed`` and ``replace``."""
    subsets = plan_subsets(root, **requested)
    write_dataset_card(root, subsets=subsets)
    return subsets


def write_histogram(root: str | Path, subsets: selection.SubsetsFile) -> Path:
    """``clap_score`` histogram with the top-k thresholds as vertical lines (PNG in ``root``)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    root = storage.as_path(root)
    files = [root / f for f in subsets.data_files]
    scores = selection.read_scores(root, files).table.column(selection.SCORE_COLUMN).to_numpy()
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    try:
        if len(scores):
            ax.hist(scores, bins=min(100, max(10, len(scores) // 20)), color="#4C72B0", alpha=0.85)
        colors = ["#C44E52", "#DD8452", "#55A868", "#8172B3", "#937860"]
        ranked = (s for s in subsets.subsets if s.kind == "top" and s.size and s.by == selection.SCORE_COLUMN)
        for i, subset in enumerate(ranked):
            threshold = subset.threshold[selection.SCORE_COLUMN]
            ax.axvline(threshold, color=colors[i % len(colors)], linestyle="--", linewidth=1.5)
            ax.text(
                threshold,
                0.98 - 0.08 * i,
                f" {subset.name}: {threshold:.3f}",
                transform=ax.get_xaxis_transform(),
                color=colors[i % len(colors)],
                va="top",
                fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},  # legible over bars
            )
        ax.set_xlabel("clap_score (CLAP cosine of the chosen caption and the clip's audio)")
        ax.set_ylabel("clips")
        ax.set_title(f"clap_score over {len(scores)} clips")
        fig.tight_layout()
        path = root / layout.HISTOGRAM_FILE
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        atomic_write_bytes(path, buffer.getvalue())
    finally:
        plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# The card


def _config_data_files(subsets: selection.SubsetsFile) -> str | list[str]:
    """A glob when every shard is finished (compact, stays valid), else the exact finished files."""
    if not subsets.excluded_files and subsets.data_files:
        return layout.DATA_GLOB
    return list(subsets.data_files)


def split_files(root: str | Path, data_files: Iterable[str]) -> dict[str, list[str]] | None:
    """A ``--split all`` output's shards by the split they hold (each holds one: ``plan_shards`` cuts at split
    changes), read from their ``split`` column; None for an output without one."""
    root = storage.as_path(root)
    by_split: dict[str, list[str]] = {}
    for name in data_files:
        path = root / name
        if schema.SPLIT_COLUMN not in shards.read_schema(path).names:
            return None
        values = set(shards.read_table(path, columns=[schema.SPLIT_COLUMN]).column(0).to_pylist())
        if len(values) != 1 or None in values:
            logger.warning("%s holds the splits %s: the card lists one split, %s", name, values, SPLIT)
            return None
        by_split.setdefault(values.pop(), []).append(name)
    return by_split or None


def card_configs(
    subsets: selection.SubsetsFile, splits: dict[str, list[str]] | None = None
) -> list[dict[str, Any]]:
    """The YAML ``configs:`` entries: ``all`` (default) and one Parquet-filter view per subset; each with the
    output's one split, ``train``, or, for a ``--split all`` output, each list split's files (``splits``)."""

    def data_files() -> list[dict[str, Any]]:  # a fresh object per config, so the YAML has no aliases
        if splits:
            return [{"split": name, "path": list(files)} for name, files in splits.items()]
        return [{"split": SPLIT, "path": _config_data_files(subsets)}]

    configs: list[dict[str, Any]] = [
        {"config_name": DEFAULT_CONFIG, "data_files": data_files(), "default": True}
    ]
    for subset in subsets.subsets:
        if not subset.size:  # e.g. top10 of 4 clips: a config load_dataset could not read
            continue
        filters = json.loads(json.dumps(subset.filters))
        configs.append({"config_name": subset.name, "data_files": data_files(), "filters": filters})
    return configs


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if text and text not in ("unknown", "none") else text


@dataclass
class LabelStats:
    """How the rows are labelled: rows with at least one label, and clips per label."""

    labelled_rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, files: Iterable[Path]) -> LabelStats:
        """From the ``labels`` column alone (Parquet column projection: no media is read)."""
        import pyarrow.compute as pc

        stats, counts = cls(), Counter()
        for path in files:
            if "labels" not in shards.read_schema(path).names:
                continue
            column = shards.read_table(path, columns=["labels"]).column("labels")
            stats.labelled_rows += int(
                pc.sum(pc.greater(pc.fill_null(pc.list_value_length(column), 0), 0)).as_py() or 0
            )
            flat = pc.list_flatten(column)
            if len(flat):
                for item in pc.value_counts(flat).to_pylist():
                    counts[item["values"]] += int(item["counts"])
        stats.counts = dict(counts.most_common())
        return stats


@dataclass
class CardContent:
    """Everything the card's body says, read once from the output."""

    root: Path
    repo_id: str | None
    provenance: Provenance
    totals: RunTotals
    subsets: selection.SubsetsFile
    features: datasets.Features | None
    captioned: bool
    labels: LabelStats
    classes: ClassTable | None = None  # the class list the manifest records

    @property
    def load_path(self) -> str:
        return self.repo_id or str(self.root)


def is_captioned(root: str | Path, data_files: Iterable[Path] | None = None) -> bool:
    """Whether an output holds captioned triplets: its finished shards' columns say, else its manifest
    (False for ``avt generate --captioner none``)."""
    files = list(data_files) if data_files is not None else selection.done_shards(root, warn=False)
    if files:
        return schema.has_captions(shards.read_schema(files[0]).names)
    return bool(read_manifest(root).get("captioned", True))


def _intro(card: CardContent) -> list[str]:
    if not card.captioned:
        return [
            "Labelled audio-visual clips stored with `avt generate --captioner none`: each clip's audio, frames "
            "and labels, for fine-tuning and evaluation. No model ran, so there are no captions: the columns "
            f"{', '.join(f'`{c}`' for c in schema.CAPTION_COLUMNS)} are absent (not empty), there is no "
            "`clap_score` to rank clips by, and `avt filter` makes `random{k}` subsets only.",
        ]
    provenance = card.provenance
    if provenance.caption_unit != "clip":
        return [
            "Audio-visual-text triplets made with `avt generate`, following LG-CAV-MAE §2.3: every "
            "sampled frame of a clip is captioned, every caption is scored against the clip's audio with CLAP, "
            "and the best-scoring caption is kept with its score (`clap_score`). Subsets `top{k}` keep the k% "
            "best-scoring clips; `random{k}` are seeded random samples of the same size (the paper's baseline).",
        ]
    return [
        f"Audio-visual-text triplets made with `avt generate --caption-unit clip`: captions are "
        f"{provenance.unit_text()}. The captioner gives {len(provenance.clip_prompts) or 'several'} candidates "
        "per clip, one per prompt (`caption_index` is the candidate's position, its prompt the manifest's "
        "`captioner.clip_prompts`); every candidate is scored against the clip's audio with CLAP and the "
        "best-scoring one is kept with its score (`clap_score`). Subsets `top{k}` keep the k% best-scoring "
        "clips; `random{k}` are seeded random samples of the same size (the paper's baseline).",
    ]


def _totals_section(totals: RunTotals, captioned: bool) -> list[str]:
    lines = [
        "## Totals",
        "",
        "| | count |",
        "|---|---|",
        f"| clips processed | {totals.clips} |",
        f"| {'triplets' if captioned else 'labelled clips'} (rows) | {totals.triplets} |",
        f"| failures | {totals.failures} |",
        f"| finished shards | {totals.shards_done} |",
    ]
    if totals.shards_pending:
        lines.append(f"| unfinished shards (not included) | {totals.shards_pending} |")
    lines += ["", "### Failures by reason", ""]
    if totals.failures_by_reason:
        lines += ["| reason | clips |", "|---|---|"]
        lines += [f"| `{reason}` | {count} |" for reason, count in totals.failures_by_reason.items()]
    else:
        lines.append("No clip failed.")
    model_phases = () if captioned else ("seconds.caption", "seconds.score")  # no model ran
    phase_times = {
        k: v
        for k, v in totals.stats_sums.items()
        if ("second" in k or k.endswith("_s")) and k not in model_phases
    }
    if phase_times:
        lines += ["", "### Time spent (summed over shards)", "", "| phase | seconds |", "|---|---|"]
        lines += [f"| `{k}` | {v:.1f} |" for k, v in sorted(phase_times.items())]
    return lines


def card_features(features: datasets.Features, classes: ClassTable | None) -> datasets.Features:
    """The features the card declares: the shards' own, with ``labels`` a ``Sequence(ClassLabel)`` of the recorded
    class list. The shards keep the label strings (every reader, pandas included, sees names); ``load_dataset``
    casts them to class indices through the card."""
    if classes is None or "labels" not in features:
        return features
    return datasets.Features(
        {**features, "labels": datasets.List(datasets.ClassLabel(names=list(classes.names)))}
    )


def declared_features(root: str | Path, data_files: Iterable[Path] | None = None) -> datasets.Features | None:
    """What ``load_dataset(root)`` gives (the card's ``dataset_info``; the builder yields the same): the shards'
    features with ``labels`` as ``Sequence(ClassLabel)`` when the manifest records a class list."""
    features = data_features(root, data_files)
    classes = ClassTable.from_record(read_manifest(root).get("classes"))
    return None if features is None else card_features(features, classes)


def _class_list_lines(classes: ClassTable | None) -> list[str]:
    if classes is None:
        return []
    ids = " Their ids (e.g. AudioSet mids) are in `manifest.json` (`classes.mids`)." if classes.mids else ""
    return [
        "",
        f"Class list: {len(classes)} classes, from {classes.source}. `load_dataset` gives `labels` as "
        "`Sequence(ClassLabel)`: class indices into this list (`features['labels'].feature.names`), the same "
        f"for every split made from it.{ids}",
    ]


def _labels_section(
    labels: LabelStats, rows: int, classes: ClassTable | None = None, shown: int = 20
) -> list[str]:
    """Rows with labels, the number of distinct labels and the most frequent ones, and the class list."""
    if not labels.counts:
        return ["## Labels", "", "No row has a label.", *_class_list_lines(classes)]
    lines = [
        "## Labels",
        "",
        f"{labels.labelled_rows} of {rows} rows have at least one label; {len(labels.counts)} distinct labels.",
        "",
        "| label | clips |",
        "|---|---|",
    ]
    lines += [f"| {_fmt(label)} | {count} |" for label, count in list(labels.counts.items())[:shown]]
    if len(labels.counts) > shown:
        lines.append(f"| ({len(labels.counts) - shown} more) | |")
    return lines + _class_list_lines(classes)


def _audio_captioner_rows(record: dict[str, Any] | None) -> list[str]:
    """How the audio captions were made: the model, its windows and prompt (none without an audio captioner)."""
    if not record:
        return []
    windows, revision = record.get("windows"), record.get("revision") or "unknown"
    return [
        f"| audio captioner | {_fmt(record.get('name'))} (revision {_fmt(revision)}), {windows} "
        f"window{'s' if windows != 1 else ''} per clip, each caption scored by the scorer |",
        f"| audio caption prompt | {_fmt(record.get('prompt'))} |",
    ]


# the other caption-kind models' records (read whole: their keys must not answer the captioner's lookups), with
# what each row of the card says they did
_CAPTION_KIND_MODELS = {
    "visual_scorer": ("visual scorer", "visual_caption is the frame caption it matches best to its own frame"),
    "av_captioner": ("AV captioner", "frames and audio together; {candidates} candidate(s) per clip (greedy, then "
                     "seeded samples), the av_caption chosen by the scorer"),
    "caption_merger": ("AV caption merger", "merges each clip's audio_caption and visual_caption, greedily"),
}  # fmt: skip


def _caption_kind_model_rows(records: dict[str, dict[str, Any]]) -> list[str]:
    """How the visual choice and the AV captions were made (no row for a model the run did not have)."""
    rows = []
    for name, (what, how) in _CAPTION_KIND_MODELS.items():
        record = records.get(name)
        if record:
            revision = record.get("revision") or "unknown"
            made = how.format(candidates=record.get("candidates", 1))
            rows.append(f"| {what} | {_fmt(record.get('name'))} (revision {_fmt(revision)}): {made} |")
            if record.get("prompt"):
                rows.append(f"| {what} prompt | {_fmt(record['prompt'])} |")
    return rows


def _provenance_section(provenance: Provenance, captioned: bool) -> list[str]:
    if captioned:
        models = [
            f"| captioner | {_fmt(provenance.captioner)} (revision {_fmt(provenance.captioner_revision)}) |",
            f"| caption prompt | {_fmt(provenance.caption_prompt)} |",
            f"| captions | {provenance.unit_text()} |",
            f"| scorer | {_fmt(provenance.scorer)} (revision {_fmt(provenance.scorer_revision)}) |",
            *_audio_captioner_rows(provenance.audio_captioner),
            *_caption_kind_model_rows(provenance.caption_kind_models),
        ]
    else:
        models = ["| models | none (`--captioner none`) |"]
    lines = [
        "## How it was made",
        "",
        "| | |",
        "|---|---|",
        *models,
        f"| frames per second | {_fmt(provenance.fps)} |",
        f"| clip length (s) | {_fmt(provenance.clip_seconds)} |",
        f"| seed | {_fmt(provenance.seed)} |",
        f"| avt version | {_fmt(provenance.avt_version)} |",
    ]
    if provenance.package_versions:
        versions = ", ".join(f"`{k}=={v}`" for k, v in sorted(provenance.package_versions.items()))
        lines += ["", "Package versions: " + versions]
    if provenance.options:
        lines += ["", "<details><summary>All run options (manifest.json)</summary>", ""]
        lines += ["| option | value |", "|---|---|"]
        lines += [
            f"| `{k}` | {_fmt(v)} |" for k, v in sorted(provenance.options.items()) if not isinstance(v, list)
        ]
        lines += ["", "</details>"]
    return lines


def _subsets_section(subsets: selection.SubsetsFile, captioned: bool) -> list[str]:
    lines = [
        "## Subsets",
        "",
        f"Computed over {subsets.total} rows of {len(subsets.data_files)} finished shard(s); random seed "
        f"{subsets.seed}. Each subset is a row filter over the same Parquet files (see `subsets.json`), "
        "not a copy of the media.",
        "",
        "| config | kind | k (%) | rows | selection |",
        "|---|---|---|---|---|",
        f"| `{DEFAULT_CONFIG}` (default) | all | 100 | {subsets.total} | |",
    ]
    for subset in subsets.subsets:
        rule = subset.describe(ties=False)
        lines.append(f"| `{subset.name}` | {subset.kind} | {subset.k:g} | {subset.size} | {rule} |")
    if captioned:
        lines += ["", f"![clap_score histogram with the top-k thresholds]({layout.HISTOGRAM_FILE})"]
    else:
        lines += [
            "",
            "Without scores there are no `top{k}` subsets; `avt filter DIR --random K` adds `random{K}`.",
        ]
    return lines


def _load_section(subsets: selection.SubsetsFile, load_path: str, captioned: bool) -> list[str]:
    lines = [
        "## How to load",
        "",
        "```python",
        # datasets reads the card of a local folder or a Hub repository, not of a folder at a URL (s3://, gs://)
        "from avt_data.hf_dataset import load_dataset  # takes storage_options=..."
        if storage.is_url(load_path)
        else "from datasets import load_dataset",
        "",
        f'{"triplets" if captioned else "clips"} = load_dataset("{load_path}", split="train")  # every clip',
    ]
    # Show the paper's best setting (30%) when it exists, else the first subset of each kind.
    names = [s.name for s in subsets.subsets]
    top = "top30" if "top30" in names else next((n for n in names if n.startswith("top")), None)
    random = "random30" if "random30" in names else next((n for n in names if n.startswith("random")), None)
    if top:
        lines.append(f'{top} = load_dataset("{load_path}", "{top}", split="train")  # the best-scoring clips')
    if random:
        lines.append(
            f'{random} = load_dataset("{load_path}", "{random}", split="train")  # random'
            + (", same size" if captioned else "")
        )
    return lines + [
        "```",
        "",
        "Or in process, with the builder shipped with avt: "
        "`builders.avt_triplets.AvtTriplets(data_dir=DIR, config_name=...)`, then `download_and_prepare()`.",
    ]


def _columns_section(features: datasets.Features, caption_unit: str = "frame") -> list[str]:
    """The columns this dataset has, their types and how each was made (``schema.column_origins``)."""
    origins = schema.column_origins(caption_unit)
    lines = ["## Columns", "", "| column | type | how it was made |", "|---|---|---|"]
    for column, feature in features.items():
        kind = type(feature).__name__
        if isinstance(feature, datasets.Value):
            kind = feature.dtype
        elif isinstance(feature, datasets.List):
            inner = feature.feature
            kind = f"list of {inner.dtype if isinstance(inner, datasets.Value) else type(inner).__name__}"
        lines.append(f"| `{column}` | {kind} | {origins.get(column, '')} |")
    kinds = [k for k, c in _CAPTION_KIND_COLUMNS.items() if c in features]
    if "caption" in features:
        lines += [
            "",
            "Caption kinds present: "
            + ", ".join(kinds or ["none beyond `caption`"])
            + ". `caption` / `clap_score` are LG-CAV-MAE's choice whatever other kinds a dataset has; "
            "`avt filter --by COLUMN` ranks by any score column.",
        ]
    if not any(m in features for m in schema.MEDIA_COLUMNS):
        lines += [
            "",
            "This is a **metadata-only** export: `audio` and `frames` were dropped; fetch the source "
            "videos (`video_path`, `start_s`, `end_s`) to rebuild them.",
        ]
    return lines


# caption kind -> the column that says a dataset has it (for the card's one-line summary)
_CAPTION_KIND_COLUMNS = {
    "visual (`visual_caption`)": "visual_caption",
    "audio (`audio_caption`)": "audio_caption",
    "audio-visual (`av_caption`)": "av_caption",
}


def _card_body(card: CardContent) -> str:
    sections = [
        [f"# {card.repo_id or card.root.name}", "", *_intro(card)],
        _totals_section(card.totals, card.captioned),
        _labels_section(card.labels, card.subsets.total, card.classes)
        if card.labels.counts or not card.captioned
        else [],
        _provenance_section(card.provenance, card.captioned),
        _subsets_section(card.subsets, card.captioned),
        _load_section(card.subsets, card.load_path, card.captioned),
        _columns_section(card.features, card.provenance.caption_unit) if card.features is not None else [],
        [
            "## License",
            "",
            f"The {'captions, scores and embeddings' if card.captioned else 'labels'} are released under the "
            "license in this card's metadata (set it before sharing). The audio and frames come from the source "
            "videos and keep their licenses.",
        ],
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _card_content(root: Path, repo_id: str | None, subsets: selection.SubsetsFile) -> CardContent:
    """What the body says, for ``subsets``; refreshes the histogram it refers to (a labelled-only output has no
    scores, hence no histogram). Models and inputs are named without local paths (:mod:`avt_triplets.public`)."""
    files = [root / f for f in subsets.data_files]
    manifest = read_manifest(root)
    features = data_features(root, files)
    classes = ClassTable.from_record(manifest.get("classes"))
    card = CardContent(
        root=root,
        repo_id=repo_id,
        provenance=Provenance.from_manifest(public_manifest(manifest)),
        totals=collect_totals(root),
        subsets=subsets,
        features=None if features is None else card_features(features, classes),
        captioned=is_captioned(root, files),
        labels=LabelStats.read(files),
        classes=classes,
    )
    if card.captioned:
        write_histogram(root, subsets)
    else:
        (root / layout.HISTOGRAM_FILE).unlink(missing_ok=True)  # a stale one of an earlier, captioned run
    return card


def _card_metadata(card: CardContent, license: CardLicense | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(keys avt owns, keys it sets only where the card has none) of the dataset card's YAML."""
    owned: dict[str, Any] = {
        "tags": ["audio-visual"]
        + (["audio-text", "clap", "captions"] if card.captioned else ["labelled"])
        + ["lg-cav-mae", AVT_TAG],
        "size_categories": [_size_category(card.subsets.total)],
        "configs": card_configs(card.subsets, split_files(card.root, card.subsets.data_files)),
    }
    if card.features is not None:
        infos = DatasetInfosDict(
            {entry["config_name"]: datasets.DatasetInfo(features=card.features) for entry in owned["configs"]}
        )
        card_data = DatasetCardData()
        infos.to_dataset_card_data(card_data)
        owned["dataset_info"] = card_data["dataset_info"]
    if license is not None:
        owned.update(license.metadata())
    defaults = {
        "license": "other",
        "pretty_name": card.repo_id or card.root.name,
        "task_categories": ["audio-classification", "video-classification"]
        + (["image-to-text"] if card.captioned else []),
    }
    return owned, defaults


def render_dataset_card(
    root: str | Path,
    repo_id: str | None = None,
    license: CardLicense | None = None,
    existing: str | None = None,
    subsets: selection.SubsetsFile | None = None,
) -> str:
    """The card of ``root`` with ``subsets`` (default: those recorded, over the finished shards now): ``existing``
    (default: the card in ``root``) with avt's metadata and sections brought up to date in place; the user's other
    keys and text are kept (:func:`avt_triplets.cards.update_card`). Writes no ``subsets.json``:
    :func:`write_dataset_card` writes it after the card.

    ``repo_id`` names the Hub repository in the title and the how-to-load snippet (else the local path);
    ``license`` None keeps the card's licence (``other`` on a new card).
    """
    root = storage.as_path(root)
    if existing is None:
        existing = read_card_text(root / layout.CARD_FILE)
    card = _card_content(root, repo_id, subsets if subsets is not None else plan_subsets(root))
    owned, defaults = _card_metadata(card, license)
    return str(update_card(existing, _card_body(card), owned, defaults, card_class=DatasetCard))


def write_dataset_card(
    root: str | Path,
    repo_id: str | None = None,
    license: CardLicense | None = None,
    subsets: selection.SubsetsFile | None = None,
) -> Path:
    """Update ``README.md`` (YAML configs + provenance) in place and the score histogram, then write
    ``subsets.json``; what the user wrote in the card outside avt's part is kept.

    ``subsets`` (default: recomputed over the finished shards with the k values and seed recorded in
    ``subsets.json``) are what both files hold. ``subsets.json`` is written last: a process killed in between
    leaves a card that reads every recorded config (never a recorded config the card lacks), and the next run of
    any command that writes the card (``avt filter``, ``avt generate``, ``avt publish``) writes both again from one
    plan. Safe to call repeatedly.
    """
    root = storage.as_path(root)
    subsets = subsets if subsets is not None else plan_subsets(root)
    path = root / layout.CARD_FILE
    text = render_dataset_card(root, repo_id=repo_id, license=license, subsets=subsets)
    atomic_write_bytes(path, text.encode("utf-8"))
    selection.write_subsets(root, subsets)
    return path


def _size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    bounds += [(10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    return next((label for bound, label in bounds if n < bound), "n>1T" if n > 10**12 else "100M<n<1B")
