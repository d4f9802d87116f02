"""The output format has one owner: no product module but ``avt_triplets/layout.py`` spells the shard-name pattern
(``shard-00012``, ``shard-{index}``, ``_stats.json``), in code, f-strings or docstrings, so changing the format is
a change of that file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = (
    "avt",
    "avt_core",
    "avt_data",
    "avt_recipes",
    "avt_training",
    "avt_triplets",
    "bench",
    "builders",
    "eval",
    "modeling_lgcavmae",
    "modeling_slava",
    "scripts",
)
OWNER = Path("avt_triplets/layout.py")
# "shard-" starting a name (not "--shard-size" nor a thread's "avt-write-shard-") followed by its index (a digit,
# a format field, a glob) or by the end of the literal; and the stats file suffix.
COPY = re.compile(r"(?<![\w-])shard-(?=\d|\{|\(|\*|\\|$)|_stats\.json")


def literal_texts(tree: ast.AST):
    """Every string literal of a module with its line, f-string pieces included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def layout_copies(root: Path, packages=PRODUCT, owner: Path = OWNER) -> list[str]:
    """``path:line`` of each line outside ``owner`` whose literals spell the shard-name pattern."""
    found: list[str] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if path.relative_to(root) == owner:
                continue
            for line, text in literal_texts(ast.parse(path.read_text(), str(path))):
                where = f"{path.relative_to(root)}:{line}"
                if COPY.search(text) and where not in found:
                    found.append(where)
    return found


def test_only_the_layout_module_spells_shard_names():
    assert (REPO / OWNER).is_file()
    assert layout_copies(REPO) == []


def test_the_check_sees_copies_and_lets_other_names_be(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "copy.py").write_text(
        'import re\n\nPATTERN = re.compile(r"^shard-(\\d+)")\n\n\ndef stats(i):\n    return f"shard-{i:05d}_stats.json"\n'
    )
    (package / "fine.py").write_text(
        'FLAG = "--shard-size"\nTHREAD = "avt-write-shard-{}"\nPARTS = "part-*.parquet"\n'
    )
    (package / "owner.py").write_text('NAME = "shard-{index:05d}"\n')
    found = layout_copies(tmp_path, ("pkg",), owner=Path("pkg/owner.py"))
    assert found == ["pkg/copy.py:3", "pkg/copy.py:7"]
