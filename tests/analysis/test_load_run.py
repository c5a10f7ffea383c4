"""Reading run directories: tolerant of a crash's truncated line, loud about real damage."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mindshift.analysis import AnalysisInputError, load_run, load_stage1_calls

Simulate = Callable[..., pd.DataFrame]


def test_loads_a_run(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert len(run.trials) == 20 * 2 * 3 * 6 + 20 * 3 * 3 * 6
    assert run.stage1 is not None and len(run.stage1) == 40
    assert run.manifest["git"] == {"commit": "abc123", "dirty": True}


def test_truncated_last_line_is_skipped(run_dir: Path) -> None:
    calls = run_dir / "calls.jsonl"
    with calls.open("ab") as handle:
        handle.write(b'{"trial_id": "late", "stage": 1, "model": "sim", "ite')
    run = load_run(run_dir)
    assert run.stage1 is not None and len(run.stage1) == 40


STAGE1 = {
    "trial_id": "t1",
    "stage": 1,
    "model": "sim",
    "item": {"id": "i1", "labels": ["A", "B"], "correct": "A"},
    "choice": "A",
    "readout": {"probs": {"A": 0.7, "B": 0.3}},
}


def test_truncated_multibyte_character_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_bytes(json.dumps(STAGE1).encode() + b'\n{"trial_id": "caf\xc3')
    table = load_stage1_calls(path)
    assert list(table["trial_id"]) == ["t1"]
    assert table.loc[0, "probs"] == (0.7, 0.3)


def test_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    line = json.dumps(STAGE1)
    path.write_text(f'{line}\n{{"broken\n{line}\n')
    with pytest.raises(AnalysisInputError, match=r"calls\.jsonl: line 2 "):
        load_stage1_calls(path)


def test_a_line_that_is_no_call_record_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps(STAGE1) + "\n" + json.dumps({"a": 1}) + "\n")
    with pytest.raises(AnalysisInputError, match="line 2 has no 'trial_id'"):
        load_stage1_calls(path)


def test_later_turns_are_skipped_unparsed(tmp_path: Path) -> None:
    """A later turn's line in the run store's layout is recognised by its first bytes and
    never parsed (damage after them goes unseen); in another layout it is parsed, checked,
    and left out."""
    path = tmp_path / "calls.jsonl"
    later = {**STAGE1, "trial_id": "t2", "stage": 3, "initial_trial_id": "t1"}
    path.write_text(
        json.dumps(STAGE1)
        + '\n{"trial_id":"t9","stage":2,not json at all\n'
        + json.dumps(later)
        + "\n"
    )
    assert list(load_stage1_calls(path)["trial_id"]) == ["t1"]


def test_duplicate_stage1_calls_count_once(run_dir: Path) -> None:
    calls = run_dir / "calls.jsonl"
    first = calls.read_text().splitlines()[0]
    later = {**json.loads(first), "trial_id": "s2", "stage": 2, "initial_trial_id": "x"}
    with calls.open("a") as handle:
        handle.write(first + "\n")
        handle.write(json.dumps(later) + "\n")
    run = load_run(run_dir)
    assert run.stage1 is not None and len(run.stage1) == 40


def test_missing_calls_file_falls_back(run_dir: Path) -> None:
    (run_dir / "calls.jsonl").unlink()
    assert load_run(run_dir).stage1 is None


def test_missing_run_dir(tmp_path: Path) -> None:
    with pytest.raises(AnalysisInputError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_missing_trials(tmp_path: Path) -> None:
    with pytest.raises(AnalysisInputError, match=r"trials\.parquet"):
        load_run(tmp_path)


def test_corrupt_trials(tmp_path: Path) -> None:
    (tmp_path / "trials.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(AnalysisInputError, match="parquet"):
        load_run(tmp_path)


def test_empty_trials(tmp_path: Path, simulated: Simulate) -> None:
    simulated(n_items=2).iloc[:0].to_parquet(tmp_path / "trials.parquet")
    with pytest.raises(AnalysisInputError, match="no trials"):
        load_run(tmp_path)


def test_missing_column(tmp_path: Path, simulated: Simulate) -> None:
    simulated(n_items=2).drop(columns=["advice"]).to_parquet(tmp_path / "trials.parquet")
    with pytest.raises(AnalysisInputError, match="advice"):
        load_run(tmp_path)


def test_trials_come_prepared_and_the_table_as_read_is_refused(
    tmp_path: Path, make_trials: Callable[..., pd.DataFrame]
) -> None:
    from mindshift.analysis import is_prepared, oucs, preparation_of, prepare_trials
    from tests.analysis.conftest import write_run

    trials = make_trials(
        [
            # An answer-wrong trial: the displayed A (stage-1 0.2) is the frame.
            {
                "display": "answer-wrong",
                "advice": "same",
                "correct": "B",
                "initial_choice": "B",
                "initial_confidence": 0.8,
                "displayed_choice": "A",
                "initial_prob_displayed": 0.2,
                "final_choice": "B",
                "final_prob_initial": 0.9,
                "final_prob_displayed": 0.1,
            },
            {"display": "hidden", "advice": "same", "final_prob_initial": 0.9},
        ]
    )
    run = load_run(write_run(tmp_path / "run", trials), bayes_clip=0.05)
    assert is_prepared(run.trials) and not is_prepared(run.raw_trials)
    preparation = preparation_of(run.trials)
    assert preparation is not None and preparation.bayes_clip == 0.05
    framed = run.trials.set_index("display")
    assert framed.loc["answer-wrong", "initial_confidence"] == 0.2
    assert framed.loc["answer-wrong", "stage1_confidence"] == 0.8
    assert run.raw_trials.set_index("display").loc["answer-wrong", "initial_confidence"] == 0.8
    # A measure of run.trials is framed; of the table as read, refused.
    cell = oucs(run.trials).set_index("display").loc["answer-wrong", "mean"]
    assert cell == pytest.approx(0.1 - 0.14 / 0.38)
    with pytest.raises(AnalysisInputError, match="as read"):
        oucs(run.raw_trials)
    # A subset of the prepared table is still prepared; preparing it again is a no-op, and
    # a table whose record was dropped is refused rather than framed twice.
    subset = run.trials.loc[run.trials["display"] == "answer-wrong"]
    assert prepare_trials(subset).trials is subset
    stripped = run.trials.copy()
    stripped.attrs = {}
    with pytest.raises(AnalysisInputError, match="no record"):
        oucs(stripped)


def test_load_run_refuses_a_bad_clip(run_dir: Path) -> None:
    with pytest.raises(AnalysisInputError, match="bayes clip"):
        load_run(run_dir, bayes_clip=0.5)


def test_stage1_rows_have_the_stage1_tables_columns() -> None:
    from mindshift.analysis.data.load import Stage1Row
    from mindshift.analysis.data.schema import STAGE1_COLUMNS, STAGE1_EXTRA_COLUMNS

    assert Stage1Row._fields == STAGE1_COLUMNS + STAGE1_EXTRA_COLUMNS
