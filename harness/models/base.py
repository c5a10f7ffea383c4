"""What every backend is given (the model it runs) and provides (capabilities, and answers
to batches of choice requests)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from mindshift.harness.batch_api import BatchApi
from mindshift.harness.types import ChoiceRequest, ChoiceResponse, ReplyRequest, ReplyResponse


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, shown by `mindshift models` and checked before a run starts."""

    logprobs: bool
    """Confidence can be read from token probabilities (otherwise: choice-only)."""
    top_k_limit: int | None
    """How many alternatives per position the provider returns; None: the full distribution."""
    prefill: bool
    """The assistant turn can be started with the answer prefix."""
    prompt_logprobs: bool
    """Log-probabilities of given prompt tokens (scores multi-token options)."""
    batch: bool
    """Several requests are answered in one forward pass or one batch job."""
    choice_only: bool = False
    """Runs without confidences (no logprobs): only measures of choices can use it."""
    replies: bool = False
    """Free-text replies (`reply`): the readouts without logprobs (sampling, verbal, ptrue)."""
    reply_n: bool = False
    """Several sampled replies in one request (`n`); otherwise one request per reply."""
    reply_prefill: bool = False
    """Free-text replies can continue an answer prefix (`ReplyRequest.answer_prefix`)."""


@dataclass(frozen=True)
class ModelRef:
    """Which `[[models]]` entry a backend runs: the facts every provider needs besides its
    own settings (the registry builds it from the entry; a backend never sees the config)."""

    id: str
    """The entry's id, as the run, its messages and the analysis name the model."""
    spec: str
    """`provider:name` as written in the config."""

    @property
    def provider(self) -> str:
        """The spec's prefix (`openai` in `openai:gpt-4o`)."""
        return self.spec.partition(":")[0]

    @property
    def name(self) -> str:
        """The spec's model name (`gpt-4o` in `openai:gpt-4o`): what the provider is asked for."""
        return self.spec.partition(":")[2]


class ModelBackend(ABC):
    """A model that answers multiple-choice prompts.

    Backends know nothing of paradigms: they see prompts, sampling settings and seeds. The
    runner sends them batches no larger than `max_batch_size`; a backend whose work is
    blocking (a forward pass on the CPU) does it off the event loop.
    """

    capabilities: Capabilities
    max_batch_size: int = 1
    attempt_timeout_s: float | None = None
    """The timeout of one attempt at a call (API backends); the runner enforces it as a hard
    limit too. None: no limit (in-process models, whose batches take what they take)."""

    @abstractmethod
    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        """Answer each request, in order, with one attempt each.

        A failed call is a response with `error` (and `transient` when another attempt may
        fix it), never an exception: the runner retries (`harness.retry`) and stores it.
        Raise only for what stops the whole run (`UserError`: a revoked key, a vanished model).
        """

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        """Answer each request with its `n` sampled free-text replies, one attempt each.

        Failures are responses with `error` (and `transient`), as for `answer`. Backends
        without free-text replies (`capabilities.replies` False) keep this default, which
        the readouts never reach: a config asking for such a readout is refused first.
        """
        raise NotImplementedError(f"{type(self).__name__} gives no free-text replies")

    async def preflight(self, *, logprobs: bool = True) -> None:  # noqa: B027 - often nothing
        """Check, before any trial is run, that the model can do what the run asks.

        `logprobs`: whether the model's readout reads token logprobs; when not (a readout
        by free-text replies, `harness.readouts`), their check is left out.

        Called once per backend before the runner starts (and before the manifest is
        written, so `describe` can report what it found). API backends send one cheap
        request here; servers are started here. Raise `UserError` with the fix in one line.
        """

    def batch_api(self) -> BatchApi | None:
        """The provider's batch API for `--batch` runs; None when it has none."""
        return None

    def describe(self) -> dict[str, str]:
        """Facts about the model worth keeping in the run's manifest (versions, paths)."""
        return {}

    async def aclose(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release what the backend holds (servers, clients, memory)."""
