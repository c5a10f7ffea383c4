"""A backend read through a readout: what the runner calls for a model entry's `readout`.

`ReadoutBackend` wraps the provider's backend and answers each trial's ChoiceRequest through
its readout (`harness.readouts`), so the runner, the retries and the run store see one call
and one record per trial whatever the readout. `choose_readout` resolves a model entry's
`readout` against what its backend can do, before anything is spent.
"""

from __future__ import annotations

from collections.abc import Sequence

from mindshift.harness.batch_api import BatchApi
from mindshift.harness.errors import ConfigError, UserError
from mindshift.harness.models.base import Capabilities, ModelBackend
from mindshift.harness.models.logprob_check import LogprobsUnusable
from mindshift.harness.readouts.base import Readout
from mindshift.harness.readouts.batch import ReadoutBatch
from mindshift.harness.readouts.ptrue import PTrueReadout
from mindshift.harness.readouts.sampling import SamplingReadout
from mindshift.harness.readouts.verbal import TwoStageVerbalReadout, VerbalReadout
from mindshift.harness.types import ChoiceRequest, ChoiceResponse, ReplyRequest, ReplyResponse

CHOICE_ONLY = "choice-only"
"""The readout name of a model run for its choices only (no confidence at all)."""


def make_readout(name: str, samples: int, capabilities: Capabilities) -> Readout | None:
    """The readout of a model entry (None: the backend's own token logprobs, or choices
    only for a choice-only backend)."""
    if name == "logprobs":
        return None
    if name == "sampling":
        return SamplingReadout(samples)
    if name == "verbal":
        return VerbalReadout()
    if name == "verbal-2stage":
        return TwoStageVerbalReadout()
    if name == "ptrue":
        return PTrueReadout(samples, logprobs=capabilities.logprobs)
    raise ValueError(f"unknown readout {name!r}")


def check_readout(model_id: str, spec: str, name: str, capabilities: Capabilities) -> None:
    """ConfigError (one line naming the fix) unless the backend can give this readout."""
    where = f"model '{model_id}' ({spec})"
    if name in ("sampling", "verbal", "verbal-2stage") and not capabilities.replies:
        raise ConfigError(
            f"{where}: readout {name!r} needs free-text replies, which this provider does not "
            'give; use readout = "logprobs"'
        )
    if name == "ptrue" and not (capabilities.logprobs or capabilities.replies):
        raise ConfigError(f"{where}: readout 'ptrue' needs logprobs or free-text replies")
    if name == "logprobs" and not capabilities.logprobs and not capabilities.choice_only:
        fix = 'readout = "sampling" or "verbal"' if capabilities.replies else "another provider"
        raise ConfigError(f"{where} returns no token logprobs; use {fix}")


def resolve_auto(capabilities: Capabilities) -> str:
    """`auto` before the preflight: logprobs where the provider offers them, else sampling
    (the preflight may still find the logprobs unusable and switch to sampling)."""
    return "logprobs" if capabilities.logprobs else "sampling"


def readout_batch(inner: ModelBackend, readout: Readout) -> BatchApi | None:
    """The provider's batch API with each trial read through `readout` (one line per trial
    call); UserError for a readout that needs more than one line per call."""
    api = inner.batch_api()
    if api is None:
        return None
    if isinstance(readout, VerbalReadout) or (
        isinstance(readout, SamplingReadout) and inner.capabilities.reply_n
    ):
        return ReadoutBatch(api, readout)
    why = (
        "it asks twice per call"
        if isinstance(readout, TwoStageVerbalReadout | PTrueReadout)
        else "the provider takes no n, so it needs one request per sample"
    )
    raise UserError(
        f"readout {readout.name!r} cannot run under --batch ({why}): use "
        'readout = "verbal" (or "sampling" on a provider with n), or run without --batch'
    )


class ReadoutBackend(ModelBackend):
    """The provider's backend, each trial answered through a readout."""

    def __init__(self, inner: ModelBackend, readout: Readout) -> None:
        self.inner = inner
        self.readout = readout
        self.capabilities = inner.capabilities
        self.max_batch_size = inner.max_batch_size
        steps = readout.shape(inner.capabilities.reply_n).requests
        # Steps of one trial run one after another at worst: give each the inner limit.
        timeout = inner.attempt_timeout_s
        self.attempt_timeout_s = None if timeout is None else timeout * max(1, min(steps, 4))

    @property
    def readout_name(self) -> str:
        return self.readout.name

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        return await self.readout.read(self.inner, requests)

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        return await self.inner.reply(requests)

    async def preflight(self, *, logprobs: bool = True) -> None:
        # A readout by replies needs none of the backend's logprobs: not checked. P(True)
        # by logprobs needs them.
        needs = isinstance(self.readout, PTrueReadout) and self.readout.logprobs
        await self.inner.preflight(logprobs=needs)

    def batch_api(self) -> BatchApi | None:
        return readout_batch(self.inner, self.readout)

    def describe(self) -> dict[str, str]:
        shape = self.readout.shape(self.inner.capabilities.reply_n)
        return {
            **self.inner.describe(),
            "readout": self.readout.name,
            "readout_calls": shape.note,
        }

    async def aclose(self) -> None:
        await self.inner.aclose()


class AutoReadoutBackend(ModelBackend):
    """`readout = "auto"`: the backend's token logprobs when its preflight finds them usable,
    else sampling. The manifest's backend description says which, and why."""

    def __init__(self, inner: ModelBackend, samples: int) -> None:
        self.inner = inner
        self.samples = samples
        self.capabilities = inner.capabilities
        self.max_batch_size = inner.max_batch_size
        self.readout: Readout | None = None
        self.why = "not decided yet: the preflight decides"
        self.attempt_timeout_s = inner.attempt_timeout_s

    def _sampling(self, why: str) -> None:
        self.readout = SamplingReadout(self.samples)
        self.why = why
        timeout = self.inner.attempt_timeout_s
        requests = self.readout.shape(self.inner.capabilities.reply_n).requests
        self.attempt_timeout_s = None if timeout is None else timeout * max(1, min(requests, 4))

    async def preflight(self, *, logprobs: bool = True) -> None:
        if not self.inner.capabilities.logprobs:
            await self.inner.preflight(logprobs=False)
            self._sampling("the provider gives no token logprobs")
            return
        try:
            await self.inner.preflight()
        except LogprobsUnusable as error:
            if not self.inner.capabilities.replies:
                raise
            self._sampling(f"logprobs unusable: {error.reason}")
            return
        self.why = "the preflight found its token logprobs usable"

    @property
    def readout_name(self) -> str:
        return "logprobs" if self.readout is None else self.readout.name

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        if self.readout is None:
            return await self.inner.answer(requests)
        return await self.readout.read(self.inner, requests)

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        return await self.inner.reply(requests)

    def batch_api(self) -> BatchApi | None:
        # The runner asks for the batch API after the preflight has chosen the readout; without
        # this override `--batch` under `auto` sent every call singly at full price.
        if self.readout is None:
            return self.inner.batch_api()
        return readout_batch(self.inner, self.readout)

    def describe(self) -> dict[str, str]:
        return {
            **self.inner.describe(),
            "readout": f"auto: {self.readout_name}",
            "readout_why": self.why,
        }

    async def aclose(self) -> None:
        await self.inner.aclose()


def readout_name_of(backend: ModelBackend) -> str:
    """How a backend's trials are read: its readout, token logprobs, or choices only."""
    if isinstance(backend, ReadoutBackend | AutoReadoutBackend):
        return backend.readout_name
    caps = backend.capabilities
    return "logprobs" if caps.logprobs else CHOICE_ONLY
