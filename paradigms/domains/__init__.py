"""Stimulus domains: generators of multiple-choice items from data that ships with a package,
or from the user's own file. `domain_items` is the one entry point paradigms use."""

from __future__ import annotations

from pathlib import Path

from harness.paradigm import Item
from paradigms.domains.arithmetic import arithmetic_items
from paradigms.domains.latitude import LATITUDE_DIFFICULTIES, latitude_items
from paradigms.domains.user_file import QuestionFileError, file_items
from paradigms.domains.world_facts import world_facts_items

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
    return file_items(Path(domain.removeprefix(FILE_PREFIX)).expanduser(), count)


__all__ = [
    "BUILT_IN_DOMAINS",
    "LATITUDE_DIFFICULTIES",
    "QuestionFileError",
    "check_domain",
    "domain_items",
    "latitude_items",
]
