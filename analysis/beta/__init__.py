"""The Bayesian beta regression (models A-D of docs/paradigm.md §5) and the fitted-model choice.

`regression` holds the public entry points (`fit_beta_model`, `compare_models`, `transfer`,
`report_tables`); `models` the model, its coding, priors and fit; `likelihood` the beta
likelihood and its gradient; `sampler` the NUTS sampler (PyMC, the optional `bayes` extra);
`comparison` PSIS-LOO and transfer scores; `fitted_model` which fit the report shows (this
regression when it can run, else the Tobit table it is given).

May import: `analysis.errors`, `analysis.engines`, `analysis.data` and each other. Never
`analysis.measures`, `analysis.render` or the orchestration modules
(tests/analysis/test_layers.py checks it).
"""
