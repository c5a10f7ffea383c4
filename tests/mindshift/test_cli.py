"""The CLI's plain paths: listing backends, a run's files and manifest."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from mindshift.cli import main
from tests.conftest import sim_config_text

ROOT = Path(__file__).resolve().parents[2]


def test_models_lists_every_backend_and_its_capabilities(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for provider in ("sim", "local", "hf"):
        assert provider in out
    assert "logprobs" in out and "top-k" in out and "prefill" in out and "batch" in out


def test_run_writes_manifest_calls_and_trials(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    run_dir = tmp_path / "run"
    assert main(["run", str(write_config(sim_config_text(items=3))), "--out", str(run_dir)]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["experiment"]["name"] == "t"
    assert manifest["seed"] == 0
    assert set(manifest["git"]) == {"commit", "dirty"}
    assert manifest["packages"]["numpy"]
    trials = pd.read_parquet(run_dir / "trials.parquet")
    assert len(trials) == 3 * 36
    calls = [json.loads(line) for line in (run_dir / "calls.jsonl").read_text().splitlines()]
    assert {c["stage"] for c in calls} == {1, 2}
    first = next(c for c in calls if c["stage"] == 1)
    assert first["request"]["messages"][0]["role"] == "user"
    assert first["request"]["answer_prefix"] == "My answer is:"
    assert first["readout"]["probs"] is not None
    # Every stage-2 call is built from its stored stage-1 answer.
    by_id = {c["trial_id"]: c for c in calls if c["stage"] == 1}
    for call in calls:
        if call["stage"] == 2:
            initial = by_id[call["initial_trial_id"]]
            assert call["request"]["situation"]["initial_choice"] == initial["choice"]

    assert main(["run", str(write_config(sim_config_text(items=3))), "--out", str(run_dir)]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["resumes"]) == 1


def test_resume_check_compares_what_the_user_wrote() -> None:
    from mindshift.harness.config import parse_config

    written = {
        "experiment": {"name": "x", "paradigm": "change-of-mind"},
        "models": [{"id": "sim", "spec": "sim:bayes"}],
    }
    explicit_defaults = {
        "experiment": {"name": "x", "paradigm": "change-of-mind"},
        "models": [{"id": "sim", "spec": "sim:bayes", "temperature": 1.0}],
    }
    # Writing a default explicitly is a different text, but keys added later with defaults
    # must not make an old run look foreign.
    assert "concurrency" not in parse_config(written).canonical_json()
    assert (
        parse_config(written).canonical_json() != parse_config(explicit_defaults).canonical_json()
    )


def test_python_dash_m_mindshift_is_the_command() -> None:
    """`python -m mindshift` runs the same `main` as the console script pyproject declares."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["mindshift"] == "mindshift.cli:main"
    done = subprocess.run(
        [sys.executable, "-m", "mindshift", "models"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "backends and what each can do" in done.stdout
    usage = subprocess.run(
        [sys.executable, "-m", "mindshift", "frobnicate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2
    assert usage.stderr.count("\n") == 1 and "invalid choice" in usage.stderr
