"""Every example config (each new protocol and domain, demo-sized) runs and analyses: on the
simulated agent in the fast suite, and on the embedded SmolLM2 too in the slow one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mindshift.analysis import analyse_run
from mindshift.cli import main
from mindshift.harness.config import load_config
from mindshift.harness.experiment import execute, prepare
from mindshift.paradigms import PARADIGMS

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
DEMO_SIZED = sorted(path.stem for path in EXAMPLES.glob("*.toml") if path.stem != "paper-models")
"""Every example but the paper's model set (API models, 2,000 items)."""


def _check(summary: dict[str, Any], example: str, models: set[str]) -> None:
    config = load_config(EXAMPLES / f"{example}.toml")
    paradigm = prepare(config, PARADIGMS).paradigm
    conditions = {condition.name for condition in paradigm.conditions()}
    # One trials row per later turn: a condition of n turns has n - 1 per item.
    rows = len(paradigm.items()) * sum(paradigm.turns(c) - 1 for c in paradigm.conditions())
    assert set(summary["models"]) == models
    for model in models:
        entry = summary["models"][model]
        assert set(entry["by_condition"]) <= conditions
        assert entry["n_trials"] <= rows
        if model == "sim":  # the agent never fails a call
            assert entry["n_trials"] == rows
            assert set(entry["by_condition"]) == conditions
        if config.experiment.paradigm == "multi-advice" and entry["n_trials"]:
            assert entry["sequences"]


@pytest.mark.parametrize("example", DEMO_SIZED)
def test_example_runs_on_the_simulated_agent(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # file: paths in the examples are relative to the repository
    config = load_config(EXAMPLES / f"{example}.toml")
    sim_only = config.model_copy(update={"models": [m for m in config.models if m.id == "sim"]})
    execute(prepare(sim_only, PARADIGMS), tmp_path / example)
    summary = analyse_run(tmp_path / example)
    _check(summary, example, {"sim"})
    assert (tmp_path / example / "analysis" / "report.html").is_file()


@pytest.mark.slow
def test_every_example_runs_on_smollm2_and_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One test for all examples: the embedded model loads once per process, and the whole
    # set stays under 100 SmolLM2 calls.
    monkeypatch.chdir(REPO)
    for example in DEMO_SIZED:
        run_dir = tmp_path / example
        assert main(["run", str(EXAMPLES / f"{example}.toml"), "--out", str(run_dir)]) == 0
        summary = analyse_run(run_dir)
        _check(summary, example, {"sim", "smollm2"})
        assert summary["models"]["smollm2"]["n_trials"] > 0, example
