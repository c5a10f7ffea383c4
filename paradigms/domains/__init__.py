"""Stimulus domains: generators of multiple-choice items from data that ships with a package."""

from paradigms.domains.latitude import LATITUDE_DIFFICULTIES, latitude_items

__all__ = ["LATITUDE_DIFFICULTIES", "latitude_items"]
