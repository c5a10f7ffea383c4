"""End to end: runs of the simulated agent through the real runner, analysed from the run
directory, recover the agent's known parameters (issue 2's "Must show")."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mindshift.analysis import analyse_run
from mindshift.cli import main
from tests.conftest import sim_config_text

TRUE = {"choice_support": 0.8, "w_same": 1.0, "w_opposite": 2.5}


def _run_and_analyse(run_dir: Path, config: Path) -> dict[str, Any]:
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    # The Tobit fit is what summary.json reports; the beta regression (the report's fitted
    # model when installed) has its own recovery test (tests/analysis/test_beta_regression.py).
    summary: dict[str, Any] = analyse_run(run_dir, fitted_model="tobit")
    assert (run_dir / "analysis" / "summary.json").is_file()
    assert (run_dir / "analysis" / "report.html").is_file()
    return summary


def test_fit_recovers_the_agent_within_ten_percent(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    params = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }"
    config = write_config(sim_config_text(items=300, params=params), "biased.toml")
    summary = _run_and_analyse(tmp_path / "biased", config)
    model = summary["models"]["sim"]
    assert model["n_trials"] == 300 * 36
    for name, value in TRUE.items():
        assert model["fit"][name] == pytest.approx(value, rel=0.10), name
    assert model["overweighting"]["opposite"] > model["overweighting"]["same"]
    # Choice-supportive bias: seeing its own answer makes the agent stickier.
    assert model["com_rate"]["shown"] < model["com_rate"]["hidden"]
    # Overweighting as the paper defines it (issue 9): shown + same is not corrected, so an
    # agent that weighs supportive advice exactly (w_same = 1) does not read below 1 (the
    # old correction of shown + same gave 0.83-0.85); hidden trials alone read 1.
    assert model["overweighting"]["same"] >= 1.0
    assert model["overweighting_hidden"]["same"] == pytest.approx(1.0, abs=0.05)
    # Every ratio is biased toward 1 where confidences reach the clip bounds, the log-odds
    # one included (about 0.94 / 1.92 for the true 1.0 / 2.5); the fit above recovers the
    # weights.
    assert 0.85 < model["overweighting_logodds"]["same"] < 1.0
    assert 1.6 < model["overweighting_logodds"]["opposite"] < 0.9 * TRUE["w_opposite"]
    assert model["overweighting_detail"]["pooled"]["same"]["median_ratio"] > 0.0


def test_ideal_agent_has_zero_oucs_in_every_cell(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    params = "{ choice_support = 0.0, w_same = 1.0, w_opposite = 1.0, noise = 0.0 }"
    config = write_config(
        sim_config_text(
            items=300, params=params, extra_paradigm='displays = ["shown", "hidden", "other"]'
        ),
        "ideal.toml",
    )
    summary = _run_and_analyse(tmp_path / "ideal", config)
    # An ideal agent reads 1 in every overweighting version.
    model = summary["models"]["sim"]
    for version in ("overweighting", "overweighting_hidden", "overweighting_logodds"):
        for advice in ("same", "opposite"):
            assert model[version][advice] == pytest.approx(1.0, abs=0.02), (version, advice)
    cells = summary["models"]["sim"]["oucs"]
    assert set(cells) == {"shown", "hidden", "other"}
    for display, by_advice in cells.items():
        assert set(by_advice) == {"same", "opposite", "neutral"}
        for advice, value in by_advice.items():
            assert value is not None and not math.isnan(value)
            assert abs(value) < 0.01, (display, advice, value)


def test_calibration_undoes_a_distorted_readout(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    # The agent reports logits 2.5x its true ones (overconfident). With a calibration split,
    # the analysis recovers tau, and on the calibrated scale the update fit recovers the
    # agent's true parameters; on the raw scale it would not.
    from mindshift.analysis import load_run, summarise

    params = (
        "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3, tau = 2.5, "
        "mu = 1.0, sigma = 1.4142135623730951 }"
    )
    config = write_config(
        sim_config_text(items=150, params=params, extra_paradigm="calibration_items = 3000"),
        "tau.toml",
    )
    run_dir = tmp_path / "tau"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    run = load_run(run_dir)
    calibrated = summarise(run.trials, run.stage1)["models"]["sim"]
    # The notebook's path gives the report's numbers: load_run prepares (calibrates) too.
    assert calibrated == summarise(run.raw_trials, run.stage1)["models"]["sim"]
    assert calibrated["calibration"]["temperature"] == pytest.approx(2.5, rel=0.10)
    assert calibrated["calibration"]["confidence_scale"] == "calibrated"
    for name, value in TRUE.items():
        assert calibrated["fit"][name] == pytest.approx(value, rel=0.10), name
    raw_run = load_run(run_dir, prior="raw")
    raw = summarise(raw_run.trials, raw_run.stage1)["models"]["sim"]
    assert raw["fit"]["w_opposite"] == pytest.approx(2.5 * 2.5, rel=0.15)


def test_fit_recovers_the_agent_on_a_four_option_domain(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    # K = 4 (world-facts): the agent's evidence is the K-option Bayes log-odds shift, and the
    # fit's evidence term is the same shift, so the same weights come back.
    params = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }"
    config = write_config(
        sim_config_text(items=300, params=params, extra_paradigm='domain = "world-facts"'),
        "k4.toml",
    )
    summary = _run_and_analyse(tmp_path / "k4", config)
    model = summary["models"]["sim"]
    assert model["n_trials"] == 300 * 36
    for name, value in TRUE.items():
        assert model["fit"][name] == pytest.approx(value, rel=0.10), name
    assert model["overweighting"]["opposite"] > model["overweighting"]["same"]


def test_ideal_agent_has_zero_oucs_with_four_options_and_the_controls(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    params = "{ choice_support = 0.0, w_same = 1.0, w_opposite = 1.0, noise = 0.0 }"
    displays = '["shown", "hidden", "other", "answer-wrong", "in-context"]'
    config = write_config(
        sim_config_text(
            items=40,
            params=params,
            extra_paradigm=f'domain = "arithmetic"\ndisplays = {displays}',
        ),
        "ideal4.toml",
    )
    summary = _run_and_analyse(tmp_path / "ideal4", config)
    cells = summary["models"]["sim"]["oucs"]
    assert set(cells) == {"shown", "hidden", "other", "answer-wrong", "in-context"}
    for display, by_advice in cells.items():
        for advice, value in by_advice.items():
            assert abs(value) < 1e-9, (display, advice, value)


def test_ideal_agent_matches_the_bayes_baseline_over_sequences(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    for domain in ("latitude", "world-facts"):
        text = (
            f'[experiment]\nname = "seq"\nparadigm = "multi-advice"\n\n[paradigm]\n'
            f'domain = "{domain}"\nitems = 30\ndisplays = ["shown", "hidden"]\n'
            'sequences = [["same@0.7", "opposite@0.9"], ["opposite@0.6", "opposite@0.8"]]\n\n'
            '[[models]]\nid = "sim"\nspec = "sim:bayes"\n'
        )
        summary = _run_and_analyse(tmp_path / domain, write_config(text, f"{domain}.toml"))
        sequences = summary["models"]["sim"]["sequences"]
        assert len(sequences) == 4
        for entry in sequences.values():
            assert abs(entry["oucs"]) < 1e-9
            assert entry["final_confidence"] == pytest.approx(entry["bayes_posterior"])
