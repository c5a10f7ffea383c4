"""The trials schema follows its two owners: the engine's columns and the paradigms'."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import AnalysisInputError, load_run, validate_trials
from mindshift.analysis.data.schema import (
    ADVICE_FACTORS,
    ADVICE_KINDS,
    ENGINE_DEFAULTS,
    ENGINE_KINDS,
    TRIAL_COLUMNS,
    column_kinds,
)
from mindshift.harness.trials_table import COLUMNS
from mindshift.paradigms.columns import AdviceColumns
from mindshift.paradigms.flip_flop import FlipFlopColumns

MakeTrials = Callable[[Iterable[dict[str, Any]]], pd.DataFrame]
OLD_RUNS = Path(__file__).parents[1] / "fixtures" / "old_runs"


def test_every_engine_column_has_a_type_and_the_core_is_the_engines() -> None:
    assert list(ENGINE_KINDS) == list(COLUMNS)
    assert set(TRIAL_COLUMNS) | set(ENGINE_DEFAULTS) == set(COLUMNS)
    assert not set(TRIAL_COLUMNS) & set(ADVICE_KINDS)


def test_the_advice_columns_are_the_paradigms() -> None:
    assert list(ADVICE_KINDS) == list(AdviceColumns.model_fields)
    assert ADVICE_KINDS["display"] == "str" and ADVICE_KINDS["accuracy"] == "float"
    assert set(ADVICE_FACTORS) <= set(ADVICE_KINDS)
    # Any paradigm's columns are typed from its model the same way.
    kinds = column_kinds(FlipFlopColumns)
    assert (kinds["round"], kinds["flipped"], kinds["previous_confidence"]) == (
        "int",
        "bool",
        "float",
    )


def test_a_table_written_before_turns_reads_as_turn_two(make_trials: MakeTrials) -> None:
    table = make_trials([{}, {}])
    assert "turn" not in table.columns
    validated = validate_trials(table)
    assert list(validated["turn"]) == [2, 2]
    assert validated["final_confidence"].isna().all()
    assert list(validated["readout"]) == ["logprobs", "logprobs"]


@pytest.mark.parametrize("name", ["change-of-mind", "are-you-sure", "multi-advice"])
def test_old_runs_tables_read_as_two_turn_tables(name: str) -> None:
    raw = pd.read_parquet(OLD_RUNS / name / "trials.parquet")
    assert "turn" not in raw.columns
    run = load_run(OLD_RUNS / name)
    assert set(run.raw_trials["turn"]) == {2}


def test_some_advice_factors_without_the_others_is_an_error(make_trials: MakeTrials) -> None:
    with pytest.raises(AnalysisInputError, match=r"lacks column\(s\): accuracy .*come together"):
        validate_trials(make_trials([{}]).drop(columns=["accuracy"]))
    with pytest.raises(AnalysisInputError, match=r"lacks column\(s\): item_id"):
        validate_trials(make_trials([{}]).drop(columns=["item_id"]))
