"""A local transformers checkpoint as a backend, read through its exact next-token distribution.

Serves `hf:<path>` and, through the converted cache folder, `local:smollm2`. Each prompt is
rendered with the model's own chat template, the answer prefix is written as the start of
the assistant turn (a prefill), and the option labels are read from the full softmax at the
next position: nothing is truncated to a top-k, so no label is ever censored.

Requests are answered in batches: prompts are right-padded, and the LM head is applied only
at each row's last real token (full-vocabulary logits at every position would be a large
share of the cost). When the prompts of a batch share a long token prefix (the 36 stage-2
conditions of one item do), that prefix is run once and its key/value cache is repeated
across the batch.

Free-text replies (`reply`, for the readouts that need no logprobs) come from the model's own
`generate`: the chat is rendered with the same template and an open assistant turn, written
with the request's answer prefix when it has one (the sampling readout sends the prompt's own,
so its first generated token comes from the distribution `answer` reads), and the `n` replies
of a request are
sampled as one batch of `n` rows from the full softmax at the request's temperature (no top-k
or top-p truncation; temperature 0 is greedy). The prompt is run once and its key/value cache
repeated across the rows. Each request is seeded from its own `seed`, so its replies do not
depend on what else was in the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
from transformers.utils import logging as _transformers_logging

from mindshift.harness.errors import ModelUnavailableError
from mindshift.harness.models.base import ModelBackend
from mindshift.harness.models.transformers_settings import (
    CAPABILITIES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_REPLY_TOKENS,
)
from mindshift.harness.readout import ReadoutError, readout_from_masses, sample_choice
from mindshift.harness.types import (
    ChoiceRequest,
    ChoiceResponse,
    JsonValue,
    Message,
    Prompt,
    ReplyRequest,
    ReplyResponse,
    Usage,
)

TOP_LOGPROBS = 20
"""How many of the most likely next tokens are kept in each readout (for inspection)."""
MIN_SHARED_PREFIX = 16
"""Shorter common prefixes are not worth a separate forward pass and a cache copy."""
MAX_REPLY_ROWS = 64
"""Most replies generated in one batch: a larger `n` is generated in chunks of this many rows,
each with its own copy of the prompt's key/value cache (which grows with every row)."""

# Transformers' logging helpers carry no annotations; typed calls into them go through Any.
_hf_logging = cast(Any, _transformers_logging)


class ChatTemplating(Protocol):
    """The one tokenizer method `render_prompt` needs (any transformers tokenizer has it)."""

    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: Any) -> Any: ...


def render_prompt(tokenizer: ChatTemplating, prompt: Prompt) -> str:
    """The exact text the model reads: chat template, open assistant turn, answer prefix.

    Exposed so that other backends serving the same weights (vLLM) and tests can check
    that they feed the model the identical string.
    """
    return render_chat(tokenizer, prompt.messages, prompt.answer_prefix)


