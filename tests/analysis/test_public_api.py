"""One answer from notebook and report: every number of summary.json, recomputed through the
public API (`analysis.__init__`) from `load_run(...)`, equals what `mindshift analyse` wrote.

The runs are real `sim:bayes` runs through the CLI, chosen where a silent difference used to
hide: the `answer-wrong` control (framing), a calibration split with a distorted readout
(tau 2: calibration), two and four options, a multi-advice run (sequences), and the analysis
options (`--prior raw --bayes-clip 0`). The recomputation mirrors summary.json's layout with
the measure functions a notebook would call; the comparison walks every leaf of summary.json
and fails on any number it did not recompute, so a new number in the summary needs a public
way to get it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import (
    BAYES_CLIP,
    POOLED,
    RunData,
    answered,
    at_bayes_clip,
    calibration_metrics,
    choice_support_correction,
    choice_support_test,
    clip_sensitivity,
    com_logistic,
    com_rates,
    condition_table,
    confidence_change,
    display_coefficient,
    fit_update_model,
    initial_accuracy_table,
    load_run,
    nest,
    oucs,
    overweighting,
    overweighting_logodds,
    prepare_trials,
    sequence_table,
    switching_curves,
    turn_table,
)
from mindshift.cli import main

SIM = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3, tau = 2.0 }"
BY2 = ("display", "advice")
BY3 = ("display", "advice", "accuracy")


def _change_of_mind(domain: str) -> str:
    return (
        f'[experiment]\nname = "api-{domain}"\nparadigm = "change-of-mind"\nseed = 3\n\n'
        f'[paradigm]\ndomain = "{domain}"\nitems = 20\ncalibration_items = 200\n'
        'displays = ["shown", "hidden", "answer-wrong"]\n\n'
        f'[[models]]\nid = "sim"\nspec = "sim:bayes"\nparams = {SIM}\n'
    )


MULTI_ADVICE = (
    '[experiment]\nname = "api-multi"\nparadigm = "multi-advice"\nseed = 3\n\n'
    '[paradigm]\ndomain = "latitude"\nitems = 20\ndisplays = ["shown", "hidden"]\n'
    'sequences = [["same@0.7", "opposite@0.9"], ["opposite@0.6", "opposite@1.0"]]\n\n'
    f'[[models]]\nid = "sim"\nspec = "sim:bayes"\nparams = {SIM}\n'
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("api")
    made: dict[str, Path] = {}
    for name, text in (
        ("latitude", _change_of_mind("latitude")),
        ("world-facts", _change_of_mind("world-facts")),
        ("multi-advice", MULTI_ADVICE),
    ):
        config = root / f"{name}.toml"
        config.write_text(text, encoding="utf-8")
        assert main(["run", str(config), "--out", str(root / name)]) == 0
        made[name] = root / name
    return made


def _analysed(run_dir: Path, *options: str) -> dict[str, Any]:
    assert main(["analyse", str(run_dir), "--fitted-model", "tobit", *options]) == 0
    summary: dict[str, Any] = json.loads(
        (run_dir / "analysis" / "summary.json").read_text(encoding="utf-8")
    )
    return summary


# --- the notebook's recomputation -----------------------------------------------------------


def _of(table: pd.DataFrame, model: str) -> pd.DataFrame:
    return table.loc[table["model"] == model]


def _ratio_detail(table: pd.DataFrame, correction: float) -> dict[str, Any]:
    names = ("n", "mean_ratio", "median_ratio", "ratio_of_sums", "mean_update")
    stats = (*names, "mean_bayes_update")
    rows = table.to_dict("records")
    by_display: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["display"] != POOLED:
            by_display.setdefault(row["display"], {})[row["advice"]] = {k: row[k] for k in stats}
    return {
        "choice_support_correction": correction,
        "pooled": {r["advice"]: {k: r[k] for k in stats} for r in rows if r["display"] == POOLED},
        "by_display": by_display,
    }


def _headline(table: pd.DataFrame, display: str) -> dict[str, float]:
    rows = table.loc[table["display"] == display].set_index("advice")["ratio_of_sums"]
    return {advice: float(rows.get(advice, math.nan)) for advice in ("same", "opposite")}


def _clip_cells(table: pd.DataFrame) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for row in table.to_dict("records"):
        node = cells.setdefault(row["display"], {}).setdefault(row["advice"], {})
        node.setdefault(f"{row['accuracy']:g}", {})[f"{row['bayes_clip']:g}"] = {
            "n": row["n"],
            "oucs": row["oucs"],
            "n_ratio": row["n_ratio"],
            "overweighting": row["overweighting"],
            "overweighting_logodds": row["overweighting_logodds"],
        }
    return cells


def _recompute_model(run: RunData, model: str) -> dict[str, Any]:
    trials = run.trials  # prepared as the report prepares it: the point of the test
    rows = _of(trials, model)
    accuracy = initial_accuracy_table(run.raw_trials, run.stage1)
    com = _of(com_rates(trials, ("display",)), model)
    com_advice = _of(com_rates(trials, BY2), model)
    change = _of(confidence_change(trials, BY2), model)
    scores = _of(oucs(trials, BY2), model)
    paper = _of(overweighting(trials), model)
    logodds = _of(overweighting_logodds(trials), model)
    temperatures = _of(run.prepared.temperatures, model)
    chosen = run.prepared.chosen
    support = _of(choice_support_test(trials), model)
    regression = _of(com_logistic(trials), model)
    conditions = _of(condition_table(trials), model)
    sequences = _of(sequence_table(trials), model)
    turns = _of(turn_table(trials), model)
    detail = _ratio_detail(paper, float(choice_support_correction(trials).loc[model]))
    detail["logodds"] = _ratio_detail(
        logodds, float(choice_support_correction(trials, "logodds").loc[model])
    )
    fitted = temperatures.iloc[0]
    entry: dict[str, Any] = {
        "n_trials": len(answered(rows)),
        "accuracy_initial": accuracy.at[model, "accuracy_initial"],
        "accuracy_initial_source": accuracy.at[model, "source"],
        "n_initial_calls": accuracy.at[model, "n_initial_calls"],
        "com_rate": nest(com, ("display",)),
        "com_rate_by_advice": nest(com_advice, BY2),
        "confidence_change": nest(change, BY2),
        "oucs": nest(scores, BY2),
        "overweighting": _headline(paper, POOLED),
        "overweighting_hidden": _headline(paper, "hidden"),
        "overweighting_logodds": _headline(logodds, POOLED),
        "overweighting_detail": detail,
        "fit": fit_update_model(rows).to_dict(),
        "n_items": rows["item_id"].nunique(),
        "n_with_confidence": int(
            (rows["initial_confidence"].notna() & rows["final_prob_initial"].notna()).sum()
        ),
        "n_censored": {
            "initial": int(rows["initial_censored"].sum()),
            "final": int(rows["final_censored"].sum()),
        },
        "calibration": {
            "confidence_scale": "calibrated" if model in chosen else "raw",
            "temperature_applied": chosen.get(model, math.nan),
            "metrics": _of(calibration_metrics(run.prepared.stage1, temperatures), model)
            .drop(columns="model")
            .to_dict("records"),
            "temperature": fitted["temperature"],
            "temperature_ci": [fitted["ci_low"], fitted["ci_high"]],
            "source": fitted["source"],
            "n": fitted["n"],
            "usable": fitted["usable"],
        },
        "by_condition": {
            row["condition"]: {
                k: row[k]
                for k in (
                    "turn",
                    "n",
                    "n_items",
                    "com_rate",
                    "n_with_confidence",
                    "confidence_change",
                    "oucs",
                )
            }
            for row in conditions.to_dict("records")
        },
        "com_rate_by_accuracy": nest(_of(com_rates(trials, BY3), model), BY3),
        "confidence_change_by_accuracy": nest(_of(confidence_change(trials, BY3), model), BY3),
        "oucs_by_accuracy": nest(_of(oucs(trials, BY3), model), BY3),
        "clip_sensitivity": _clip_cells(_of(clip_sensitivity(trials), model)),
        "choice_support_test": support.drop(columns="model").iloc[0].to_dict()
        if not support.empty
        else {},
        "com_regression": {
            row["term"]: {
                k: row[k]
                for k in ("estimate", "se_item", "ci_low", "ci_high", "p_value", "odds_ratio")
            }
            for row in regression.to_dict("records")
        },
        "display_coefficient": display_coefficient(com_logistic(trials), model)["estimate"],
        "switching": _of(switching_curves(trials), model).drop(columns="model").to_dict("records"),
        "se_item": {
            "com_rate": nest(com, ("display",), "se_item"),
            "com_rate_by_advice": nest(com_advice, BY2, "se_item"),
            "confidence_change": nest(change, BY2, "se_item"),
            "oucs": nest(scores, BY2, "se_item"),
        },
        "ci95": {
            name: {"low": nest(table, keys, "ci_low"), "high": nest(table, keys, "ci_high")}
            for name, table, keys in (
                ("com_rate", com, ("display",)),
                ("com_rate_by_advice", com_advice, BY2),
                ("confidence_change", change, BY2),
                ("oucs", scores, BY2),
            )
        },
    }
    entry["turns"] = {}
    for row in turns.to_dict("records"):
        entry["turns"].setdefault(row["condition"], {})[str(row["turn"])] = {
            "n": row["n"],
            "n_items": row["n_items"],
            "com_rate": row["com_rate"],
            "com_ci95": [row["com_ci_low"], row["com_ci_high"]],
            "n_with_confidence": row["n_with_confidence"],
            "confidence_initial": row["confidence_initial"],
            "confidence_ci95": [row["confidence_ci_low"], row["confidence_ci_high"]],
            "final_confidence": row["final_confidence"],
            "bayes_posterior": row["bayes_post"],
            "flip_rate": row["flip_rate"],
        }
    if not sequences.empty:
        entry["sequences"] = {
            row["condition"]: {
                "advisors": row["advisors"],
                "n": row["n"],
                "com_rate": row["com_rate"],
                "final_confidence": row["final_confidence"],
                "bayes_posterior": row["bayes_post"],
                "oucs": row["oucs"],
                "oucs_ci95": [row["oucs_ci_low"], row["oucs_ci_high"]],
            }
            for row in sequences.to_dict("records")
        }
    return entry


def _recompute(run: RunData) -> dict[str, Any]:
    clip = run.prepared.bayes_clip
    models = sorted(set(run.trials["model"]))
    return {
        "models": {model: _recompute_model(run, model) for model in models},
        "analysis": {"bayes_clip": clip, "clip": [clip, 1.0 - clip]},
    }


# --- the comparison --------------------------------------------------------------------------


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) of every number, boolean and null of a JSON tree (strings are words,
    not numbers: those the recomputation names are compared separately)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, str(index)))
    elif not isinstance(node, str):
        yield path, node


def _number(value: Any) -> float | None:
    """A JSON number as a float; None for null / NaN (json_ready writes NaN as null)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _assert_same(summary: dict[str, Any], recomputed: dict[str, Any]) -> int:
    written = dict(_leaves(summary))
    again = dict(_leaves(json.loads(json.dumps(recomputed, default=_plain))))
    missing = sorted(path for path in written if path not in again)
    assert not missing, f"summary.json numbers not recomputed: {missing[:10]}"
    for path, value in written.items():
        assert _number(again[path]) == _number(value), (path, again[path], value)
    return len(written)


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, NaN as None (json.dumps' default)."""
    item = value.item() if hasattr(value, "item") else value
    if isinstance(item, float) and math.isnan(item):
        return None
    return item


def _nan_as_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _nan_as_none(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_nan_as_none(value) for value in node]
    if isinstance(node, float) and math.isnan(node):
        return None
    return node


@pytest.mark.parametrize("name", ["latitude", "world-facts", "multi-advice"])
def test_public_api_equals_summary_json(runs: dict[str, Path], name: str) -> None:
    summary = _analysed(runs[name])
    run = load_run(runs[name])
    recomputed = _nan_as_none(_recompute(run))
    checked = _assert_same(summary, recomputed)
    assert checked > 100
    model = summary["models"]["sim"]
    assert summary["analysis"]["bayes_clip"] == BAYES_CLIP
    assert (
        model["accuracy_initial_source"] == recomputed["models"]["sim"]["accuracy_initial_source"]
    )
    if name != "multi-advice":
        # The run is what the test is about: answer-wrong trials, a calibration split, and
        # (two options) a temperature applied.
        assert "answer-wrong" in model["oucs"]
        assert model["calibration"]["source"] == "calibration split"
    if name == "latitude":
        # tau 2 overstates the logits: the split's temperature is well above 1 and applied.
        assert model["calibration"]["confidence_scale"] == "calibrated"
        assert model["calibration"]["temperature_applied"] > 1.3
    if name == "multi-advice":
        assert len(model["sequences"]) == 4


def test_public_api_equals_summary_json_under_the_options(runs: dict[str, Path]) -> None:
    summary = _analysed(runs["latitude"], "--prior", "raw", "--bayes-clip", "0")
    run = load_run(runs["latitude"], prior="raw", bayes_clip=0.0)
    assert summary["analysis"]["bayes_clip"] == 0.0
    assert summary["models"]["sim"]["calibration"]["confidence_scale"] == "raw"
    assert _assert_same(summary, _nan_as_none(_recompute(run))) > 300
    # The fit keeps the agent's clip bounds (its censoring points) under exact Bayes.
    assert (
        fit_update_model(run.trials).to_dict()
        == fit_update_model(at_bayes_clip(run.trials, BAYES_CLIP)).to_dict()
    )


def test_the_table_as_read_is_refused(runs: dict[str, Path]) -> None:
    from mindshift.analysis import AnalysisInputError

    run = load_run(runs["latitude"])
    with pytest.raises(AnalysisInputError, match="as read"):
        oucs(run.raw_trials)
    with pytest.raises(AnalysisInputError, match="as read"):
        com_rates(run.raw_trials)
    # What the refusal prevents: prepared without the run's stage-1 calls, the calibration
    # split is lost and the numbers differ from the report's.
    alone = prepare_trials(run.raw_trials).trials
    assert not oucs(alone)["mean"].equals(oucs(run.trials)["mean"])
    # Preparing a prepared table changes nothing (no second framing or calibration).
    again = prepare_trials(run.trials, run.stage1).trials
    assert again is run.trials
    with pytest.raises(AnalysisInputError, match="prepared with"):
        prepare_trials(run.trials, run.stage1, prior="raw")


def test_every_trial_level_measure_refuses_the_table_as_read(runs: dict[str, Path]) -> None:
    from mindshift.analysis import AnalysisInputError, binned_switching, overweighting

    raw = load_run(runs["latitude"]).raw_trials
    for measure in (
        com_logistic,
        switching_curves,
        binned_switching,
        confidence_change,
        overweighting,
        overweighting_logodds,
        choice_support_test,
        condition_table,
        sequence_table,
        turn_table,
        clip_sensitivity,
        fit_update_model,
        answered,
    ):
        with pytest.raises(AnalysisInputError, match="as read"):
            measure(raw)
