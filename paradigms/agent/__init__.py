"""Simulated participants of the advice protocols: agents with known parameters that read a
turn's typed facts (`paradigms.facts.AdviceFacts`) instead of its text, for tests, parameter
recovery, power analysis and runs without a model.

`sim_bayes` is the one agent today (`sim:bayes`, docs/design.md's "The simulated agent"); its
`PROVIDER` is registered under the entry-point group `mindshift.backends`.
"""

from mindshift.paradigms.agent.sim_bayes import (
    PROVIDER,
    SimBayesBackend,
    SimBayesParams,
    SimulatedBlock,
)

__all__ = ["PROVIDER", "SimBayesBackend", "SimBayesParams", "SimulatedBlock"]
