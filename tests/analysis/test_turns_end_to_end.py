"""Protocols of more than two turns, run and analysed through the CLI: summary.json's per-turn
numbers are the runs' own, and the ideal agent under sequential advice is the Bayes
posterior at every turn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.cli import main

FLIP_FLOP = """
[experiment]
name = "turns-flip-flop"
paradigm = "flip-flop"
seed = 1

[paradigm]
domain = "world-facts"
items = 8
challenges = ["are-you-sure", "i-disagree"]
rounds = 3

[[models]]
id = "sim"
spec = "sim:bayes"
params = { choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }
"""

SEQUENTIAL_ADVICE = """
[experiment]
name = "turns-sequential-advice"
paradigm = "sequential-advice"
seed = 1

[paradigm]
domain = "latitude"
items = 10
displays = ["in-context", "hidden"]
sequences = [["same@0.7", "opposite@0.9"], ["opposite@0.9", "opposite@0.6", "same@0.8"]]

[[models]]
id = "ideal"
spec = "sim:bayes"
params = { choice_support = 0.0, w_same = 1.0, w_opposite = 1.0, noise = 0.0 }
"""


def _run_and_analyse(tmp_path: Path, name: str, config: str) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / f"{name}.toml"
    path.write_text(config, encoding="utf-8")
    run_dir = tmp_path / name
    assert main(["run", str(path), "--out", str(run_dir)]) == 0
    assert main(["analyse", str(run_dir), "--fitted-model", "tobit"]) == 0
    summary: dict[str, Any] = json.loads(
        (run_dir / "analysis" / "summary.json").read_text(encoding="utf-8")
    )
    return run_dir, summary


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return _run_and_analyse(tmp_path_factory.mktemp("turns"), "sequential", SEQUENTIAL_ADVICE)


@pytest.fixture(scope="module")
def flip_flop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    return _run_and_analyse(tmp_path_factory.mktemp("turns"), "flip-flop", FLIP_FLOP)


def test_the_ideal_agent_is_the_bayes_posterior_at_every_turn(
    sequential: tuple[Path, dict[str, Any]],
) -> None:
    run_dir, summary = sequential
    turns = summary["models"]["ideal"]["turns"]
    lengths = {
        "in-context/same@0.70+opposite@0.90": 3,
        "hidden/same@0.70+opposite@0.90": 3,
        "in-context/opposite@0.90+opposite@0.60+same@0.80": 4,
        "hidden/opposite@0.90+opposite@0.60+same@0.80": 4,
    }
    assert {condition: len(cells) for condition, cells in turns.items()} == lengths
    for condition, cells in turns.items():
        assert list(cells) == [str(turn) for turn in range(1, lengths[condition] + 1)]
        for turn, cell in cells.items():
            assert cell["n"] == 10, (condition, turn)
            assert cell["bayes_posterior"] is not None
            assert abs(cell["confidence_initial"] - cell["bayes_posterior"]) < 1e-9, (
                condition,
                turn,
            )
    # The numbers are the run's: turn k's mean is the mean of trials.parquet's turn-k rows.
    table = pd.read_parquet(run_dir / "trials.parquet")
    condition = "hidden/opposite@0.90+opposite@0.60+same@0.80"
    for turn in (2, 3, 4):
        rows = table.loc[(table["condition"] == condition) & (table["turn"] == turn)]
        cell = turns[condition][str(turn)]
        assert cell["confidence_initial"] == pytest.approx(rows["final_prob_initial"].mean())
        assert cell["com_rate"] == pytest.approx(rows["changed_mind"].mean())
    start = table.drop_duplicates("initial_trial_id")["initial_confidence"].mean()
    assert turns[condition]["1"]["confidence_initial"] == pytest.approx(start)
    # One number per condition is read after the whole sequence, at the last turn.
    entry = summary["models"]["ideal"]
    assert entry["by_condition"][condition]["turn"] == 4
    assert entry["sequences"][condition]["advisors"] == 3
    assert entry["sequences"][condition]["bayes_posterior"] == pytest.approx(
        turns[condition]["4"]["bayes_posterior"]
    )
    report = (run_dir / "analysis" / "report.html").read_text(encoding="utf-8")
    assert "Turn by turn" in report
    assert (run_dir / "analysis" / "turns.png").is_file()
    assert (run_dir / "analysis" / "tables" / "turns.csv").is_file()


def test_flip_flop_trajectories_and_flips(flip_flop: tuple[Path, dict[str, Any]]) -> None:
    run_dir, summary = flip_flop
    turns = summary["models"]["sim"]["turns"]
    assert set(turns) == {"are-you-sure", "i-disagree"}
    table = pd.read_parquet(run_dir / "trials.parquet")
    for condition, cells in turns.items():
        assert list(cells) == ["1", "2", "3", "4"]
        assert cells["1"]["com_rate"] == 0 and cells["1"]["flip_rate"] is None
        for turn in ("2", "3", "4"):
            rows = table.loc[(table["condition"] == condition) & (table["turn"] == int(turn))]
            cell = cells[turn]
            # A bare challenge carries no advice: no Bayes baseline is defined.
            assert cell["bayes_posterior"] is None
            assert cell["flip_rate"] == pytest.approx(rows["flipped"].mean())
            assert cell["com_rate"] == pytest.approx(rows["changed_mind"].mean())
            assert cell["final_confidence"] == pytest.approx(rows["final_confidence"].mean())
        assert cells["2"]["flip_rate"] == pytest.approx(cells["2"]["com_rate"])
        assert summary["models"]["sim"]["by_condition"][condition]["turn"] == 4
    report = (run_dir / "analysis" / "report.html").read_text(encoding="utf-8")
    assert "Turn by turn" in report and "No trial of this run has an advice factor" in report
