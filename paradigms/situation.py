"""The structured facts every stage prompt carries for the simulated agent (the `situation`).

docs/protocols.md lists the keys. Each protocol adds its own (display, advice, advisors, ...)
to the common core built here, so the stage-1 answer is always handed on the same way.
"""

from __future__ import annotations

from harness.paradigm import InitialAnswer, Item
from harness.types import JsonValue


def initial_situation(item: Item) -> dict[str, JsonValue]:
    """Stage 1: the item and its correct label (the agent's knowledge is per item)."""
    return {"stage": 1, "item_id": item.item_id, "correct": item.correct}


def followup_situation(
    item: Item, initial: InitialAnswer, **facts: JsonValue
) -> dict[str, JsonValue]:
    """Stage 2: the stage-1 answer (choice, confidence, full distribution) plus `facts`."""
    return {
        "stage": 2,
        "item_id": item.item_id,
        "correct": item.correct,
        "initial_choice": initial.choice,
        "initial_confidence": initial.confidence,
        "initial_probs": initial.probs,
        **facts,
    }
