"""The latitude domain: right answers, plausible distinct foils, counterbalancing, seeding."""

from __future__ import annotations

import pytest

from mindshift.paradigms.domains.latitude import (
    LATITUDE_DIFFICULTIES,
    format_latitude,
    latitude_items,
)


@pytest.mark.parametrize("difficulty", sorted(LATITUDE_DIFFICULTIES))
def test_the_marked_answer_is_the_true_latitude_and_the_foil_is_offset(difficulty: str) -> None:
    items = latitude_items(200, difficulty, seed=3)
    offset = LATITUDE_DIFFICULTIES[difficulty]
    for item in items:
        truth = item.meta["latitude"]
        foil = item.meta["foil"]
        correct_text = item.options[item.labels.index(item.correct)]
        wrong_text = next(o for o in item.options if o != correct_text)
        assert correct_text == format_latitude(truth)
        assert wrong_text == format_latitude(foil)
        assert correct_text != wrong_text
        assert abs(foil - truth) == pytest.approx(abs(truth) * offset)
        assert abs(foil) <= 90 and (foil > 0) == (truth > 0)  # same hemisphere, valid


def test_correct_position_is_counterbalanced() -> None:
    for count in (10, 11):
        items = latitude_items(count, "standard", seed=0)
        first = sum(item.correct == "A" for item in items)
        assert first == (count + 1) // 2


def test_generation_is_seeded() -> None:
    assert latitude_items(20, "standard", 5) == latitude_items(20, "standard", 5)
    assert latitude_items(20, "standard", 5) != latitude_items(20, "standard", 6)
    ids = [item.item_id for item in latitude_items(500, "hard", 1)]
    assert len(set(ids)) == len(ids)


def test_formatting() -> None:
    assert format_latitude(13.9234) == "13.92° N"
    assert format_latitude(-33.868) == "33.87° S"
