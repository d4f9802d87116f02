"""``python -m avt_recipes NAME|all [options]``: run one recipe, or every table over one work directory."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from avt_recipes import RECIPES
from avt_recipes.cli import run_recipes


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(
            "usage: python -m avt_recipes {all," + ",".join(RECIPES) + "} [options]   (options: NAME --help)"
        )
        for name, module in RECIPES.items():
            doc = (importlib.import_module(module).__doc__ or "").splitlines()[0]
            print(f"  {name:8} {doc}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name != "all" and name not in RECIPES:
        print(f"error: unknown recipe {name!r}; choose all or one of {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    modules = [importlib.import_module(RECIPES[n]) for n in (RECIPES if name == "all" else [name])]
    description = "Every table of the LG-CAV-MAE paper, over one work directory." if name == "all" else ""
    return run_recipes(modules, rest, description=description, prog=f"python -m avt_recipes {name}")


if __name__ == "__main__":
    raise SystemExit(main())
