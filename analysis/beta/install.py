"""The command that adds the `bayes` extra, which the beta regression needs."""

from __future__ import annotations

from typing import Final

from mindshift.harness.extras import install_command

BAYES_EXTRA: Final = "bayes"
"""PyMC, ArviZ and numba."""


def bayes_install_command() -> str:
    """`install_command` of the `bayes` extra, for this installation
    (`harness.extras`)."""
    return install_command(BAYES_EXTRA)
