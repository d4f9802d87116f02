"""Cards (``README.md``) avt writes and users edit: updated in place, never replaced.

One mechanism for every card avt writes (the dataset card of ``avt generate`` / ``filter`` / ``publish``, the model
cards of ``avt pretrain`` / ``finetune`` / ``pretrain-slava``, locally and in the repos they push): the metadata keys
avt owns are set in ``card.data`` (``huggingface_hub``'s own parser and writer), every other key stays as the user
left it; the body avt writes lives between two HTML comments (invisible on the Hub), and the text outside them is
the user's. A card without the markers that avt wrote before they existed (it carries the ``avt`` tag) is replaced
whole; any other card keeps its text, with avt's part appended.

Also the dataset licence (``--license``): an SPDX id as the Hub spells it, or ``other`` with a name and a link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avt_core.errors import UsageError

BEGIN = "<!-- avt:begin: written by avt, replaced on the next update; edit outside these markers -->"
END = "<!-- avt:end -->"
EMPTY_CARD = "---\n{}\n---\n"  # no metadata yet (an empty YAML block between the dashes is not parsed as one)
AVT_TAG = "avt"  # every card avt writes carries it; an unmarked card with it is one avt wrote earlier
# Unmarked cards that are generated, not the user's, and replaced whole: tagged by avt (or by the model packages'
# own cards), or transformers' generic template.
GENERATED_TAGS = (AVT_TAG, "lg-cav-mae", "slava")
GENERIC_TEMPLATE_MARK = "This model card has been automatically generated"
_LICENSE_KEYS = ("license", "license_name", "license_link")
if TYPE_CHECKING:
    from huggingface_hub import RepoCard

_MARKED = re.compile(r"<!-- avt:begin[^\n]*-->.*?<!-- avt:end -->\n?", re.DOTALL)


def _spliced(text: str, body: str, replace_all: bool) -> str:
    """``text`` with avt's block replaced by ``body`` (appended when there is none, or all of it replaced)."""
    block = f"{BEGIN}\n{body.strip()}\n{END}\n"
    if _MARKED.search(text):
        return _MARKED.sub(lambda _: block, text, count=1)
    if replace_all or not text.strip():
        return "\n" + block
    return text.rstrip() + "\n\n" + block


def update_card(
    existing: str | None,
    body: str,
    owned: Mapping[str, Any],
    defaults: Mapping[str, Any] = {},  # noqa: B006 - read only
    united: Iterable[str] = ("tags",),
    card_class: type[RepoCard] | None = None,
) -> RepoCard:
    """The card ``existing`` (its text, None for none) with avt's metadata and body brought up to date.

    ``owned`` keys are set (a None value removes the key), ``defaults`` only where the card has no value (a licence
    the user chose stays), and the lists of ``united`` keys get avt's entries added to the user's.
    """
    if card_class is None:
        from huggingface_hub import RepoCard as card_class
    card = card_class(existing) if existing and existing.strip() else card_class(EMPTY_CARD)
    tags = card.data.get("tags") or []
    generated = any(t in tags for t in GENERATED_TAGS) or GENERIC_TEMPLATE_MARK in card.text
    data = card.data
    for key, value in defaults.items():
        if data.get(key) in (None, "", []):
            data[key] = value
    for key, value in owned.items():
        if key in united and isinstance(value, list):
            value = value + [v for v in (data.get(key) or []) if v not in value]
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    card.text = _spliced(card.text, body, replace_all=generated)
    return card


def carry_over(existing: str | None, generated: str, card_class: type[RepoCard] | None = None) -> RepoCard:
    """``existing`` updated with a card rendered afresh: every metadata key ``generated`` sets (its licence only
    where ``existing`` has none) and its body, as avt's block (only that block when ``generated`` has markers)."""
    if card_class is None:
        from huggingface_hub import RepoCard as card_class
    new = card_class(generated)
    values = {k: v for k, v in vars(new.data).items() if v is not None and not k.startswith("_")}
    values.pop("ignore_metadata_errors", None)
    defaults = {k: values.pop(k) for k in _LICENSE_KEYS if k in values}
    marked = _MARKED.search(new.text)
    body = marked.group(0).removeprefix(BEGIN).strip().removesuffix(END) if marked else new.text
    return update_card(existing, body, values, defaults, card_class=card_class)


def read_card_text(path: str | Path) -> str | None:
    """The text of the card at ``path`` (a local file or a store's path object), None when there is none."""
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None  # type: ignore[union-attr]
    except AttributeError:
        path = Path(path)
        return path.read_text(encoding="utf-8") if path.is_file() else None


# ----------------------------------------------------------------------------------------------
# Licence

_SPDX_LIKE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@dataclass(frozen=True)
class CardLicense:
    """A card's licence as the Hub reads it: an id (``cc-by-4.0``, ``apache-2.0``, ...) or ``other`` + name + link."""

    license: str
    name: str | None = None
    link: str | None = None

    @classmethod
    def from_options(cls, license: str | None, name: str | None, link: str | None) -> CardLicense | None:
        """The licence of ``--license/--license-name/--license-link``; None when none was given.
        Raises :class:`UsageError` for what the Hub would refuse."""
        if license is None:
            if name or link:
                raise UsageError("--license-name and --license-link describe `--license other`; add it")
            return None
        license = license.strip().lower()
        if not _SPDX_LIKE.match(license):
            raise UsageError(
                f"--license {license!r} is not a licence id as the Hub writes them (lowercase SPDX-style, e.g. "
                "cc-by-4.0, apache-2.0, mit), or `other` with --license-name and --license-link"
            )
        if license != "other":
            if name or link:
                raise UsageError(
                    f"--license-name/--license-link are only for `--license other`, not {license}"
                )
            return cls(license)
        if not name or not link:
            raise UsageError(
                "--license other needs --license-name (e.g. my-terms-1.0) and --license-link (a URL)"
            )
        if not _SLUG.match(name):
            raise UsageError(
                f"--license-name {name!r}: lowercase letters, digits, '.' and '-' only (e.g. my-terms-1.0)"
            )
        return cls(license, name, link)

    def metadata(self) -> dict[str, Any]:
        """The card keys: ``license``, and ``license_name`` / ``license_link`` (None removes them) for ``other``."""
        return {"license": self.license, "license_name": self.name, "license_link": self.link}


__all__ = [
    "AVT_TAG",
    "BEGIN",
    "EMPTY_CARD",
    "END",
    "CardLicense",
    "carry_over",
    "read_card_text",
    "update_card",
]
