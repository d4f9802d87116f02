"""Caption columns of a triplet dataset and the caption kind (audio, visual, audio-visual) each feeds, per row.

Our triplets carry one chosen caption per clip (`caption`: a frame caption picked for agreeing with the audio); it
is the audio-visual caption. Datasets with modality-specific columns (`audio_caption`, `visual_caption`,
`av_caption`, each a string or a list of strings, as AVCaps provides; `avt generate` writes `visual_caption` from
the frame captions and, with an audio captioner, `audio_caption`) use them. A kind whose column is missing or
empty for a row falls back to the audio-visual caption, then to `caption` (`fallback_warnings` says so); see
docs/slava.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from avt_core.errors import UsageError
from avt_data.rows import missing_columns_hint

CAPTION_KINDS: tuple[str, ...] = ("av", "audio", "visual")
CAPTION_CHAINS: dict[str, tuple[str, ...]] = {
    "av": ("av_caption", "caption"),
    "audio": ("audio_caption", "av_caption", "caption"),
    "visual": ("visual_caption", "av_caption", "caption"),
}
CAPTION_COLUMNS: tuple[str, ...] = ("caption", "av_caption", "audio_caption", "visual_caption")


def as_caption_list(value: Any) -> list[str]:
    """A caption cell (string, list of strings or None) as a list of non-empty strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(v) for v in value if v is not None and str(v).strip()]


def present_caption_columns(column_names: Iterable[str]) -> list[str]:
    names = set(column_names)
    return [c for c in CAPTION_COLUMNS if c in names]


def caption_sources(column_names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Per kind, the columns of this dataset tried in order (empty for every kind without caption columns: the
    clips then have audio and frames only, as a labelled-only output of `avt generate --captioner none`)."""
    present = set(present_caption_columns(column_names))
    return {kind: tuple(c for c in chain if c in present) for kind, chain in CAPTION_CHAINS.items()}


def require_caption_columns(column_names: Iterable[str], name: str) -> None:
    """Training needs text: a dataset without any caption column is refused with the reason, before models load."""
    names = list(column_names)
    if not present_caption_columns(names):
        raise UsageError(
            f"dataset {name} has none of the caption columns {list(CAPTION_COLUMNS)}: SLAVA trains on captions"
            + missing_columns_hint(["caption"], names)
        )


def row_captions(row: dict[str, Any], sources: dict[str, Sequence[str]]) -> dict[str, list[str]]:
    """The captions of each kind for one row: the first non-empty column of the kind's chain."""
    out: dict[str, list[str]] = {}
    for kind, columns in sources.items():
        out[kind] = next((c for c in (as_caption_list(row.get(col)) for col in columns) if c), [])
    return out


def fallback_warnings(sources: dict[str, Sequence[str]], kinds: Iterable[str], name: str) -> list[str]:
    """One line per audio / visual caption kind of ``kinds`` that dataset ``name`` lacks, so the kind reads another
    kind's column (the same text twice: `a&v`'s two batch types, `audioclip` = `av+avloss`). The audio-visual kind
    reading `caption` is our triplets' design, not a fallback."""
    lines = []
    for kind in sorted(set(kinds) - {"av"}):
        own, used = CAPTION_CHAINS[kind][0], describe_sources(sources)[kind]
        if used not in (own, "none"):
            lines.append(
                f"{name} has no {own} column: the {kind} captions fall back to {used}, so this variant trains "
                f"its {kind}-caption terms on the same text as the others (see docs/slava.md, Captions)"
            )
    return lines


def describe_sources(sources: dict[str, Sequence[str]]) -> dict[str, str]:
    """`{kind: column}` as used when every row has the first column (for logs and the run summary)."""
    return {kind: (columns[0] if columns else "none") for kind, columns in sources.items()}


__all__ = [
    "CAPTION_CHAINS",
    "CAPTION_COLUMNS",
    "CAPTION_KINDS",
    "as_caption_list",
    "caption_sources",
    "describe_sources",
    "fallback_warnings",
    "present_caption_columns",
    "require_caption_columns",
    "row_captions",
]
