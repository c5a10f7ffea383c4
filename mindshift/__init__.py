"""mindshift: behavioural experiments on language models.

From Python or a notebook (`mindshift.api`):

    import mindshift

    result = mindshift.run("my-experiment.toml", out="runs/my-experiment")
    analysis = mindshift.analyse(result.run_dir)   # writes RUN_DIR/analysis, returns the results
    run = mindshift.load(result.run_dir)           # run.trials: the table every measure reads

The code lives in three subpackages: the engine (`mindshift.harness`), the protocols
(`mindshift.paradigms`) and the analysis (`mindshift.analysis`); in the repository they are the
top-level folders `harness/`, `paradigms/` and `analysis/`, linked here. The modules beside
them are the composition root: the command line (`mindshift.cli`), the notebook API
(`mindshift.api`) and the studies that wire the three together. No module of the three
imports the composition root. Docstrings and comments inside the three name their modules
without the `mindshift.` prefix (`harness.record` is `mindshift.harness.record`).

`import mindshift` stays cheap (the command line imports it first): the names below are
imported from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mindshift.analysis import RunData
    from mindshift.analysis.analyse import RunAnalysis
    from mindshift.api import RunResult, analyse, load, run
    from mindshift.harness.errors import ConfigError, RunDirError, UserError

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
    "RunAnalysis": "mindshift.analysis.analyse",
    "RunData": "mindshift.analysis",
    "UserError": "mindshift.harness.errors",
    "ConfigError": "mindshift.harness.errors",
    "RunDirError": "mindshift.harness.errors",
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
