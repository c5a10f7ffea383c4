"""The analysis is built in layers, and a lower layer never imports a higher one.

Lowest first (each subpackage's docstring says the same):

    analysis.errors      the one exception for bad input, importable from everywhere
    analysis.engines     numerics: log-odds clipping, clustered errors, regressions, Bayes
    analysis.data        reading and preparing a run (schema, load, stage 1, temperature, framing)
    analysis.beta        the Bayesian beta regression and the fitted-model choice
    analysis.measures    one module per measure, the registry, and Results
    analysis.render      summary.json, summary.md, tables, figures, report.html, writing them
    analysis, .analyse, .compare   the public API and the entry points (may import anything)

The imports are read from the source (ast), not by importing it: every `import` and
`from ... import` counts, at module level or inside a function (a lazy import is still a
dependency), and so does `importlib.import_module` of a constant name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mindshift import analysis

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("engines",),
    ("data",),
    ("beta",),
    ("measures",),
    ("render",),
    ("", "analyse", "compare"),
)
"""Each layer's first dotted part under the package ("" is the package's own __init__)."""


@dataclass(frozen=True)
class Violation:
    """An import from a module into a layer above its own."""

    module: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported} (a higher layer)"


def module_name(path: Path, root: Path, package: str) -> str:
    """The dotted name of the module at `path` in the package rooted at `root`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def layer_of(module: str, package: str) -> int | None:
    """The rank of the layer `module` belongs to (None: outside the package or unplaced)."""
    if module != package and not module.startswith(package + "."):
        return None
    head = module[len(package) + 1 :].split(".")[0] if module != package else ""
    for rank, names in enumerate(LAYERS):
        if head in names:
            return rank
    return None


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from` import names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(path: Path, module: str, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module, line) of every import in the file at `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node, module, path.name == "__init__.py")
            for alias in node.names:
                # `from analysis.beta import sampler` imports the submodule itself.
                submodule = f"{source}.{alias.name}"
                yield (submodule if submodule in known else source), node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
        ):
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                yield argument.value, node.lineno
            elif isinstance(argument, ast.Name) and argument.id in constants:
                yield constants[argument.id], node.lineno


def modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted name -> file of every module of the package rooted at `root`."""
    return {module_name(path, root, package): path for path in sorted(root.rglob("*.py"))}


def violations(root: Path, package: str) -> list[Violation]:
    """Every import from a module into a higher layer of the package rooted at `root`."""
    found = modules(root, package)
    known = set(found)
    out: list[Violation] = []
    for module, path in found.items():
        own = layer_of(module, package)
        assert own is not None, f"{module} is in no layer: place it in a subpackage of LAYERS"
        for imported, line in imports(path, module, known):
            rank = layer_of(imported, package)
            if rank is not None and rank > own:
                out.append(Violation(module, imported, line))
    return out


ROOT = Path(analysis.__file__).resolve().parent
PACKAGE = analysis.__name__


def test_no_layer_imports_a_higher_one() -> None:
    found = violations(ROOT, PACKAGE)
    assert not found, "\n".join(map(str, found))


def test_every_module_has_a_layer_and_every_layer_has_modules() -> None:
    ranks = {layer_of(module, PACKAGE) for module in modules(ROOT, PACKAGE)}
    assert None not in ranks
    assert ranks == set(range(len(LAYERS)))


def test_each_subpackage_says_what_it_holds_and_may_import() -> None:
    for names in LAYERS[1:-1]:
        for name in names:
            init = ROOT / name / "__init__.py"
            assert init.is_file(), f"the {name} layer is not a subpackage"
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            assert doc, f"{init} has no docstring"
            assert "May import:" in doc, f"{init}'s docstring does not say what it may import"
            # The docstring names every higher layer as one it never imports.
            rank = layer_of(f"{PACKAGE}.{name}", PACKAGE)
            assert rank is not None
            for higher in LAYERS[rank + 1 : -1]:
                # (Docstrings inside the package name its modules without `mindshift.`.)
                short = f"analysis.{higher[0]}"
                assert short in doc.split("Never", 1)[-1], (name, higher)


def _fake(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "fake" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "fake"


def test_the_check_finds_upward_imports_of_every_kind(tmp_path: Path) -> None:
    root = _fake(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "engines/__init__.py": "",
            "engines/numbers.py": (
                "import importlib\n"
                "from fake.data import schema\n"  # a submodule, named from its package
                "from ..render.report import page\n"  # relative
                "NAME = 'fake.measures.oucs'\n"
                "def later():\n"
                "    import fake.beta.sampler\n"  # lazy
                "    return importlib.import_module(NAME)\n"  # dynamic
            ),
            "data/__init__.py": "",
            "data/schema.py": "from fake.engines.numbers import later\nfrom fake import errors\n",
            "beta/__init__.py": "",
            "beta/sampler.py": "",
            "measures/__init__.py": "",
            "measures/oucs.py": "",
            "render/__init__.py": "",
            "render/report.py": "page = 1\n",
        },
    )
    found = {(v.module, v.imported) for v in violations(root, "fake")}
    assert found == {
        ("fake.engines.numbers", "fake.data.schema"),
        ("fake.engines.numbers", "fake.render.report"),
        ("fake.engines.numbers", "fake.beta.sampler"),
        ("fake.engines.numbers", "fake.measures.oucs"),
    }
