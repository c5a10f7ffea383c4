"""Paradigms: one module (or folder) each; registered here by name.

Adding a paradigm: write a `harness.paradigm.Paradigm` subclass in its own module and add it
to `PARADIGMS`. No file under `harness/` changes.
"""

from harness.paradigm import Paradigm
from paradigms.change_of_mind import ChangeOfMind

PARADIGMS: dict[str, type[Paradigm]] = {ChangeOfMind.name: ChangeOfMind}

__all__ = ["PARADIGMS", "ChangeOfMind"]
