"""The import rules of docs/architecture.md, checked on the source (issue 11).

Every import statement of every module of the four parts (the engine, the protocols, the
analysis and the composition root; all four import as `mindshift.*`) is read with `ast` (imports
inside functions and under TYPE_CHECKING included: a lazy import still ties two modules
together), and the test fails on:
- an import cycle anywhere among them;
- the engine (`harness`) importing a paradigm, the analysis or the composition root;
- a paradigm importing the analysis or the composition root;
- the analysis importing the composition root;
- a backend (`harness.models.*`) importing the engine's loop: its config, planner, runner,
  retries, batch waves, run store or experiment (backends implement the model contract
  only, as inspect_ai's providers implement its model API without touching its eval loop).
The analysis's own layers are checked by tests/analysis/test_layers.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ("harness", "paradigms", "analysis")
"""The top-level folders that install as mindshift.harness, ... (linked from mindshift/)."""
PACKAGES = (*SUBPACKAGES, "mindshift")
"""The four parts: the three subpackages and the composition root (mindshift's own modules)."""

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "harness": ("paradigms", "analysis", "mindshift"),
    "paradigms": ("analysis", "mindshift"),
    "analysis": ("mindshift",),
}
"""Package -> packages it may never import."""

ENGINE_LOOP = (
    "mindshift.harness.config",
    "mindshift.harness.planner",
    "mindshift.harness.runner",
    "mindshift.harness.retry",
    "mindshift.harness.batch_runner",
    "mindshift.harness.run_store",
    "mindshift.harness.experiment",
    "mindshift.harness.estimate",
)
"""What a backend module may not import. The registry, which turns a config's model entry
into a backend, and the provider contract it uses are the engine's side of that seam and may."""
BACKEND_SEAM = ("mindshift.harness.models.registry", "mindshift.harness.models.provider")


def _module_name(path: Path) -> str:
    """The module's import name: harness/record.py is mindshift.harness.record."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] in SUBPACKAGES:
        parts.insert(0, "mindshift")
    return ".".join(parts)


def _part(module: str) -> str:
    """Which of the four parts a module belongs to: mindshift.harness.record is "harness";
    mindshift.cli (a module beside the three subpackages) is "mindshift"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else parts[0]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            inside = path.relative_to(ROOT).parts
            if "testing" in inside:
                continue  # test doubles (the fault server) are not part of the product
            if package == "mindshift" and inside[1] in SUBPACKAGES:
                continue  # the links to the three folders, walked as themselves
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """The mindshift modules `name` imports (a `from package import module` names the module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # The longest known module the target names (`a.b.c` may be attribute c of a.b).
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def test_the_walk_sees_the_packages() -> None:
    assert {_part(name) for name in MODULES} == set(PACKAGES)
    assert len(MODULES) > 80
    assert "mindshift.harness.record" in GRAPH["mindshift.harness.run_store"]


def _without_package_inits(graph: dict[str, list[str]]) -> dict[str, list[str]]:
    """A package's `__init__` re-exporting its submodules is no cycle with them: drop the
    edges from an `__init__` into its own package."""
    out = {}
    for name, targets in graph.items():
        is_init = MODULES[name].name == "__init__.py"
        out[name] = [t for t in targets if not (is_init and t.startswith(name + "."))]
    return out


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles(_without_package_inits(GRAPH))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_forbidden_direction(package: str) -> None:
    bad = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if _part(name) == package
        for target in targets
        if _part(target) in FORBIDDEN[package]
    ]
    assert not bad, "\n".join(bad)


def test_backends_import_only_the_shared_contracts() -> None:
    bad = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.startswith("mindshift.harness.models.") and name not in BACKEND_SEAM
        for target in targets
        if target in ENGINE_LOOP
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_claim() -> None:
    """The cycle finder and the direction check fail on a planted violation."""
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    planted = {**GRAPH, "mindshift.harness.planted": ["mindshift.analysis.measures"]}
    assert any(
        _part(t) in FORBIDDEN["harness"]
        for n, ts in planted.items()
        if _part(n) == "harness"
        for t in ts
    )
    assert not any(
        _part(t) in FORBIDDEN["harness"]
        for n, ts in GRAPH.items()
        if _part(n) == "harness"
        for t in ts
    )
