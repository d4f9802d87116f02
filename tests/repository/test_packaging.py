"""Every importable top-level package of the repository ships in the wheel.

The tests run with the checkout on ``sys.path``, so a package missing from ``[tool.setuptools.packages.find]`` would
pass every test and still break ``avt`` for a user who installed it (``ModuleNotFoundError`` at the first import).
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_SHIPPED = {"tests", "bench", "scripts", "docs"}  # run from a checkout only


def test_every_top_level_package_is_included_in_the_distribution():
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]
    packages = sorted(
        path.parent.name
        for path in REPO.glob("*/__init__.py")
        if path.parent.name not in NOT_SHIPPED and not path.parent.name.startswith(".")
    )
    assert "avt_data" in packages  # the check sees the packages the product imports
    missing = [name for name in packages if not any(fnmatch.fnmatch(name, pattern) for pattern in include)]
    assert not missing, f"add {missing} to [tool.setuptools.packages.find] include in pyproject.toml"
