"""The advice protocols' facts and trials-table columns reproduce the runs made before them.

`tests/fixtures/old_runs/` holds a run of each advice protocol made by the code before the
protocols owned typed facts (`AdviceFacts`) and columns (`AdviceColumns`). Every stored
call's `request.situation` must be what the protocol builds today, key order included (the
record layout), and every stored trials.parquet row's protocol columns what
`trial_columns` computes from the stored facts and answers.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.harness.paradigm import Paradigm, TurnAnswer
from mindshift.harness.types import Item
from mindshift.paradigms import PARADIGMS
from mindshift.paradigms.columns import AdviceColumns

OLD_RUNS = Path(__file__).parents[1] / "fixtures" / "old_runs"
PROTOCOLS = ["change-of-mind", "are-you-sure", "multi-advice"]


def _paradigm(name: str) -> Paradigm:
    config = tomllib.loads((OLD_RUNS / f"{name}.toml").read_text(encoding="utf-8"))
    cls = PARADIGMS[config["experiment"]["paradigm"]]
    return cls(cls.Settings.model_validate(config["paradigm"]), config["experiment"]["seed"])


def _records(name: str) -> list[dict[str, Any]]:
    lines = (OLD_RUNS / name / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _answer(record: dict[str, Any]) -> TurnAnswer:
    readout = record["readout"]
    probs = None if readout is None else readout["probs"]
    return TurnAnswer(choice=record["choice"], probs=probs, turn=record["stage"])


def _initials(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {record["trial_id"]: record for record in records if record["stage"] == 1}


@pytest.mark.parametrize("name", PROTOCOLS)
def test_every_stored_prompt_and_its_facts_are_rebuilt_exactly(name: str) -> None:
    paradigm = _paradigm(name)
    records = _records(name)
    initials = _initials(records)
    conditions = {condition.name: condition for condition in paradigm.conditions()}
    stages = set()
    for record in records:
        item = Item.from_json(record["item"])
        if record["stage"] == 1:
            staged = paradigm.initial_prompt(item)
        else:
            first = initials[record["initial_trial_id"]]
            condition = conditions[record["condition"]]
            staged = paradigm.turn_prompt(item, condition, record["stage"], [_answer(first)])
        stored = dict(record["request"])
        situation = stored.pop("situation")
        assert type(staged.facts) is paradigm.Facts
        # json.dumps keeps key order: the stored layout, key for key, in the same order.
        assert json.dumps(staged.facts.to_json()) == json.dumps(situation), record["trial_id"]
        assert staged.prompt.to_json() == {
            key: stored[key] for key in ("messages", "answer_prefix", "labels")
        }
        stages.add(record["stage"])
    assert stages == {1, 2}


@pytest.mark.parametrize("name", PROTOCOLS)
def test_trial_columns_equal_the_stored_trials_table(name: str) -> None:
    cls = type(_paradigm(name))
    assert cls.Columns is AdviceColumns
    records = _records(name)
    initials = _initials(records)
    table = pd.read_parquet(OLD_RUNS / name / "trials.parquet").set_index("trial_id")
    later = [record for record in records if record["stage"] == 2]
    assert len(later) == len(table)
    for record in later:
        first = initials[record["initial_trial_id"]]
        columns = cls.trial_columns(record["request"]["situation"], _answer(first), _answer(record))
        assert isinstance(columns, AdviceColumns)
        row = table.loc[record["trial_id"]]
        for field, value in columns.model_dump().items():
            assert _same(row[field], value), (record["trial_id"], field, row[field], value)


def _same(stored: Any, computed: Any) -> bool:
    """Equal as stored: None is a missing value, NaN only where the table has NaN."""
    if computed is None:
        return stored is None or (isinstance(stored, float) and math.isnan(stored))
    if isinstance(computed, float):
        if math.isnan(computed):
            return isinstance(stored, float) and math.isnan(stored)
        return isinstance(stored, float) and stored == computed
    return bool(stored == computed)


def test_the_fixtures_cover_what_the_columns_distinguish() -> None:
    # Otherwise the comparison above could pass without checking the hard cases.
    table = pd.read_parquet(OLD_RUNS / "change-of-mind" / "trials.parquet")
    assert table["initial_prob_advised"].isna().any() and table["advised"].notna().any()
    assert set(table["display"]) == {"shown", "hidden", "answer-wrong", "in-context", "other"}
    assert (table["displayed_choice"] != table["initial_choice"]).any()  # answer-wrong
    sequences = pd.read_parquet(OLD_RUNS / "multi-advice" / "trials.parquet")["advisors"]
    assert sequences.notna().all()
    challenged = pd.read_parquet(OLD_RUNS / "are-you-sure" / "trials.parquet")
    assert challenged["display"].isna().all() and challenged["advised"].notna().any()
