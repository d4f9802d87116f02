"""No import cycle between the product's modules or packages.

The graph is read from the source (every ``import`` statement, including the ones inside functions, which hide
cycles from the interpreter, and the ``TYPE_CHECKING`` ones), not from what happens to be imported at run time.
``from pkg import name`` counts as importing the module ``pkg.name`` when that is a module, else ``pkg`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Every top-level package of the product: a new one is found by `_product_packages` and must be listed here.
PRODUCT_PACKAGES = {
    "avt",
    "avt_triplets",
    "avt_data",
    "builders",
    "eval",
    "modeling_lgcavmae",
    "modeling_slava",
    "avt_recipes",
    "avt_training",
    "avt_core",
}
# Modules that name other modules as strings to import them lazily; their strings count as imports.
COMMAND_TABLES = {"avt.cli"}
# Cycles that are known and being removed elsewhere; any other cycle fails the test.
KNOWN_MODULE_CYCLES: list[set[str]] = []


def _product_packages() -> set[str]:
    found = {p.parent.name for p in REPO.glob("*/__init__.py")}
    return found - {"tests", "bench", "scripts", "docs"}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path, packages: set[str]) -> dict[str, Path]:
    return {_module_name(p, root): p for package in packages for p in (root / package).rglob("*.py")}


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules ``module`` imports anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    resolved = set()
    for target in targets:
        while target and target not in modules:  # `import a.b.c` of a name inside a module: its module
            target = target.rpartition(".")[0]
        if target and target != module:
            resolved.add(target)
    return resolved


def _command_table(path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules a command table names as strings (``avt.cli``'s ``SUBCOMMANDS``): imported when a command runs,
    so they are edges of the graph like any ``import``."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in modules:
            named.add(node.value)
    return named


def _graph(root: Path = REPO, packages: set[str] = PRODUCT_PACKAGES) -> dict[str, set[str]]:
    modules = _modules(root, packages)
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    for name in graph.keys() & COMMAND_TABLES:
        graph[name] |= _command_table(modules[name], modules)
    return graph


def _package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        top = module.split(".")[0]
        packages.setdefault(top, set()).update(t.split(".")[0] for t in targets if t.split(".")[0] != top)
    return packages


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_top_level_package_is_checked():
    assert _product_packages() == PRODUCT_PACKAGES


def test_no_module_cycles_but_the_known_ones():
    unknown = [c for c in _cycles(_graph()) if not any(c <= known for known in KNOWN_MODULE_CYCLES)]
    assert not unknown, f"import cycles between modules: {[sorted(c) for c in unknown]}"


def test_no_package_cycles():
    cycles = _cycles(_package_graph(_graph()))
    assert not cycles, f"import cycles between packages: {[sorted(c) for c in cycles]}"


def test_the_checker_finds_cycles_hidden_in_functions_and_relative_imports(tmp_path):
    """The checker itself can fail: a function-local import back, and a relative one, are cycles."""
    for name, source in {
        "alpha/__init__.py": "",
        "alpha/loop.py": "from .evaluation import score\n",
        "alpha/evaluation.py": "def score():\n    from alpha.loop import run\n",
        "beta/__init__.py": "",
        "beta/reader.py": "import alpha.loop\n",
        "alpha/data.py": "from beta import reader\n",
    }.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(source)
    graph = _graph(tmp_path, {"alpha", "beta"})
    assert graph["alpha.data"] == {"beta.reader"} and graph["beta.reader"] == {"alpha.loop"}
    assert _cycles(graph) == [{"alpha.loop", "alpha.evaluation"}]
    assert _cycles(_package_graph(graph)) == [{"alpha", "beta"}]


def test_the_command_table_is_part_of_the_graph():
    """Every subcommand module is reached from the CLI in the graph, so a command importing the CLI back is a cycle."""
    from avt.cli import SUBCOMMANDS

    graph = _graph()
    assert {module for module, _ in SUBCOMMANDS.values()} <= graph["avt.cli"]
    assert "avt.cli" not in set().union(*(graph[module] for module, _ in SUBCOMMANDS.values()))
