"""Calibration items: held out, asked at stage 1 only, recorded as such, and resumable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mindshift.analysis import load_run, summarise
from mindshift.cli import main
from mindshift.paradigms.change_of_mind import ChangeOfMind, ChangeOfMindSettings
from tests.conftest import sim_config_text


def _calls(run_dir: Path) -> list[dict[str, object]]:
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_calibration_items_are_disjoint_and_leave_the_main_items_unchanged() -> None:
    plain = ChangeOfMind(ChangeOfMindSettings(items=40), seed=3)
    split = ChangeOfMind(ChangeOfMindSettings(items=40, calibration_items=60), seed=3)
    assert [i.item_id for i in split.items()] == [i.item_id for i in plain.items()]
    held_out = split.calibration_items()
    assert len(held_out) == 60 and len({i.item_id for i in held_out}) == 60
    assert not {i.item_id for i in held_out} & {i.item_id for i in split.items()}
    # Counterbalanced within the split, and deterministic.
    assert sum(i.correct == "A" for i in held_out) == 30
    again = ChangeOfMind(ChangeOfMindSettings(items=40, calibration_items=60), seed=3)
    assert [i.item_id for i in again.calibration_items()] == [i.item_id for i in held_out]
    assert plain.calibration_items() == []


def test_runner_asks_calibration_items_at_stage_one_only_and_resumes(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    config = write_config(
        sim_config_text(items=3, extra_paradigm="calibration_items = 5"), "c.toml"
    )
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    calls = _calls(run_dir)
    calibration = [c for c in calls if c["condition"] == "calibration"]
    assert len(calibration) == 5 and {c["stage"] for c in calibration} == {1}
    assert len(calls) == 3 * 37 + 5
    main_ids = {c["item"]["id"] for c in calls if c["condition"] != "calibration"}  # type: ignore[index]
    assert not main_ids & {c["item"]["id"] for c in calibration}  # type: ignore[index]
    # The trials table holds the main items' stage-2 trials only.
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert len(trials) == 3 * 36 and not set(trials["item_id"]) & {
        c["item"]["id"]  # type: ignore[index]
        for c in calibration
    }
    # Resume: nothing is asked twice.
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    assert len(_calls(run_dir)) == len(calls)


def test_a_split_too_large_for_the_gazetteer_is_a_config_error(
    tmp_path: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(
        sim_config_text(items=3, extra_paradigm="calibration_items = 30000\nitems = 5000"), "c.toml"
    )
    config.write_text(config.read_text().replace("items = 3\n", ""), encoding="utf-8")
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "cities are available" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_analysis_reads_the_split_and_calibrates_by_default(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    # sigma^2 = 2 mu: the agent's true confidences are calibrated, so the fitted temperature
    # is its readout distortion tau = 2. 5,000 held-out items put the estimate's standard
    # error near 3 %, so 10 % is about three standard errors.
    params = "{ tau = 2.0, mu = 1.0, sigma = 1.4142135623730951, noise = 0.2 }"
    config = write_config(
        sim_config_text(items=8, params=params, extra_paradigm="calibration_items = 5000"),
        "c.toml",
    )
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    run = load_run(run_dir)
    summary = summarise(run.trials, run.stage1)
    calibration = summary["models"]["sim"]["calibration"]
    assert calibration["source"] == "calibration split" and calibration["n"] == 5000
    assert calibration["confidence_scale"] == "calibrated"
    assert calibration["temperature"] == pytest.approx(2.0, rel=0.10)
    low, high = calibration["temperature_ci"]
    assert low < 2.0 < high
    # Initial accuracy counts the main items only.
    assert summary["models"]["sim"]["n_initial_calls"] == 8
