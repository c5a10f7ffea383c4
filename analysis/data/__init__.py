"""Reading and preparing a run: the data layer of the analysis.

The trials table's contract (`schema`: the engine's columns and the advice protocols'),
reading a run directory (`load`), the stage-1 table (`stage1`), temperature scaling of the
confidence readout (`temperature`), framing on the displayed answer (`framing`), the
preparation every measure reads (`prepare`), each condition's last turn (`turns`) and the
report's example trials (`examples`).
Nothing here computes a measure: it shapes the data the measures are computed from.

May import: `analysis.errors`, `analysis.engines` and each other. Never `analysis.beta`,
`analysis.measures`, `analysis.render` or the orchestration modules
(tests/analysis/test_layers.py checks it). Outside the analysis: the run directory's format
and the call record (`harness.run_format`, `harness.record`), the engine's columns
(`harness.trials_table`) and the paradigms' column models (`paradigms.columns`).
"""
