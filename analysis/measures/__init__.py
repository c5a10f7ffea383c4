"""Measures: one module per measure, each a pure function of the prepared trials.

May import: `analysis.errors`, `analysis.engines`, `analysis.data`, `analysis.beta` and each
other. Never `analysis.render` or the orchestration modules
(tests/analysis/test_layers.py checks it).
"""