def render_chat(
    tokenizer: ChatTemplating, messages: Sequence[Message], answer_prefix: str = ""
) -> str:
    """The chat in the model's template with an open assistant turn, then `answer_prefix`."""
    text = tokenizer.apply_chat_template(
        [message.to_json() for message in messages],
        tokenize=False,
        add_generation_prompt=True,
    )
    if not isinstance(text, str):
        raise TypeError(f"chat template rendered {type(text).__name__}, expected str")
    return text + answer_prefix


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars, log messages and warnings for the block.

    Library code never writes to the terminal (the CLI owns it); the previous settings are
    restored afterwards so that a caller who wants the messages still gets them elsewhere.
    """
    verbosity = _hf_logging.get_verbosity()
    bars = _hf_logging.is_progress_bar_enabled()
    _hf_logging.set_verbosity_error()
    _hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        _hf_logging.set_verbosity(verbosity)
        if bars:
            _hf_logging.enable_progress_bar()


class TransformersBackend(ModelBackend):
    """A causal LM from a local checkpoint folder, run on the CPU in float32."""

    capabilities = CAPABILITIES

    def __init__(
        self,
        folder: str | Path,
        *,
        max_batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
        share_prefix: bool = True,
    ) -> None:
        """Load model and tokenizer from `folder` (a `save_pretrained` folder, no hub access).

        `threads` sets torch's intra-op thread count, which is process-wide in torch.
        `share_prefix` runs a batch's common token prefix once (results agree to ~1e-6).
        """
        path = Path(folder).expanduser()
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"no transformers checkpoint (config.json) in {path}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if threads is not None:
            torch.set_num_threads(threads)
        self.folder = path
        self.max_batch_size = max_batch_size
        self.share_prefix = share_prefix
        with quiet_transformers():
            # Held as Any: transformers' own annotations leave most methods untyped.
            self._tokenizer = cast(Any, AutoTokenizer.from_pretrained(path, local_files_only=True))
            self._model = cast(
                Any,
                AutoModelForCausalLM.from_pretrained(
                    path, dtype=torch.float32, local_files_only=True
                ),
            )
        self._model.eval()
        self._pad_id = _pad_token_id(self._tokenizer)
        head = self._model.get_output_embeddings()
        self._vocab_size = (
            int(head.weight.shape[0]) if head is not None else int(self._model.config.vocab_size)
        )
        # Decoded once: label matching and top-token display both read this table.
        decodable = min(self._vocab_size, len(self._tokenizer))
        self._token_text: list[str] = list(
            self._tokenizer.batch_decode([[i] for i in range(decodable)])
        ) + [""] * (self._vocab_size - decodable)
        self._label_ids: dict[tuple[str, ...], dict[str, torch.Tensor]] = {}
        self._cache_kwarg = _cache_kwarg(self._model)
        self._stop_ids = _stop_token_ids(self._model, self._tokenizer)
        self._rows_keep_logits = self._supports_row_logits()
        # Sharing a prefix needs per-row logits and a cache that can be repeated per row
        # (transformers' DynamicCache can; an architecture with its own cache may not).
        self._prefix_cache_works = self._rows_keep_logits
        # One forward pass at a time: concurrent calls would only fight over the same cores.
        self._lock = threading.Lock()

    def render(self, prompt: Prompt) -> str:
        """The exact prompt text this backend feeds its model."""
        return render_prompt(self._tokenizer, prompt)

    def label_token_ids(self, labels: Sequence[str]) -> dict[str, list[int]]:
        """Every vocabulary id whose decoded text, stripped of whitespace, is each label."""
        return {label: ids.tolist() for label, ids in self._ids_for(tuple(labels)).items()}

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        """Answer each request, in order; the forward passes run off the event loop."""
        if not requests:
            return []
        return await asyncio.to_thread(self.answer_blocking, list(requests))

    def answer_blocking(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        """`answer` without the event loop, for benchmarks and scripts."""
        with self._lock, torch.inference_mode():
            encoded = [self._encode(request.prompt) for request in requests]
            # Sorting by length before chunking keeps padding small when lengths differ.
            order = sorted(range(len(requests)), key=lambda i: len(encoded[i]))
            answered: dict[int, ChoiceResponse] = {}
            for start in range(0, len(order), self.max_batch_size):
                chunk = order[start : start + self.max_batch_size]
                began = time.perf_counter()
                logprobs = self._next_token_logprobs([encoded[i] for i in chunk])
                # Every request of a batch waited for the whole forward pass.
                latency = time.perf_counter() - began
                for row, index in enumerate(chunk):
                    answered[index] = self._respond(
                        requests[index], len(encoded[index]), logprobs[row], latency
                    )
            return [answered[i] for i in range(len(requests))]

    async def reply(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        """Each request's `n` generated replies, in order; generation runs off the event loop."""
        if not requests:
            return []
        return await asyncio.to_thread(self.reply_blocking, list(requests))

    def reply_blocking(self, requests: Sequence[ReplyRequest]) -> list[ReplyResponse]:
        """`reply` without the event loop, for benchmarks and scripts.

        A request's `answer_prefix` starts its assistant turn, as a prompt's prefix does for
        `answer`: with the prompt's own prefix the first generated token is drawn from exactly
        the distribution `answer` reads (bench/check_sampling_vs_logprobs.py compares them).

        Requests are generated one after another, each as one batch of its `n` rows: one
        request's rows already fill the cores, and a request generated alone draws its
        replies from its own seed whatever else the call held.
        """
        with self._lock, torch.inference_mode():
            return [self._reply_one(request) for request in requests]

    def describe(self) -> dict[str, str]:
        return {
            "folder": str(self.folder),
            "model_type": str(self._model.config.model_type),
            "dtype": str(self._model.dtype).removeprefix("torch."),
            "vocab_size": str(self._vocab_size),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_threads": str(torch.get_num_threads()),
        }

    def _encode(self, prompt: Prompt) -> list[int]:
        return self._encode_text(self.render(prompt))

    def _encode_text(self, text: str) -> list[int]:
        # The rendered template already holds the special tokens (BOS, turn markers):
        # adding them again would change what the model reads.
        ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError("the rendered prompt is empty")
        return [int(i) for i in ids]

    def _reply_one(self, request: ReplyRequest) -> ReplyResponse:
        began = time.perf_counter()
        answer_prefix = request.answer_prefix or ""
        problem = _reply_request_problem(request)
        if problem is not None:
            return ReplyResponse(texts=(), raw={}, error=problem)
        prompt_ids = self._encode_text(
            render_chat(self._tokenizer, request.messages, answer_prefix)
        )
        new_tokens = request.max_tokens or DEFAULT_REPLY_TOKENS[request.asked.kind]
        greedy = request.temperature == 0
        # Greedy decoding gives one reply whatever the seed: it is generated once and repeated.
        rows = self._generate(
            prompt_ids,
            rows=1 if greedy else request.n,
            temperature=request.temperature,
            seed=request.seed,
            new_tokens=new_tokens,
        )
        if greedy:
            rows = rows * request.n
        texts = tuple(
            str(text) for text in self._tokenizer.batch_decode(rows, skip_special_tokens=True)
        )
        stops = set(self._stop_ids)
        raw: dict[str, JsonValue] = {
            "prompt_tokens": len(prompt_ids),
            "answer_prefix": answer_prefix,
            "generated_tokens": [list(row) for row in rows],
            "finish_reasons": ["stop" if row and row[-1] in stops else "length" for row in rows],
        }
        usage = Usage(input_tokens=len(prompt_ids), output_tokens=sum(len(row) for row in rows))
        return ReplyResponse(
            texts=texts, raw=raw, usage=usage, latency_s=time.perf_counter() - began
        )

    def _generate(
        self, prompt_ids: list[int], *, rows: int, temperature: float, seed: int, new_tokens: int
    ) -> list[list[int]]:
        """`rows` continuations of the prompt by the model's `generate`, each cut after its
        first stop token (which it keeps: the model produced it)."""
        config = cast(Any, GenerationConfig)(
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else None,
            # Transformers would otherwise keep only the 50 likeliest tokens: the replies
            # are drawn from the full softmax, the distribution `answer` reads.
            top_k=0 if temperature > 0 else None,
            top_p=1.0 if temperature > 0 else None,
            max_new_tokens=new_tokens,
            num_return_sequences=1,
            eos_token_id=self._stop_ids,
            pad_token_id=self._pad_id,
        )
        prompt = torch.tensor([prompt_ids], dtype=torch.long)
        prefix_cache = self._prompt_cache(prompt) if rows > 1 else None
        generated: list[list[int]] = []
        # Seeded once per request, the global generator saved and restored around it: the
        # rows' draws follow one another in a fixed order, whatever ran before.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for start in range(0, rows, MAX_REPLY_ROWS):
                count = min(MAX_REPLY_ROWS, rows - start)
                inputs = prompt.expand(count, -1)
                kwargs: dict[str, Any] = {}
                if prefix_cache is not None:
                    cache = copy.deepcopy(prefix_cache)
                    cache.batch_repeat_interleave(count)
                    kwargs[self._cache_kwarg] = cache
                output = self._model.generate(
                    input_ids=inputs,
                    attention_mask=torch.ones_like(inputs),
                    generation_config=config,
                    **kwargs,
                )
                for row in output[:, len(prompt_ids) :].tolist():
                    generated.append(_cut_at_stop([int(t) for t in row], self._stop_ids))
        return generated

    def _prompt_cache(self, prompt: torch.Tensor) -> Any:
        """The key/value cache of all but the prompt's last token (which `generate` runs, to
        get the first position's logits), or None where the cache cannot be repeated."""
        if prompt.shape[1] < 2 or not self._prefix_cache_works:
            return None
        output = self._model(input_ids=prompt[:, :-1], use_cache=True, logits_to_keep=1)
        cache: Any = getattr(output, "cache", None) or getattr(output, "past_key_values", None)
        if cache is None or not hasattr(cache, "batch_repeat_interleave"):
            return None
        return cache

    def _ids_for(self, labels: tuple[str, ...]) -> dict[str, torch.Tensor]:
        cached = self._label_ids.get(labels)
        if cached is not None:
            return cached
        found: dict[str, list[int]] = {label: [] for label in labels}
        for token_id, text in enumerate(self._token_text):
            stripped = text.strip()
            if stripped in found:
                found[stripped].append(token_id)
        absent = [label for label, ids in found.items() if not ids]
        if absent:
            # A label that is no single token cannot be read from one next-token
            # distribution; reporting probability 0 for it would invent a number.
            raise ReadoutError(f"labels {absent} are not single tokens of this model's vocabulary")
        result = {label: torch.tensor(ids, dtype=torch.long) for label, ids in found.items()}
        self._label_ids[labels] = result
        return result

    def _respond(
        self, request: ChoiceRequest, n_tokens: int, logprobs: torch.Tensor, latency: float
    ) -> ChoiceResponse:
        usage = Usage(input_tokens=n_tokens, output_tokens=0)
        top_values, top_ids = torch.topk(logprobs, min(TOP_LOGPROBS, logprobs.shape[0]))
        top = [
            (int(token_id), self._token_text[int(token_id)], float(value))
            for value, token_id in zip(top_values.tolist(), top_ids.tolist(), strict=True)
        ]
        raw: dict[str, JsonValue] = {
            "prompt_tokens": n_tokens,
            "top_tokens": [list(entry) for entry in top],
        }
        try:
            label_ids = self._ids_for(request.prompt.labels)
        except ReadoutError as exc:
            return ChoiceResponse(
                choice=None, readout=None, raw=raw, usage=usage, latency_s=latency, error=str(exc)
            )
        probs = logprobs.exp()
        mass: dict[str, float | None] = {
            label: float(probs[ids].sum()) for label, ids in label_ids.items()
        }
        readout = readout_from_masses(mass, [(text, lp) for _, text, lp in top])
        if readout.probs is None:
            return ChoiceResponse(
                choice=None,
                readout=readout,
                raw=raw,
                usage=usage,
                latency_s=latency,
                error="every option label has probability 0",
            )
        choice = sample_choice(readout.probs, request.temperature, request.seed)
        return ChoiceResponse(
            choice=choice, readout=readout, raw=raw, usage=usage, latency_s=latency
        )

    def _next_token_logprobs(self, rows: list[list[int]]) -> torch.Tensor:
        """Float64 log-probabilities of the next token after each row, shape (rows, vocab)."""
        shared = 0
        if self.share_prefix and self._prefix_cache_works and len(rows) > 1:
            # At least one token of every row stays outside the prefix: its logits are read.
            shared = min(_common_prefix_length(rows), min(len(row) for row in rows) - 1)
        logits: torch.Tensor | None = None
        if shared >= MIN_SHARED_PREFIX:
            prefix = torch.tensor([rows[0][:shared]], dtype=torch.long)
            output = self._model(input_ids=prefix, use_cache=True, logits_to_keep=1)
            cache: Any = getattr(output, "cache", None) or getattr(output, "past_key_values", None)
            if cache is not None and hasattr(cache, "batch_repeat_interleave"):
                cache.batch_repeat_interleave(len(rows))
                logits = self._last_logits([row[shared:] for row in rows], shared, cache)
            else:
                self._prefix_cache_works = False
        if logits is None:
            logits = self._last_logits(rows, 0, None)
        # Float64 before the softmax: label masses are sums of many small probabilities.
        return torch.log_softmax(logits.to(torch.float64), dim=-1)

    def _last_logits(
        self, rows: list[list[int]], offset: int, cache: Any, *, per_row: bool | None = None
    ) -> torch.Tensor:
        """Logits at each row's last real token; `offset` cached tokens precede every row."""
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        # Right padding: real tokens never attend to pads (the mask is causal), and the
        # cached prefix, if any, is real for every row.
        attention = torch.zeros((len(rows), offset + width), dtype=torch.long)
        attention[:, :offset] = 1
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention[i, offset : offset + len(row)] = 1
        last = torch.tensor([len(row) - 1 for row in rows], dtype=torch.long)
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "use_cache": cache is not None,
        }
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        if self._rows_keep_logits if per_row is None else per_row:
            # The model applies its own head (and any logit scaling or soft-capping it has)
            # at exactly one position per row.
            logits = self._model(**kwargs, logits_to_keep=last[:, None]).logits
            return torch.as_tensor(logits[:, 0, :])
        full = self._model(**kwargs).logits
        return torch.as_tensor(full[torch.arange(len(rows)), last, :])

    def _supports_row_logits(self) -> bool:
        """Whether this model's forward honours per-row `logits_to_keep` positions.

        Transformers 5 models do; an older or custom architecture may ignore the argument or
        index with it differently, so two rows of unequal length are checked once against
        the full logits.
        """
        rows = [[self._pad_id + 1, self._pad_id, self._pad_id + 1], [self._pad_id + 1]]
        rows = [[token % self._vocab_size for token in row] for row in rows]
        with torch.inference_mode():
            reference = self._last_logits(rows, 0, None, per_row=False)
            try:
                kept = self._last_logits(rows, 0, None, per_row=True)
            except (TypeError, ValueError, IndexError, RuntimeError):
                return False
        return kept.shape == reference.shape and bool(
            torch.allclose(kept, reference, rtol=1e-4, atol=1e-4)
        )


