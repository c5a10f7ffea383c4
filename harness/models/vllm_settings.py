"""The keys of a `vllm:` model entry (`base_url`, or `serve` to start the server), and what
the provider can do.

Kept apart from the backend (`harness.models.vllm`) so that checking a config imports no SDK:
the registry validates an entry's keys with `VllmSettings` and hands the backend the result.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mindshift.harness.models.base import Capabilities
from mindshift.harness.models.openai_settings import http_url

DEFAULT_TOP_LOGPROBS = 20
"""vLLM's default --max-logprobs, and what is asked for unless `top_logprobs` says otherwise."""
KEY_ENV = "VLLM_API_KEY"
"""The key a server started with --api-key expects; unset, no key is sent."""

CAPABILITIES = Capabilities(
    logprobs=True,
    top_k_limit=DEFAULT_TOP_LOGPROBS,
    prefill=True,
    prompt_logprobs=True,
    batch=True,
    replies=True,
    reply_n=True,
    reply_prefill=True,
)
"""top-k: the server's --max-logprobs (default 20); `batch`: the server batches concurrent
calls into shared forward passes; free-text replies, `n` of them in one request, continuing
an answer prefix when asked (`continue_final_message`)."""


class VllmServeSection(BaseModel):
    """`serve` of a `vllm:` model: mindshift starts vLLM's server itself and stops it at the end.

    The spec's name (`vllm:<name>`) becomes the served model name. Each replica is one
    `vllm serve` process on its own port and its own GPUs; calls are spread across them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    """Weights to serve: a Hugging Face repo id or a local folder (default: the spec's name)."""
    python: str | None = None
    """Python interpreter that has vLLM installed (default: the one running mindshift)."""
    host: str = "127.0.0.1"
    """Address the server listens on (loopback by default: nothing outside can reach it)."""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port of the first replica; replica i listens on port + i."""
    replicas: int = Field(default=1, ge=1, le=64)
    """How many independent servers to start (data parallel, one per GPU group)."""
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    """GPUs each replica shards every layer over (`--tensor-parallel-size`)."""
    pipeline_parallel_size: int = Field(default=1, ge=1, le=64)
    """Pipeline stages of each replica (`--pipeline-parallel-size`)."""
    gpus: list[int] | None = None
    """CUDA device indices to use, split in order among the replicas (CUDA_VISIBLE_DEVICES);
    its length must be replicas x tensor_parallel_size x pipeline_parallel_size. Unset: every
    replica sees all devices."""
    dtype: str | None = None
    """`--dtype` (auto, bfloat16, float16, float32); unset: vLLM's default."""
    max_model_len: int | None = Field(default=None, ge=16)
    """`--max-model-len`: shorter contexts leave more memory for the KV cache."""
    gpu_memory_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    """`--gpu-memory-utilization`: share of each GPU's memory vLLM may take."""
    logprobs_mode: Literal["raw_logprobs", "processed_logprobs"] = "raw_logprobs"
    """`--logprobs-mode`: raw (before temperature, top-k/top-p and other processors; the
    same quantity the local backend reads) or processed (after them)."""
    max_logprobs: int = Field(default=20, ge=1, le=1000)
    """`--max-logprobs`: the most top_logprobs the server returns per position."""
    extra_args: list[str] = Field(default_factory=list)
    """More `vllm serve` arguments, passed as given (e.g. ["--enforce-eager"])."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables for the server (recorded in the manifest: no secrets)."""
    startup_timeout_s: float = Field(default=1800.0, gt=0.0)
    """How long to wait for /health before giving up (large models load for minutes)."""
    log_dir: str | None = None
    """Where the servers' output goes, one file per replica (default: the system temp dir)."""

    @field_validator("gpus")
    @classmethod
    def _gpus_fit_the_replicas(
        cls, gpus: list[int] | None, info: ValidationInfo
    ) -> list[int] | None:
        # Declared after replicas and the parallel sizes, which are validated (or failed) first.
        if gpus is None or not {
            "replicas",
            "tensor_parallel_size",
            "pipeline_parallel_size",
        } <= set(info.data):
            return gpus
        replicas = info.data["replicas"]
        tensor = info.data["tensor_parallel_size"]
        pipeline = info.data["pipeline_parallel_size"]
        needed = replicas * tensor * pipeline
        if len(gpus) != needed:
            raise ValueError(
                f"lists {len(gpus)} GPUs but {replicas} replica(s) x tensor_parallel_size "
                f"{tensor} x pipeline_parallel_size {pipeline} need {needed}"
            )
        if len(set(gpus)) != len(gpus) or min(gpus) < 0:
            raise ValueError("must be distinct, non-negative device indices")
        return gpus


class VllmSettings(BaseModel):
    """The keys of a `vllm:` entry beyond the common ones: a running server (`base_url`) or
    one mindshift starts (`serve`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | list[str] | None = None
    """The server's OpenAI-compatible endpoint, e.g. "http://127.0.0.1:8000/v1", or a list of
    replicas, across which calls are spread."""
    api_key_env: str = KEY_ENV
    """Name of the environment variable holding the server's --api-key (unset: none sent)."""
    top_logprobs: int | None = Field(default=None, ge=1, le=1000)
    """Alternatives requested per token position (default 20; at most the server's
    --max-logprobs)."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """Most tokens of one free-text reply (readouts without logprobs): at least this many,
    more when the readout asks for more. Raise it for a model that thinks before it answers
    (default: what the readout asks for, or a short reply's)."""
    timeout_s: float = Field(default=300.0, gt=0.0, le=3600.0)
    """Timeout of one HTTP attempt, in seconds (generous: a busy server queues requests
    rather than refusing them)."""
    serve: VllmServeSection | None = None
    """Start the server(s) here instead of using `base_url`."""

    @field_validator("base_url")
    @classmethod
    def _urls(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            if not value:
                raise ValueError("the list of base URLs is empty")
            if len(set(value)) != len(value):
                raise ValueError("lists a replica twice")
        for url in [value] if isinstance(value, str) else (value or []):
            http_url(url)
        return value

    @model_validator(mode="after")
    def _one_server_source(self) -> VllmSettings:
        if (self.base_url is None) == (self.serve is None):
            raise ValueError(
                "give either base_url (a running server, or a list of replicas) or serve "
                "(mindshift starts the server)"
            )
        if self.serve is not None and self.top_k > self.serve.max_logprobs:
            raise ValueError(
                f"top_logprobs {self.top_k} is above serve.max_logprobs {self.serve.max_logprobs}"
            )
        return self

    @property
    def top_k(self) -> int:
        """The `top_logprobs` sent."""
        return self.top_logprobs or DEFAULT_TOP_LOGPROBS

    @property
    def base_urls(self) -> tuple[str, ...]:
        """The replicas' URLs as given (empty with `serve`: the servers' come from their plan)."""
        urls = [self.base_url] if isinstance(self.base_url, str) else (self.base_url or [])
        return tuple(url.rstrip("/") for url in urls)


def missing_server_software(settings: VllmSettings) -> str | None:
    """Why `serve` cannot start a server from here (no vLLM, no such interpreter); None when
    it can, or when the entry names a running server."""
    serve = settings.serve
    if serve is None:
        return None
    if serve.python is None and importlib.util.find_spec("vllm") is None:
        return (
            "vLLM is not installed here: pip install 'mindshift[gpu]', or set serve.python "
            "to an interpreter that has it"
        )
    if serve.python is not None and not Path(serve.python).is_file():
        return f"serve.python {serve.python} does not exist"
    return None
