"""What the in-process transformers backend (`local:`, `hf:`) can do, kept apart from it
(`harness.models.transformers_lm`) so that listing providers and checking configs import no
torch. These providers take no keys of their own beyond the common ones."""

from __future__ import annotations

from harness.models.base import Capabilities

CAPABILITIES = Capabilities(
    logprobs=True,
    top_k_limit=None,
    prefill=True,
    prompt_logprobs=True,
    batch=True,
)
"""The full next-token distribution after a prefilled answer prefix; prompt log-probabilities
score multi-token options; requests are answered in batched forward passes."""
DEFAULT_BATCH_SIZE = 36
"""Requests per forward pass unless the entry's `batch_size` says otherwise (the 36 stage-2
conditions of one item share a long prefix, run once)."""
