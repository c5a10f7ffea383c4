"""mindshift's composition root: the command line and the studies that wire the engine
(`harness`), the protocols (`paradigms`) and the analysis (`analysis`) together.

Nothing under `harness/`, `paradigms/` or `analysis/` imports this package.
"""
