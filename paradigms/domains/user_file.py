"""`file:PATH`: a user's own multiple-choice questions, from JSONL or CSV.

JSONL (one object per line):
    {"id": "q1", "question": "...", "options": ["...", "...", "...", "..."], "answer": "C"}
CSV (a header row; options in columns option_1 ... option_K, blank ones ignored):
    id,question,option_1,option_2,option_3,option_4,answer

`answer` is the correct option's label (A, B, ...), its 1-based number, or its exact text.
An answer that fits two of these readings and names different options — "2" among the
options ["1", "3", "2", "4"] (the second option, or the option "2"?), or "A" among
["B", "A", "C", "D"] — is an error naming the row, unless the row says how to read it: an
`answer_is` key (a CSV column) of "label", "number" or "text". A reading that names the same
option either way ("A" among ["A", "B"]) is no ambiguity.
`id` is optional (the row number is used). Between 2 and 10 options per question, all
distinct. Option order is kept as written (the file's author controls position); SimpleQA-MC
or GSM8K-MC exports fit this shape directly. Every problem is reported with its row number.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from mindshift.harness.config import read_bounded_text
from mindshift.harness.types import Item
from mindshift.paradigms.domains.layout import labels_for

MAX_FILE_BYTES = 256 << 20
"""A question file of this size holds millions of questions; a larger one (or a file that
never ends, like /dev/zero) is not read into memory."""
ANSWER_READINGS = ("label", "number", "text")


class QuestionFileError(ValueError):
    """The question file cannot be used; the message names the file and row."""


def _readings(answer: str, labels: tuple[str, ...], options: list[str]) -> dict[str, int]:
    """Each way `answer` can be read, with the option index it names."""
    found: dict[str, int] = {}
    if answer in labels:
        found["label"] = labels.index(answer)
    if answer.isdigit() and 1 <= int(answer) <= len(options):
        found["number"] = int(answer) - 1
    if answer in options:
        found["text"] = options.index(answer)
    return found


def _correct_label(
    row: dict[str, Any], where: str, labels: tuple[str, ...], options: list[str]
) -> str:
    answer = str(row.get("answer", "")).strip()
    readings = _readings(answer, labels, options)
    how = row.get("answer_is")
    how = how.strip() if isinstance(how, str) else how
    if how not in (None, ""):
        if how not in ANSWER_READINGS:
            raise QuestionFileError(
                f"{where}: answer_is {how!r} is not one of {', '.join(ANSWER_READINGS)}"
            )
        if how not in readings:
            raise QuestionFileError(f"{where}: answer {answer!r} is not an option {how}")
        return labels[readings[how]]
    if not readings:
        raise QuestionFileError(f"{where}: answer {answer!r} is not a label, number or option text")
    if len(set(readings.values())) > 1:
        ways = "; ".join(
            f"as a {way}: option {labels[index]} ({options[index]!r})"
            for way, index in readings.items()
        )
        raise QuestionFileError(
            f"{where}: answer {answer!r} can be read two ways ({ways}); say which with "
            'answer_is = "label", "number" or "text" in the row'
        )
    return labels[next(iter(readings.values()))]


def _item(row: dict[str, Any], where: str, number: int) -> Item:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise QuestionFileError(f"{where}: 'question' is missing or empty")
    options = row.get("options")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise QuestionFileError(f"{where}: 'options' must be a list of strings")
    options = [option.strip() for option in options]
    if not 2 <= len(options) <= 10:
        raise QuestionFileError(f"{where}: needs 2 to 10 options, found {len(options)}")
    if len(set(options)) != len(options) or not all(options):
        raise QuestionFileError(f"{where}: options must be distinct and non-empty")
    labels = labels_for(len(options))
    correct = _correct_label(row, where, labels, options)
    item_id = str(row.get("id") or f"row-{number}")
    return Item(
        item_id=f"file-{item_id}",
        question=question.strip(),
        labels=labels,
        options=tuple(options),
        correct=correct,
        meta={"row": number},
    )


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    text = read_bounded_text(path, MAX_FILE_BYTES, "question file", error=QuestionFileError)
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows = []
        for number, raw in enumerate(reader, start=2):  # row 1 is the header
            option_keys = sorted(
                (key for key in raw if key and key.startswith("option_")),
                key=lambda key: (
                    int(key.removeprefix("option_"))
                    if key.removeprefix("option_").isdigit()
                    else 99
                ),
            )
            options = [raw[key] for key in option_keys if raw.get(key)]
            rows.append((number, {**raw, "options": options}))
        return rows
    if path.suffix.lower() not in (".jsonl", ".json"):
        raise QuestionFileError(f"{path}: question files are .jsonl or .csv")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise QuestionFileError(f"{path} row {number}: not valid JSON ({error.msg})") from None
        if not isinstance(value, dict):
            raise QuestionFileError(f"{path} row {number}: expected a JSON object")
        rows.append((number, value))
    return rows


def file_items(path: Path, count: int | None = None) -> list[Item]:
    """The questions of a JSONL or CSV file, in file order (the first `count` of them)."""
    items = []
    seen: set[str] = set()
    for number, row in _rows(path):
        item = _item(row, f"{path} row {number}", number)
        if item.item_id in seen:
            raise QuestionFileError(f"{path} row {number}: id {item.item_id[5:]!r} repeats")
        seen.add(item.item_id)
        items.append(item)
    if not items:
        raise QuestionFileError(f"{path}: no questions")
    if count is not None:
        if count > len(items):
            raise QuestionFileError(f"{path} has {len(items)} questions, {count} were asked for")
        items = items[:count]
    return items
