"""The one exception the analysis raises for bad input, so the CLI can report it in one line."""

from __future__ import annotations


class AnalysisInputError(ValueError):
    """A run directory (or a table given to the analysis) is missing, empty or corrupt.

    The message is a complete sentence naming the file and the problem: the CLI prints it as
    the one-line reason and exits with status 2, never with a traceback.
    """
