"""`arithmetic`: four-option grade-school word problems generated from templates.

Each template states a two-step problem and computes its answer; the three foils are the
answers that typical mistakes give (using the wrong operation, dropping a step, an off-by-one
or off-by-a-group slip, ignoring the order of operations). When two mistakes give the same
number, or a mistake gives the right one, the next mistake in the template's list is used, so
options are always distinct positive integers. Numbers are drawn from a seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mindshift.harness.trial_ids import seed_from_id
from mindshift.harness.types import Item
from mindshift.paradigms.domains.layout import balanced_positions, place

N_OPTIONS = 4

Numbers = dict[str, int]


@dataclass(frozen=True)
class Template:
    name: str
    text: str
    ranges: dict[str, tuple[int, int]]
    answer: Callable[[Numbers], int]
    mistakes: tuple[Callable[[Numbers], int], ...]
    """Wrong answers from typical slips, most typical first."""


TEMPLATES: tuple[Template, ...] = (
    Template(
        "buy-groups",
        "{name} has {a} apples and buys {b} bags with {c} apples in each bag. "
        "How many apples does {name} have now?",
        {"a": (3, 30), "b": (2, 9), "c": (3, 12)},
        lambda n: n["a"] + n["b"] * n["c"],
        (
            lambda n: n["a"] + n["b"] + n["c"],
            lambda n: (n["a"] + n["b"]) * n["c"],
            lambda n: n["b"] * n["c"],
            lambda n: n["a"] + (n["b"] - 1) * n["c"],
            lambda n: n["a"] + n["b"] * n["c"] + n["c"],
        ),
    ),
    Template(
        "share-left",
        "A teacher has {total} pencils. She gives {b} pencils to each of her {c} students. "
        "How many pencils are left?",
        {"b": (2, 6), "c": (5, 25), "extra": (1, 40)},
        lambda n: n["extra"],
        (
            lambda n: n["b"] * n["c"],
            lambda n: n["total"] - n["b"] - n["c"],
            lambda n: n["extra"] + n["b"],
            lambda n: n["total"] - n["b"] * (n["c"] - 1),
            lambda n: n["extra"] + 10,
        ),
    ),
    Template(
        "price-change",
        "A book costs {a} dollars. {name} buys {b} books and pays with {pay} dollars. "
        "How much change does {name} get?",
        {"a": (3, 15), "b": (2, 6), "over": (1, 30)},
        lambda n: n["pay"] - n["a"] * n["b"],
        (
            lambda n: n["pay"] - n["a"] - n["b"],
            lambda n: n["a"] * n["b"],
            lambda n: n["pay"] - n["a"] * (n["b"] - 1),
            lambda n: n["pay"] - n["a"] * n["b"] + n["a"],
            lambda n: n["pay"] - n["a"] * n["b"] + 10,
        ),
    ),
    Template(
        "rate-time",
        "A machine makes {a} toys every hour. It works for {b} hours on Monday and {c} hours on "
        "Tuesday. How many toys does it make on the two days?",
        {"a": (4, 25), "b": (2, 9), "c": (2, 9)},
        lambda n: n["a"] * (n["b"] + n["c"]),
        (
            lambda n: n["a"] * n["b"] + n["c"],
            lambda n: n["a"] + n["b"] + n["c"],
            lambda n: n["a"] * n["b"] * n["c"],
            lambda n: n["a"] * n["b"],
            lambda n: n["a"] * (n["b"] + n["c"] - 1),
        ),
    ),
    Template(
        "split-evenly",
        "{name} bakes {b} trays of {c} cookies and shares them equally among {d} friends. "
        "How many cookies does each friend get?",
        {"d": (2, 6), "q": (2, 9), "c": (4, 12)},
        lambda n: n["q"],
        (
            lambda n: n["b"] * n["c"],
            lambda n: n["q"] + 1,
            lambda n: n["b"] * n["c"] - n["d"],
            lambda n: n["q"] * n["d"] + n["c"],
            lambda n: n["q"] + n["d"],
        ),
    ),
)

NAMES = ("Maria", "Tom", "Aisha", "Kenji", "Lena", "Omar", "Sofia", "Ravi")


def _draw(template: Template, rng: np.random.Generator) -> Numbers:
    numbers = {
        key: int(rng.integers(low, high + 1)) for key, (low, high) in template.ranges.items()
    }
    # Derived quantities keep every problem's answer a positive whole number.
    if template.name == "share-left":
        numbers["total"] = numbers["b"] * numbers["c"] + numbers["extra"]
    if template.name == "price-change":
        numbers["pay"] = numbers["a"] * numbers["b"] + numbers["over"]
    if template.name == "split-evenly":
        # b trays of c cookies must split evenly among d friends: choose b so that d | b*c.
        numbers["b"] = numbers["d"] * numbers["q"]
        numbers["q"] = numbers["q"] * numbers["c"]
    return numbers


def _foils(template: Template, numbers: Numbers, answer: int) -> list[int]:
    foils: list[int] = []
    for mistake in template.mistakes:
        value = mistake(numbers)
        if value > 0 and value != answer and value not in foils:
            foils.append(value)
        if len(foils) == N_OPTIONS - 1:
            return foils
    step = 1
    while len(foils) < N_OPTIONS - 1:  # a rare collision: fall back to near misses
        for value in (answer + step, answer - step):
            if value > 0 and value != answer and value not in foils and len(foils) < N_OPTIONS - 1:
                foils.append(value)
        step += 1
    return foils


def arithmetic_items(count: int, seed: int) -> list[Item]:
    """`count` word problems, generated deterministically from `seed`."""
    rng = np.random.default_rng(seed_from_id("arithmetic", str(seed)))
    return _generate(count, rng, f"arith-{seed}", {})


def arithmetic_calibration_items(count: int, seed: int) -> list[Item]:
    """`count` held-out problems for a calibration split: their own seeded stream and ids
    (`arith-cal-...`), so the main items are unchanged and never share an id with them."""
    rng = np.random.default_rng(seed_from_id("arithmetic-calibration", str(seed)))
    return _generate(count, rng, f"arith-cal-{seed}", {"split": "calibration"})


def _generate(
    count: int, rng: np.random.Generator, prefix: str, extra: dict[str, str]
) -> list[Item]:
    positions = balanced_positions(count, N_OPTIONS, rng)
    items = []
    for index in range(count):
        template = TEMPLATES[index % len(TEMPLATES)]
        numbers = _draw(template, rng)
        name = NAMES[int(rng.integers(len(NAMES)))]
        answer = template.answer(numbers)
        foils = _foils(template, numbers, answer)
        question = template.text.format(name=name, **numbers)
        items.append(
            place(
                f"{prefix}-{index}",
                question,
                str(answer),
                [str(foil) for foil in foils],
                positions[index],
                rng,
                {
                    "template": template.name,
                    "numbers": dict(numbers),
                    "answer": answer,
                    **extra,
                },
            )
        )
    return items
