"""``--path-template``: where the file of a ``ytid,start`` row lies, in the names the downloaders give.

VGGSound/AudioSet downloaders name trimmed clips in a few ways: ``{ytid}_{start:06d}.mp4`` (the default),
``{ytid}_{start}_{end}.mp4``, audiosetdl's milliseconds ``{ytid}_{start_ms}_{end_ms}.mp4``, folders per split
and class ``{split}/{label}/{ytid}_{start:06d}.mp4``, or whole videos ``Y{ytid}.mp4``. Every field takes a
format spec (``{start:06d}``, ``{end_ms:08d}``). The template is checked once, before any row is read: an
unknown field or a spec its value can't take is one line naming the known fields.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from avt_core.errors import UsageError

# Known fields: what each holds (for the message naming them) and an example value (for checking specs).
FIELDS: dict[str, tuple[str, object]] = {
    "ytid": ("the YouTube id", "-PJHxphWEs0"),
    "start": ("the start second, whole (int)", 30),
    "start_s": ("the start in seconds (float)", 30.0),
    "start_ms": ("the start in milliseconds (int)", 30000),
    "end": ("the end second, whole (int): the row's end, else start + --clip-seconds", 40),
    "end_s": ("the end in seconds (float)", 40.0),
    "end_ms": ("the end in milliseconds (int)", 40000),
    "label": ("the row's first label, made filesystem-safe", "dog barking"),
    "split": ("the row's split (VGGSound: train or test)", "train"),
}
_BASIC = frozenset({"ytid", "start", "start_s"})
_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f]')


def known_fields() -> str:
    return ", ".join("{" + name + "}" for name in FIELDS)


def safe_label(label: str) -> str:
    """A label as one path component: separators and characters filesystems refuse become ``_``."""
    safe = _UNSAFE.sub("_", label.strip())
    return "_" if safe in ("", ".", "..") else safe


@dataclass(frozen=True)
class PathTemplate:
    """A checked ``--path-template``; :meth:`format` names the file of one row."""

    text: str
    fields: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        except ValueError as err:
            raise UsageError(f"--path-template {text!r}: {err}; known fields: {known_fields()}") from None
        unknown = sorted(names - set(FIELDS))
        if unknown:
            shown = ", ".join("{" + name + "}" for name in unknown)
            raise UsageError(
                f"--path-template {text!r}: unknown field {shown}; known fields: {known_fields()}"
            )
        try:
            text.format(**{name: example for name, (_, example) in FIELDS.items()})
        except (ValueError, TypeError) as err:
            raise UsageError(f"--path-template {text!r}: {err}; known fields: {known_fields()}") from None
        return cls(text, frozenset(names))

    @property
    def needs_label(self) -> bool:
        return "label" in self.fields

    @property
    def needs_split(self) -> bool:
        return "split" in self.fields

    def format(self, ytid: str, start: float, end: float, labels: tuple[str, ...], split: str | None) -> str:
        """The relative file name of one row (``end``: the row's end, or start + the clip length)."""
        values: dict[str, object] = {"ytid": ytid, "start": int(start), "start_s": start}
        fields = self.fields
        if not fields <= _BASIC:  # the default template needs nothing more; the others pay for what they use
            values.update(start_ms=round(start * 1000), end=int(end), end_s=end, end_ms=round(end * 1000))
            if "label" in fields:
                values["label"] = safe_label(labels[0]) if labels else ""
            values["split"] = safe_label(split) if split else ""
        return self.text.format(**values)


__all__ = ["FIELDS", "PathTemplate", "known_fields", "safe_label"]
