"""Rendering computed results: summary.json, summary.md, tables/*.csv, figures and report.html.

Each renderer is a pure function of `Results` (`analysis.measures.results`): `summary`,
`summary_md`, `tables`, `figures` and `report`; `outputs` writes them all into an analysis
directory at once. The measures a renderer shows come from the measure registry
(`analysis.measures.registry`) where they follow its pattern.

May import: every lower layer (`analysis.errors`, `analysis.engines`, `analysis.data`,
`analysis.beta`, `analysis.measures`) and each other. Never the orchestration modules
(`analysis.analyse`, `analysis.compare`) (tests/analysis/test_layers.py checks it).
"""
