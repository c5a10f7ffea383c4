"""The change-of-mind paradigm: its settings, conditions and prompts."""

from mindshift.paradigms.change_of_mind.paradigm import ChangeOfMind, ChangeOfMindSettings

__all__ = ["ChangeOfMind", "ChangeOfMindSettings"]
