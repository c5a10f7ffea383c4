"""The real OpenAI and Gemini APIs (marked `live_api`: they spend a little money).

Off by default; run them with `pytest -m live_api tests/harness/test_live_apis.py`. Each test
skips when its key (OPENAI_API_KEY, GEMINI_API_KEY) is absent. Models can be changed with
MINDSHIFT_LIVE_OPENAI_MODEL, MINDSHIFT_LIVE_OPENAI_REASONING_MODEL and
MINDSHIFT_LIVE_GEMINI_MODEL. A handful of requests per test, a few tokens each.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from typing import Any

import pytest

from mindshift.harness.config import ModelSection
from mindshift.harness.errors import ConfigError
from mindshift.harness.models.base import ModelBackend
from mindshift.harness.models.registry import create_backend, validate_model
from mindshift.harness.types import ChoiceRequest, ChoiceResponse, Message, Prompt

pytestmark = pytest.mark.live_api

needs_openai = pytest.mark.skipif(
    not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY is not set"
)
needs_gemini = pytest.mark.skipif(
    not (os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")),
    reason="GEMINI_API_KEY is not set",
)


@pytest.fixture(autouse=True)
def only_when_asked(request: pytest.FixtureRequest) -> None:
    """Spend money only when `-m` names live_api (a plain `-m 'not slow'` would not)."""
    if "live_api" not in (request.config.option.markexpr or ""):
        pytest.skip("calls paid APIs: run with -m live_api")


PROMPT = Prompt(
    messages=(
        Message(
            "user",
            "Answer the following multiple-choice question.\n\n"
            "Which city is further north?\nA. Oslo\nB. Rome\n\n"
            "Reply with the letter of the correct option only.",
        ),
    ),
    answer_prefix="My answer is:",
    labels=("A", "B"),
)


def run(model: ModelSection, calls: int = 2) -> list[ChoiceResponse]:
    validate_model(model)
    backend: ModelBackend = create_backend(model)

    async def go() -> list[ChoiceResponse]:
        try:
            await backend.preflight()
            requests = [ChoiceRequest(f"t{i}", 1, PROMPT, 1.0, 1000 + i) for i in range(calls)]
            return await backend.answer(requests)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def assert_no_key(responses: list[ChoiceResponse], *names: str) -> None:
    text = json.dumps([response.raw for response in responses])
    for name in names:
        value = os.environ.get(name)
        if value:
            assert value not in text


def assert_confident_readout(response: ChoiceResponse) -> None:
    assert response.error is None, response.error
    assert response.choice in ("A", "B")
    readout: Any = response.readout
    assert readout is not None
    if not readout.censored:
        assert math.fsum(readout.probs.values()) == pytest.approx(1.0)
        assert readout.probs["A"] > 0.5  # Oslo is further north


@needs_openai
def test_openai_logprob_model() -> None:
    name = os.environ.get("MINDSHIFT_LIVE_OPENAI_MODEL", "gpt-4o-mini")
    responses = run(ModelSection(id="live", spec=f"openai:{name}"))
    for response in responses:
        assert_confident_readout(response)
        assert response.usage.input_tokens > 0
    assert_no_key(responses, "OPENAI_API_KEY")


@needs_openai
def test_openai_reasoning_model_runs_choice_only() -> None:
    name = os.environ.get("MINDSHIFT_LIVE_OPENAI_REASONING_MODEL", "o4-mini")
    with pytest.raises(ConfigError, match="choice_only"):
        validate_model(ModelSection(id="live", spec=f"openai:{name}"))
    model = ModelSection(
        id="live",
        spec=f"openai:{name}",
        choice_only=True,
        reasoning_effort="low",
        max_tokens=2048,
    )
    responses = run(model, calls=1)
    assert responses[0].error is None, responses[0].error
    assert responses[0].choice == "A"
    assert responses[0].readout is None
    assert_no_key(responses, "OPENAI_API_KEY")


@needs_gemini
def test_gemini_logprobs_or_a_clear_refusal() -> None:
    name = os.environ.get("MINDSHIFT_LIVE_GEMINI_MODEL", "gemini-2.5-flash")
    model = ModelSection(id="live", spec=f"gemini:{name}", thinking_budget=0)
    try:
        responses = run(model)
    except ConfigError as error:
        # Models without logprobs are found by the preflight, with the fix in the message.
        assert "choice_only = true" in str(error)
        responses = run(model.model_copy(update={"choice_only": True}), calls=1)
        assert responses[0].choice == "A"
    else:
        for response in responses:
            assert_confident_readout(response)
    assert_no_key(responses, "GEMINI_API_KEY", "GOOGLE_API_KEY")
