"""mindshift: behavioural experiments on language models.

From Python or a notebook (`mindshift.api`):

    import mindshift

    result = mindshift.run("my-experiment.toml", out="runs/my-experiment")
    analysis = mindshift.analyse(result.run_dir)   # writes RUN_DIR/analysis, returns the results
    run = mindshift.load(result.run_dir)           # run.trials: the table every measure reads

This package is also the composition root: the command line (`mindshift.cli`) and the studies
that wire the engine (`harness`), the protocols (`paradigms`) and the analysis (`analysis`)
together. Nothing under `harness/`, `paradigms/` or `analysis/` imports it.

`import mindshift` stays cheap (the command line imports it first): the names below are
imported from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analysis import RunData
    from analysis.analyse import RunAnalysis
    from harness.errors import ConfigError, RunDirError, UserError
    from mindshift.api import RunResult, analyse, load, run

__all__ = [
    "ConfigError",
    "RunAnalysis",
    "RunData",
    "RunDirError",
    "RunResult",
    "UserError",
    "analyse",
    "load",
    "run",
]

_HOMES = {
    "run": "mindshift.api",
    "load": "mindshift.api",
    "analyse": "mindshift.api",
    "RunResult": "mindshift.api",
    "RunAnalysis": "analysis.analyse",
    "RunData": "analysis",
    "UserError": "harness.errors",
    "ConfigError": "harness.errors",
    "RunDirError": "harness.errors",
}
"""Where each public name lives."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mindshift' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # found once; later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
