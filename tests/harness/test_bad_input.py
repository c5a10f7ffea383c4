"""Bad input: one clear line on stderr, exit code 2, and any existing run left untouched."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mindshift.cli import main
from tests.conftest import sim_config_text

GOOD = sim_config_text(items=3)


def _fingerprint(run_dir: Path) -> dict[str, str]:
    return {
        str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def existing_run(tmp_path: Path, write_config: Callable[[str], Path]) -> Path:
    run_dir = tmp_path / "run"
    assert main(["run", str(write_config(GOOD, "good.toml")), "--out", str(run_dir)]) == 0
    return run_dir


BAD_CONFIGS = {
    "malformed TOML": ("[experiment\nname = 'x'", "malformed TOML"),
    "unknown top-level key": (GOOD + "\n[extra]\nx = 1\n", "unknown key 'extra'"),
    "unknown experiment key": (
        GOOD.replace("seed = 0", "seed = 0\nsed = 1"),
        "unknown key 'experiment.sed'",
    ),
    "unknown model key": (
        GOOD + "tempreature = 1.0\n",
        "model 'sim' (sim:bayes): unknown key 'tempreature' (did you mean 'temperature'?)",
    ),
    "another provider's model key": (
        GOOD + 'base_url = "http://127.0.0.1:8000/v1"\n',
        "model 'sim' (sim:bayes): 'base_url' cannot be used by sim: models",
    ),
    "a common key the provider cannot use": (
        GOOD + "max_retries = 2\n",
        "model 'sim' (sim:bayes): 'max_retries' cannot be used by sim: models",
    ),
    "unknown paradigm key": (
        GOOD.replace("items = 3", "items = 3\nitmes = 4"),
        "unknown key 'itmes'",
    ),
    "unknown paradigm": (GOOD.replace('"change-of-mind"', '"nope"'), "unknown paradigm 'nope'"),
    "unknown provider": (GOOD.replace('"sim:bayes"', '"acme:gpt"'), "unknown provider 'acme'"),
    "spec without provider": (
        GOOD.replace('"sim:bayes"', '"gpt4"'),
        "not of the form provider:name",
    ),
    "unknown local model": (GOOD.replace('"sim:bayes"', '"local:llama"'), "unknown local model"),
    "unknown sim param": (GOOD.replace("noise = 0.3", "noize = 0.3"), "unknown key 'noize'"),
    "accuracy above 1": (
        GOOD.replace("items = 3", "items = 3\naccuracies = [0.7, 1.2]"),
        "outside [0.5, 1]",
    ),
    "accuracy below 0.5": (
        GOOD.replace("items = 3", "items = 3\naccuracies = [0.4]"),
        "outside [0.5, 1]",
    ),
    "wrong type": (GOOD.replace("items = 3", 'items = "many"'), "items"),
    "unknown domain": (
        GOOD.replace("items = 3", 'items = 3\ndomain = "astrology"'),
        "unknown domain 'astrology'",
    ),
    "difficulty outside latitude": (
        GOOD.replace("items = 3", 'items = 3\ndomain = "arithmetic"\ndifficulty = "hard"'),
        "latitude domain only",
    ),
    "missing question file": (
        GOOD.replace("items = 3", 'items = 3\ndomain = "file:/nonexistent/q.jsonl"'),
        "question file not found",
    ),
    "NaN sim parameter": (GOOD.replace("noise = 0.3", "noise = nan"), "not a finite number"),
    "infinite sim parameter": (
        GOOD.replace("w_same = 1.0", "w_same = inf"),
        "'models.0.params.w_same' is not a finite number",
    ),
    "huge sim parameter": (
        GOOD.replace("w_opposite = 2.5", "w_opposite = 1e308"),
        "less than or equal to 100",
    ),
    "huge sim mu": (GOOD.replace("noise = 0.3", "noise = 0.3, mu = -1e300"), "mu"),
    "infinite temperature": (GOOD + "temperature = inf\n", "not a finite number"),
    "absurd repeats": (
        GOOD.replace("seed = 0", "seed = 0\nrepeats = 1000000000"),
        "less than or equal to 1000",
    ),
    "absurd calibration split": (
        GOOD.replace("items = 3", "items = 3\ncalibration_items = 100000000"),
        "calibration_items",
    ),
    "experiment name too long for a file name": (
        GOOD.replace('name = "t"', f'name = "{"x" * 300}"'),
        "longer than 200 characters",
    ),
    "bad advisor in a sequence": (
        GOOD.replace('"change-of-mind"', '"multi-advice"').replace(
            "items = 3", 'items = 3\nsequences = [["sometimes@0.7"]]'
        ),
        "not advice@accuracy",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_one_line_exit_2_and_leaves_the_run_untouched(
    case: str,
    existing_run: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    text, expected = BAD_CONFIGS[case]
    before = _fingerprint(existing_run)
    capsys.readouterr()
    code = main(["run", str(write_config(text, "bad.toml")), "--out", str(existing_run)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("mindshift: error: ")
    assert expected in lines[0]
    assert _fingerprint(existing_run) == before


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(tmp_path / "absent.toml")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"mindshift: error: config file not found: {tmp_path / 'absent.toml'}"]


def test_a_different_config_cannot_resume_into_a_run(
    existing_run: Path, write_config: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _fingerprint(existing_run)
    capsys.readouterr()
    code = main(
        [
            "run",
            str(write_config(sim_config_text(items=4), "other.toml")),
            "--out",
            str(existing_run),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "holds a run of a different config" in err[-1]
    assert _fingerprint(existing_run) == before


def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_analyse_of_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyse", str(tmp_path / "nowhere")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mindshift.cli", "run", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_analyse_of_a_directory_that_holds_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyse", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trials.parquet" in err[0]


def test_a_plan_beyond_any_runs_memory_is_refused_at_config_time() -> None:
    import tomllib

    from mindshift.harness.config import parse_config
    from mindshift.harness.errors import ConfigError
    from mindshift.harness.experiment import prepare
    from mindshift.paradigms import PARADIGMS

    text = sim_config_text(items=30000).replace("seed = 0", "seed = 0\nrepeats = 1000")
    config = parse_config(tomllib.loads(text))
    with pytest.raises(ConfigError, match=r"plans 1,110,000,000 calls"):
        prepare(config, PARADIGMS)


def test_extreme_allowed_sim_parameters_run_and_store_every_call(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    """The bounds are the agent's real limits: at them every number it reports is finite."""
    params = (
        "{ choice_support = 100.0, w_same = -100.0, w_opposite = 100.0, noise = 0.0, "
        "mu = -100.0, sigma = 0.0, beta_kappa = 1e6 }"
    )
    config = write_config(sim_config_text(items=2, params=params), "extreme.toml")
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 0


def test_a_refused_config_leaves_no_directory_and_the_corrected_one_runs(
    tmp_path: Path, write_config: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    bad = write_config(GOOD.replace("noise = 0.3", "noise = inf"), "bad.toml")
    assert main(["run", str(bad), "--out", str(run_dir)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not run_dir.exists()
    assert main(["run", str(write_config(GOOD, "good.toml")), "--out", str(run_dir)]) == 0


@pytest.mark.parametrize(
    "arguments",
    [
        ["--noise", "inf"],
        ["--w-opposite", "nan"],
        ["--choice-support", "1e308"],
        ["--items", "1000000000"],
        ["--simulations", "1000000000000"],
    ],
)
def test_power_refuses_values_the_agent_cannot_simulate(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["power", "--jobs", "1", *arguments]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mindshift: error: power:"), err
