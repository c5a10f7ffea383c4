"""Numerical engines: the lowest layer of the analysis.

The clipping rule for log-odds (`logodds`), item-clustered standard errors (`clustered`), the
logistic and Tobit regressions (`logistic`, `tobit`) and the ideal Bayesian observer (`bayes`).
They compute on arrays and columns, and know nothing of run directories, measures or reports.

May import: `analysis.errors` and each other. Never `analysis.data`, `analysis.beta`,
`analysis.measures`, `analysis.render` or the orchestration modules
(tests/analysis/test_layers.py checks it).
"""
