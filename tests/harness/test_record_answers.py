"""`read_stored_answers` reads the same lines as `read_call_records`, with the same fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindshift.harness.errors import RunDirError
from mindshift.harness.record import CallRecord, read_call_records, read_stored_answers
from mindshift.harness.types import Item, OptionReadout

ITEM = Item(
    item_id="q1",
    question="Which?",
    labels=("A", "B"),
    options=("north", "south"),
    correct="B",
    meta={"city": "Elbląg"},
)


def _records() -> list[CallRecord]:
    answered = CallRecord(
        trial_id="t1",
        stage=1,
        model="m",
        item=ITEM,
        condition="initial",
        repeat=0,
        choice="A",
        readout=OptionReadout(
            mass={"A": 0.6, "B": 0.3},
            probs={"A": 2 / 3, "B": 1 / 3},
            outside_mass=0.1,
            censored=False,
        ),
    )
    censored = CallRecord(
        trial_id="t2",
        stage=1,
        model="m",
        item=ITEM,
        condition="calibration",
        repeat=0,
        choice="B",
        readout=OptionReadout(
            mass={"A": None, "B": 0.9}, probs=None, outside_mass=None, censored=True
        ),
    )
    failed = CallRecord(
        trial_id="t3",
        stage=1,
        model="m",
        item=ITEM,
        condition="initial",
        repeat=1,
        error="timeout",
    )
    choice_only = CallRecord(
        trial_id="t4", stage=1, model="m2", item=ITEM, condition="initial", repeat=0, choice="B"
    )
    later = CallRecord(
        trial_id="t5",
        stage=2,
        model="m",
        item=ITEM,
        condition="shown",
        repeat=0,
        choice="B",
        initial_trial_id="t1",
    )
    return [answered, censored, failed, choice_only, later]


def _write(path: Path, records: list[CallRecord]) -> None:
    path.write_bytes(b"".join(record.to_line() for record in records))


@pytest.mark.parametrize("stages", [None, {1}, {2}])
def test_answers_match_the_records_of_the_same_lines(
    tmp_path: Path, stages: set[int] | None
) -> None:
    path = tmp_path / "calls.jsonl"
    _write(path, _records())
    records = list(read_call_records(path, strict=False, stages=stages))
    answers = list(read_stored_answers(path, strict=False, stages=stages))
    assert [a.trial_id for a in answers] == [r.trial_id for r in records]
    assert len(records) == (5 if stages is None else 4 if stages == {1} else 1)
    for answer, record in zip(answers, records, strict=True):
        assert (answer.stage, answer.model, answer.item, answer.condition) == (
            record.stage,
            record.model,
            record.item,
            record.condition,
        )
        assert (answer.choice, answer.error, answer.failed) == (
            record.choice,
            record.error,
            record.failed,
        )
        assert answer.probs == record.probs


def test_a_damaged_line_is_refused_as_the_records_reader_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    _write(path, _records()[:1])
    with path.open("ab") as handle:
        handle.write(b'{"trial_id":"t9","stage":1,"model":"m","item":[]}\n')
    with pytest.raises(RunDirError) as from_records:
        list(read_call_records(path, strict=False))
    with pytest.raises(RunDirError) as from_answers:
        list(read_stored_answers(path, strict=False))
    assert str(from_answers.value) == str(from_records.value)
    assert "line 2" in str(from_answers.value)
