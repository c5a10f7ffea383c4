"""Stimulus domains: generators of multiple-choice items from data that ships with a package,
or from the user's own file. `domain_items` is the one entry point paradigms use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mindshift.harness.types import Item
from mindshift.paradigms.domains.arithmetic import arithmetic_calibration_items, arithmetic_items
from mindshift.paradigms.domains.latitude import (
    LATITUDE_DIFFICULTIES,
    latitude_calibration_items,
    latitude_items,
)
from mindshift.paradigms.domains.user_file import QuestionFileError, file_items
from mindshift.paradigms.domains.world_facts import world_facts_calibration_items, world_facts_items

BUILT_IN_DOMAINS = ("latitude", "world-facts", "arithmetic")
FILE_PREFIX = "file:"


def check_domain(domain: str) -> str:
    """The domain name, or ValueError naming the choices."""
    if domain in BUILT_IN_DOMAINS or (
        domain.startswith(FILE_PREFIX) and len(domain) > len(FILE_PREFIX)
    ):
        return domain
    raise ValueError(f"unknown domain {domain!r} (known: {', '.join(BUILT_IN_DOMAINS)}, file:PATH)")


def domain_items(domain: str, count: int, difficulty: str, seed: int) -> list[Item]:
    """`count` items of a domain, deterministic in `seed`. `difficulty` applies to latitude.

    A `file:PATH` is read relative to the current directory.
    """
    if domain == "latitude":
        return latitude_items(count, difficulty, seed)
    if domain == "world-facts":
        return world_facts_items(count, seed)
    if domain == "arithmetic":
        return arithmetic_items(count, seed)
    check_domain(domain)
    return file_items(_path(domain), count)


def domain_calibration_items(
    domain: str, count: int, difficulty: str, seed: int, *, main_count: int
) -> list[Item]:
    """`count` held-out items (asked at stage 1 only), disjoint from the `main_count` items of
    `domain_items(domain, main_count, difficulty, seed)`, which they leave unchanged.

    Generated domains draw them from a seeded stream of their own. A `file:PATH` has no
    generator: its calibration items are the `count` rows after the first `main_count` (the
    file's author decides which questions are held out, as with the option order).
    """
    if count == 0:
        return []
    if domain == "latitude":
        return latitude_calibration_items(count, difficulty, seed, main_count=main_count)
    if domain == "world-facts":
        return world_facts_calibration_items(count, seed, main_count=main_count)
    if domain == "arithmetic":
        return arithmetic_calibration_items(count, seed)
    check_domain(domain)
    path = _path(domain)
    rows = file_items(path, None)
    if main_count + count > len(rows):
        raise QuestionFileError(
            f"{path} has {len(rows)} questions: {main_count} main items and {count} "
            "calibration items (the rows after them) were asked for"
        )
    return [
        replace(item, meta={**item.meta, "split": "calibration"})
        for item in rows[main_count : main_count + count]
    ]


def _path(domain: str) -> Path:
    return Path(domain.removeprefix(FILE_PREFIX)).expanduser()


__all__ = [
    "BUILT_IN_DOMAINS",
    "LATITUDE_DIFFICULTIES",
    "QuestionFileError",
    "check_domain",
    "domain_calibration_items",
    "domain_items",
    "latitude_items",
]
