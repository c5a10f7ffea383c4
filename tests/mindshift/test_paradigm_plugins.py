"""Paradigms from other packages, registered through the entry-point group
`mindshift.paradigms` (`paradigms.registry`): a plugin runs like a built-in, a broken one is
one line naming it, and only the run that asks for it fails.

Each plugin here is a real installed distribution: a package and its `.dist-info` (with
`entry_points.txt`) in a temporary folder on sys.path, found by importlib.metadata as pip's
would be.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path

import pandas as pd
import pytest

from mindshift.cli import main
from mindshift.paradigms import PARADIGMS
from mindshift.paradigms.registry import ENTRY_POINT_GROUP, installed_paradigms, paradigm_class

ROOT = Path(__file__).resolve().parents[2]

PUSHBACK = '''
from mindshift.paradigms.are_you_sure import AreYouSure


class Pushback(AreYouSure):
    """A protocol of another package: the challenge of are-you-sure under its own name."""

    name = "pushback"
'''

Install = Callable[..., None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """`install(package, source, {entry name: "module:attr"})`: an installed distribution
    whose module `package` holds `source` and declares those paradigm entry points."""
    installed: list[str] = []

    def _install(package: str, source: str, entries: dict[str, str]) -> None:
        # A folder each: import and metadata finders cache a folder's listing by its mtime.
        site = tmp_path / f"site-{package}"
        site.mkdir()
        (site / f"{package}.py").write_text(source, encoding="utf-8")
        info = site / f"{package}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n", encoding="utf-8"
        )
        lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}", "utf-8")
        monkeypatch.syspath_prepend(str(site))
        installed.append(package)

    yield _install
    for package in installed:
        sys.modules.pop(package, None)


def _config(tmp_path: Path, paradigm: str) -> Path:
    config = tmp_path / f"{paradigm}.toml"
    config.write_text(
        f'[experiment]\nname = "plugin"\nparadigm = "{paradigm}"\nseed = 0\n\n'
        '[paradigm]\nitems = 3\nchallenges = ["are-you-sure", "user-suggests"]\n\n'
        '[[models]]\nid = "sim"\nspec = "sim:bayes"\n',
        encoding="utf-8",
    )
    return config


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_a_plugin_paradigm_runs_through_the_cli(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("pushback_protocols", PUSHBACK, {"pushback": "pushback_protocols:Pushback"})
    run = tmp_path / "run"
    assert main(["run", str(_config(tmp_path, "pushback")), "--out", str(run)]) == 0
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["experiment"]["paradigm"] == "pushback"
    calls = (run / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(calls) == 3 * (1 + 2)  # items x (turn 1 + one later turn per challenge)
    trials = pd.read_parquet(run / "trials.parquet")
    assert len(trials) == 3 * 2
    # The plugin's columns (its base protocol's) are in the table, as for a built-in.
    columns = PARADIGMS["are-you-sure"].Columns
    assert columns is not None
    assert set(columns.model_fields) <= set(trials.columns)
    capsys.readouterr()
    # Resumed under the same registry: nothing is called again.
    assert main(["run", str(_config(tmp_path, "pushback")), "--out", str(run)]) == 0
    assert "0 calls made, 9 already stored" in capsys.readouterr().err


def test_a_run_of_a_plugin_is_rebuilt_with_its_columns_and_refused_once_it_is_gone(
    install: Install,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`analyse` rebuilds a stale trials table with the run's own paradigm (its manifest
    names it); a run of a paradigm no longer installed is one line, not a table without
    that paradigm's columns."""
    install("pushback_protocols", PUSHBACK, {"pushback": "pushback_protocols:Pushback"})
    run = tmp_path / "run"
    assert main(["run", str(_config(tmp_path, "pushback")), "--out", str(run)]) == 0
    built = pd.read_parquet(run / "trials.parquet")
    (run / "trials.parquet").unlink()
    assert main(["analyse", str(run)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(run / "trials.parquet"), built)
    capsys.readouterr()
    (run / "trials.parquet").unlink()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site-pushback" not in p])
    assert main(["analyse", str(run)]) == 2
    line = _one_line_error(capsys)
    assert "is a run of the paradigm 'pushback', which is not installed here" in line


def test_plugins_are_listed_by_name_and_imported_only_when_asked_for(install: Install) -> None:
    install("lazy_protocols", "raise RuntimeError('imported')\n", {"lazy": "lazy_protocols:X"})
    registry = installed_paradigms()
    assert "lazy" in registry
    assert set(PARADIGMS) <= set(registry)
    assert "lazy_protocols" not in sys.modules  # listing and `in` import nothing
    assert registry["change-of-mind"] is PARADIGMS["change-of-mind"]


BROKEN = {
    "import error": (
        "raise ImportError('needs the package frobnicate')\n",
        "broken_protocols:Pushback",
        "cannot be loaded: ImportError: needs the package frobnicate",
    ),
    "missing attribute": (
        PUSHBACK,
        "broken_protocols:Pushbak",
        "cannot be loaded: AttributeError",
    ),
    "not a class": (
        "def Pushback():\n    pass\n",
        "broken_protocols:Pushback",
        "is not a mindshift.harness.paradigm.Paradigm subclass (it is a function)",
    ),
    "another class": (
        "class Pushback:\n    name = 'pushback'\n",
        "broken_protocols:Pushback",
        "is not a mindshift.harness.paradigm.Paradigm subclass "
        "(it is the class broken_protocols.Pushback)",
    ),
    "abstract": (
        "from mindshift.harness.paradigm import Paradigm\n\n\nclass Pushback(Paradigm):\n"
        "    name = 'pushback'\n",
        "broken_protocols:Pushback",
        "is abstract (it does not implement conditions, initial_prompt, items, turn_prompt)",
    ),
    "name mismatch": (
        PUSHBACK.replace('name = "pushback"', 'name = "push-back"'),
        "broken_protocols:Pushback",
        "names itself 'push-back': the entry point's name must be the paradigm's name",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_plugin_is_one_line_and_fails_only_its_own_runs(
    case: str, install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target, reason = BROKEN[case]
    install("broken_protocols", source, {"pushback": target})
    install(
        "good_protocols",
        PUSHBACK.replace('"pushback"', '"good"'),
        {"good": "good_protocols:Pushback"},
    )
    code = main(["run", str(_config(tmp_path, "pushback")), "--out", str(tmp_path / "bad")])
    assert code == 2
    line = _one_line_error(capsys)
    assert f"paradigm plugin 'pushback' ({target} from package 'broken_protocols')" in line
    assert reason in line
    assert not (tmp_path / "bad").exists()
    # The other plugin, and the built-ins, are untouched by it.
    assert main(["run", str(_config(tmp_path, "good")), "--out", str(tmp_path / "good")]) == 0
    assert paradigm_class("are-you-sure") is PARADIGMS["are-you-sure"]


def test_a_plugin_cannot_take_a_built_in_name(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = PUSHBACK.replace('"pushback"', '"are-you-sure"')
    install("shadow_protocols", source, {"are-you-sure": "shadow_protocols:Pushback"})
    code = main(["run", str(_config(tmp_path, "are-you-sure")), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "takes the name of the built-in paradigm 'are-you-sure'" in _one_line_error(capsys)


def test_two_plugins_with_one_name_are_refused(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("first_protocols", PUSHBACK, {"pushback": "first_protocols:Pushback"})
    install("second_protocols", PUSHBACK, {"pushback": "second_protocols:Pushback"})
    code = main(["run", str(_config(tmp_path, "pushback")), "--out", str(tmp_path / "r")])
    assert code == 2
    line = _one_line_error(capsys)
    assert "paradigm 'pushback' is registered by two plugins" in line
    assert "first_protocols" in line and "second_protocols" in line


def test_an_unknown_paradigm_names_the_plugins_too(
    install: Install, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("pushback_protocols", PUSHBACK, {"pushback": "pushback_protocols:Pushback"})
    code = main(["run", str(_config(tmp_path, "pushbak")), "--out", str(tmp_path / "r")])
    assert code == 2
    line = _one_line_error(capsys)
    assert "unknown paradigm 'pushbak'" in line
    assert "pushback" in line.split("known:")[1]


def test_pyproject_registers_exactly_the_built_in_paradigms() -> None:
    """mindshift's own entry points (what other tools discover) and `paradigms.PARADIGMS`
    (what a checkout without installed metadata runs) name the same classes."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert set(declared) == set(PARADIGMS)
    for name, target in declared.items():
        module, _, attribute = target.partition(":")
        assert getattr(import_module(module), attribute) is PARADIGMS[name], name
