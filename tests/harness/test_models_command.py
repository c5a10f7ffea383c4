"""`mindshift models`: one row per provider, each saying what that backend can do.

The expected rows are written out here from what each provider is documented to do (README,
"API models and vLLM servers"; docs/design.md), not read from the registry, so a capability
changed in code without the docs (or the other way round) fails; a second test holds every
row equal to the backend class's own capabilities.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.metadata import EntryPoint

import pytest

from mindshift.cli import main
from mindshift.harness.models.base import Capabilities
from mindshift.harness.models.provider import ENTRY_POINT_GROUP, Provider
from mindshift.harness.models.registry import (
    BUILTIN,
    PROVIDERS,
    BackendPluginError,
    ProviderRegistry,
)
from mindshift.paradigms.agent.sim_bayes import SimBayesBackend, SimBayesParams

COLUMNS = (
    "provider",
    "logprobs",
    "top-k",
    "prefill",
    "prompt lp",
    "batch",
    "choice-only",
    "on this machine",  # whether it is usable here: tests/mindshift/test_cli_habits.py
)
EXPECTED = {
    # provider: logprobs, top-k, prefill, prompt logprobs, batch, choice-only mode
    "sim": ("yes", "all", "yes", "no", "yes", "no"),
    "local": ("yes", "all", "yes", "yes", "yes", "no"),
    "hf": ("yes", "all", "yes", "yes", "yes", "no"),
    "openai": ("yes", "20", "no", "no", "yes", "yes"),
    "gemini": ("yes", "20", "no", "no", "yes", "yes"),
    "anthropic": ("no", "0", "yes", "no", "yes", "yes"),
    "vllm": ("yes", "20", "yes", "yes", "yes", "no"),
}
SUMMARIES = {
    "sim": "sim:bayes - ",
    "local": "local:smollm2 - ",
    "hf": "hf:<folder> - ",
    "openai": "openai:<model> - ",
    "gemini": "gemini:<model> - ",
    "anthropic": "anthropic:<model> - ",
    "vllm": "vllm:<served name> - ",
}


def _table(out: str) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """The header and the rows (by provider) of the box-drawn table `mindshift models` prints."""
    header: list[str] = []
    rows: dict[str, tuple[str, ...]] = {}
    for line in out.splitlines():
        for bar in ("┃", "│"):
            if line.startswith(bar):
                cells = [cell.strip() for cell in line.strip(bar).split(bar)]
                if bar == "┃":
                    header = cells
                else:
                    assert cells[0] not in rows, f"two rows for {cells[0]}"
                    rows[cells[0]] = tuple(cells[1:])
    return header, rows


@pytest.fixture
def printed(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "160")  # no wrapped cells
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_every_provider_has_a_row_with_its_documented_capabilities(printed: str) -> None:
    header, rows = _table(printed)
    assert tuple(header) == COLUMNS
    assert set(rows) == set(PROVIDERS) == set(EXPECTED)
    for provider, expected in EXPECTED.items():
        assert rows[provider][:6] == expected, provider


def _cells(caps: Capabilities) -> tuple[str, ...]:
    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    top_k = "all" if caps.top_k_limit is None else str(caps.top_k_limit)
    return (
        yes(caps.logprobs),
        top_k,
        yes(caps.prefill),
        yes(caps.prompt_logprobs),
        yes(caps.batch),
        yes(caps.choice_only),
    )


def test_every_row_is_its_backend_classes_own_capabilities(printed: str) -> None:
    from mindshift.harness.models import (
        anthropic_settings,
        gemini_settings,
        openai_settings,
        vllm_settings,
    )
    from mindshift.harness.models.transformers_lm import TransformersBackend
    from mindshift.paradigms.agent.sim_bayes import SimBayesBackend

    _, rows = _table(printed)
    assert rows["sim"][:6] == _cells(SimBayesBackend.capabilities)
    assert rows["local"][:6] == rows["hf"][:6] == _cells(TransformersBackend.capabilities)
    assert rows["vllm"][:6] == _cells(vllm_settings.CAPABILITIES)
    assert rows["anthropic"][:6] == _cells(anthropic_settings.CAPABILITIES)
    for provider, module in (("openai", openai_settings), ("gemini", gemini_settings)):
        # The row: logprobs as the normal mode, and choice-only mode on offer.
        with_logprobs = _cells(module.CAPABILITIES)
        assert rows[provider][:5] == with_logprobs[:5], provider
        assert rows[provider][5] == "yes" and module.CHOICE_ONLY_CAPABILITIES.choice_only
        assert not module.CHOICE_ONLY_CAPABILITIES.logprobs


def test_every_provider_has_its_summary_line(printed: str) -> None:
    lines = [line.strip() for line in printed.splitlines()]
    for provider, start in SUMMARIES.items():
        assert any(line.startswith(start) for line in lines), provider
    assert set(SUMMARIES) == set(PROVIDERS)


def test_models_with_an_argument_is_a_one_line_user_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:  # argparse's exit, with the CLI's usage code
        main(["models", "openai"])
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "openai" in err


# ---------------------------------------------------------------- providers from other packages

PLUGIN = Provider(
    "acme",
    "acme:<model> - a provider another package registers",
    Capabilities(
        logprobs=False, top_k_limit=None, prefill=False, prompt_logprobs=False, batch=False
    ),
    lambda model: None,
    lambda model: SimBayesBackend(SimBayesParams()),
)
SECOND = replace(PLUGIN, summary="acme:<model> - the same name from another package")
NOT_A_PROVIDER = "acme"


def plugin(name: str, attribute: str) -> EntryPoint:
    """An entry point naming an object of this module (as an installed package's would)."""
    return EntryPoint(name, f"{__name__}:{attribute}", ENTRY_POINT_GROUP)


def test_a_plugin_provider_is_listed_after_the_builtins_and_found_by_name() -> None:
    registry = ProviderRegistry(BUILTIN, [plugin("acme", "PLUGIN")])
    assert list(registry) == [*(provider.name for provider in BUILTIN), "acme"]
    assert registry["acme"] is PLUGIN


@pytest.mark.parametrize(
    ("name", "attribute", "expected"),
    [
        ("acme", "NOT_A_PROVIDER", r"'acme' \(.*\) is not a harness\.models\.provider\.Provider"),
        ("other", "PLUGIN", "names itself 'acme': the entry point's name must be"),
        ("acme", "NO_SUCH_NAME", "cannot be loaded: AttributeError"),
        ("openai", "PLUGIN", "takes the name of the built-in provider 'openai'"),
    ],
)
def test_a_broken_plugin_is_one_line_naming_it(name: str, attribute: str, expected: str) -> None:
    registry = ProviderRegistry(BUILTIN, [plugin(name, attribute)])
    assert name in registry  # listed by name without importing it
    with pytest.raises(BackendPluginError, match=expected) as raised:
        registry[name]
    assert "\n" not in str(raised.value)


def test_two_plugins_of_one_name_are_refused() -> None:
    twice = [plugin("acme", "PLUGIN"), plugin("acme", "SECOND")]
    with pytest.raises(BackendPluginError, match="registered by two plugins"):
        ProviderRegistry(BUILTIN, twice)["acme"]
