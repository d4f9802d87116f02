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


def test_data_files_inside_the_packages_ship_with_them():
    """A JSON file read at run time from a package (the papers' published tables) must be in package-data, or a
    user install lacks it while every test, run from the checkout, still finds it."""
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"].get(
        "package-data", {}
    )
    packages = [
        init.parent for init in REPO.glob("*/__init__.py") if init.parent.name not in NOT_SHIPPED | {"tests"}
    ]
    data_files = [path.relative_to(REPO) for package in packages for path in package.rglob("*.json")]
    assert data_files  # the check sees the shipped tables
    unshipped = [
        str(path)
        for path in data_files
        if not any(
            fnmatch.fnmatch(str(path.relative_to(path.parts[0])), pattern)
            for pattern in package_data.get(path.parts[0], [])
        )
    ]
    assert not unshipped, f"add {unshipped} to [tool.setuptools.package-data] in pyproject.toml"
