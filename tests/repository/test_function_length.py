"""Functions fit on a screen: none over 80 lines in the packages listed here (declarative tables are dataclasses,
not functions, so they do not count).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKED = (
    "avt_data",
    "avt_triplets",
    "bench",
    "builders",
    "eval",
    "modeling_lgcavmae",
    "modeling_slava",
    "avt_recipes",
    "scripts",
    "avt_training",
    "avt_core",
)
MAX_LINES = 80


def long_functions(root: Path, limit: int = MAX_LINES) -> list[str]:
    """``path:line name (N lines)`` of each function over ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


@pytest.mark.parametrize("package", CHECKED)
def test_no_function_over_80_lines(package):
    assert not long_functions(REPO / package)


def test_the_check_sees_a_long_method(tmp_path):
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(
        f"class A:\n    def short(self):\n        pass\n\n    def long(self):\n{body}"
    )
    assert long_functions(tmp_path) == [f"long.py:5 long ({MAX_LINES + 1} lines)"]