def _common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    first = rows[0]
    length = min(len(row) for row in rows)
    for position in range(length):
        token = first[position]
        if any(row[position] != token for row in rows):
            return position
    return length


def _reply_request_problem(request: ReplyRequest) -> str | None:
    """Why a reply request cannot be generated, or None."""
    if request.n < 1:
        return f"n must be at least 1, got {request.n}"
    if request.temperature < 0:
        return f"temperature must be at least 0, got {request.temperature}"
    if request.max_tokens is not None and request.max_tokens < 1:
        return f"max_tokens must be at least 1, got {request.max_tokens}"
    return None


def _cut_at_stop(row: list[int], stop_ids: Sequence[int]) -> list[int]:
    # After a row stops, generate pads it to the batch's length (with a stop token here).
    for position, token in enumerate(row):
        if token in stop_ids:
            return row[: position + 1]
    return row


def _stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """The tokens that end a reply: the model's generation config's (a chat model's end of
    turn), else the tokenizer's end of text."""
    configured = model.generation_config.eos_token_id
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return []
    return [int(t) for t in configured] if isinstance(configured, list) else [int(configured)]


def _pad_token_id(tokenizer: Any) -> int:
    # Pads are masked out and never read, so any valid id will do when none is declared.
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _cache_kwarg(model: Any) -> str:
    # Transformers 5 renamed `past_key_values` to `cache`; older releases know only the former.
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"
