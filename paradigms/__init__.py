"""Paradigms: one module (or folder) each; registered here by name.

Adding a paradigm: write a `harness.paradigm.Paradigm` subclass in its own module and add it
to `PARADIGMS` (docs/protocols.md walks through one). No file under `harness/` changes.
"""

from mindshift.harness.paradigm import Paradigm
from mindshift.paradigms.are_you_sure import AreYouSure
from mindshift.paradigms.change_of_mind import ChangeOfMind
from mindshift.paradigms.flip_flop import FlipFlop
from mindshift.paradigms.multi_advice import MultiAdvice
from mindshift.paradigms.sequential_advice import SequentialAdvice

PARADIGMS: dict[str, type[Paradigm]] = {
    paradigm.name: paradigm
    for paradigm in (ChangeOfMind, AreYouSure, MultiAdvice, FlipFlop, SequentialAdvice)
}

__all__ = ["PARADIGMS", "AreYouSure", "ChangeOfMind", "FlipFlop", "MultiAdvice", "SequentialAdvice"]
