"""Measures: one module per measure, each a pure function of the prepared trials.

Each measure module declares its `Measure` and registers it (`analysis.measures.registry`);
`results` computes every registered measure into one `Results`, which the render layer draws.
`cells` is the cell-mean implementation the per-cell measures share, `fit` the Tobit update
fit every analysis runs, `transfer` the fit of one run scored on another.

The built-in measures (BUILT_IN) are imported here, in the paper's order, so that importing
the package registers them in that order: the order of the CSV tables, of summary.json's
entries, of the figures and of the terminal table. A measure module imports only measure
modules before it in BUILT_IN (tests/analysis/test_registry.py checks that the registry's
order is BUILT_IN's). Every other module of this package is imported after them, in name
order, so a measure module added here registers without being listed anywhere (its measures
come after the built-in ones); a measure outside the package registers when its module is
imported.

May import: `analysis.errors`, `analysis.engines`, `analysis.data`, `analysis.beta` and each
other. Never `analysis.render` or the orchestration modules
(tests/analysis/test_layers.py checks it).
"""

import importlib
import pkgutil
from typing import Final

BUILT_IN: Final = (
    "design",
    "accuracy",
    "calibration",
    "change_of_mind",
    "com_regression",
    "switching",
    "confidence_change",
    "choice_support",
    "oucs",
    "overweighting",
    "clip_sensitivity",
    "conditions",
    "sequences",
    "turns",
    "readouts",
)
"""The built-in measure modules, in the order their measures register."""

for _module in BUILT_IN:
    importlib.import_module(f"{__name__}.{_module}")
for _found in sorted(info.name for info in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_found}")
