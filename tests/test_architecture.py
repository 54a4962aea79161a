"""The package map holds (docs/architecture.md): no import cycle between hpctune's modules, and no
import from a lower layer into a higher one. Every import counts, inside functions and under
``TYPE_CHECKING`` too, read from the source with :mod:`ast` (nothing is imported)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hpctune"

LAYERS = [
    ("entry", ["hpctune", "hpctune.api", "hpctune.cli"]),
    ("backends", ["hpctune.backends"]),
    ("controller", ["hpctune.controller"]),
    ("reporting", ["hpctune.reporting"]),
    ("slurm", ["hpctune.slurm"]),
    ("algorithms", ["hpctune.schedulers", "hpctune.searchers", "hpctune.policies"]),
    ("training side", ["hpctune.session"]),
    ("store", ["hpctune.store"]),
    ("model", ["hpctune.space", "hpctune.spec", "hpctune.spec_file", "hpctune.trial", "hpctune.trainable",
               "hpctune.registry", "hpctune.errors", "hpctune.enums", "hpctune.rng_state", "hpctune._version"]),
]
"""Top to bottom: a module may import its own layer's modules and those below, never above."""


def _modules() -> dict[str, tuple[Path, str]]:
    """Module name -> (its file, the package its relative imports start from)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            found[".".join(parts[:-1])] = (path, ".".join(parts[:-1]))
        else:
            found[".".join(parts)] = (path, ".".join(parts[:-1]))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the hpctune modules it imports (a name imported from a package that is a module of
    it counts as that module)."""
    modules = _modules()

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else ""

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, package) in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.startswith("hpctune"):
                    targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else known(source)
                               for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [known(alias.name) for alias in node.names if alias.name.startswith("hpctune")]
            graph[name].update(target for target in targets if target and target != name)
    return graph


def layer_of(module: str) -> int:
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer of the package map: add it to LAYERS and docs/architecture.md"
    return max(matches)[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_imports_point_down_the_layers():
    upward = [f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
              for module, targets in sorted(import_graph().items()) for target in sorted(targets)
              if layer_of(target) < layer_of(module)]
    assert upward == []


def test_the_checks_see_what_they_check():
    """The graph is real: known edges are in it, and an edge upward would be reported."""
    graph = import_graph()
    assert "hpctune.controller.core" in graph["hpctune.controller.housekeeping"]
    assert "hpctune.backends.mpi.polling" in graph["hpctune.backends.mpi.workers"]
    assert layer_of("hpctune.controller.core") < layer_of("hpctune.schedulers._asha") < layer_of("hpctune.trial")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
