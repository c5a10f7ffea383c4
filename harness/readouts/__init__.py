"""Readouts: how a trial's answer and its confidence are read from a model.

`logprobs` is the backend's own (token probabilities at the answer position, `harness.readout`).
The others need no logprobs and reach the model through free-text replies
(`ModelBackend.reply`): `sampling` (the frequency of N sampled answers), `verbal` (a confidence
stated with the answer), `verbal-2stage` (stated in a follow-up turn) and `ptrue` (the
probability of "true" for the model's own answer). Each is one module; `backend` wraps a
provider's backend in the readout a model entry asks for.
"""

from mindshift.harness.readouts.backend import (
    CHOICE_ONLY,
    AutoReadoutBackend,
    ReadoutBackend,
    check_readout,
    make_readout,
    readout_name_of,
    resolve_auto,
)
from mindshift.harness.readouts.base import CallShape, Readout

__all__ = [
    "CHOICE_ONLY",
    "AutoReadoutBackend",
    "CallShape",
    "Readout",
    "ReadoutBackend",
    "check_readout",
    "make_readout",
    "readout_name_of",
    "resolve_auto",
]
