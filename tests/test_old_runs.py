"""Run directories made by older code still work (issue 11's "old runs" check).

`tests/fixtures/old_runs/` holds three small runs of the simulated agent made with the code
as it was before the typed call record, N-turn protocols and the layered analysis (commit
b2805c9): change-of-mind with every display and a calibration split on four options, two
repeats; are-you-sure; multi-advice. Each keeps its config, calls.jsonl, manifest,
trials.parquet and the summary.json its analysis wrote then (`expected_summary.json`).

Resuming one with today's code must make no call (calls.jsonl byte for byte the same), and
analysing it must give back every number the old analysis gave.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "old_runs"
OLD_RUNS = ["change-of-mind", "are-you-sure", "multi-advice"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "mindshift"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a JSON tree, keyed by its path."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(_leaves(child, f"{path}/{key}"))
        return out
    if isinstance(value, list):
        out = {}
        for index, child in enumerate(value):
            out.update(_leaves(child, f"{path}[{index}]"))
        return out
    return {path: value}


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, (int, float)):
        if math.isnan(old):
            return math.isnan(new)
        return math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12)
    return bool(old == new)


@pytest.mark.parametrize("name", OLD_RUNS)
def test_old_run_resumes_with_no_call_and_analyses_to_the_same_numbers(
    tmp_path: Path, name: str
) -> None:
    run_dir = tmp_path / name
    shutil.copytree(FIXTURES / name, run_dir)
    calls_before = (run_dir / "calls.jsonl").read_bytes()
    trials_before = pd.read_parquet(run_dir / "trials.parquet")

    done = _cli("run", str(FIXTURES / f"{name}.toml"), "--out", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert (run_dir / "calls.jsonl").read_bytes() == calls_before, "resuming made new calls"
    trials_after = pd.read_parquet(run_dir / "trials.parquet")
    # The old columns keep their values (new code may add columns).
    pd.testing.assert_frame_equal(trials_after[list(trials_before.columns)], trials_before)

    done = _cli("analyse", str(run_dir), "--fitted-model", "tobit")
    assert done.returncode == 0, done.stderr
    expected = _leaves(json.loads((FIXTURES / name / "expected_summary.json").read_text()))
    actual = _leaves(json.loads((run_dir / "analysis" / "summary.json").read_text()))
    # Descriptions of the analysis may be reworded; every number must be the same.
    numbers = {path: value for path, value in expected.items() if not isinstance(value, str)}
    assert len(numbers) > 50
    missing = sorted(path for path in numbers if path not in actual)
    assert not missing, f"{len(missing)} numbers gone, e.g. {missing[:5]}"
    differ = {
        path: (value, actual[path])
        for path, value in numbers.items()
        if not _same(value, actual[path])
    }
    assert not differ, f"{len(differ)} numbers differ, e.g. {list(differ.items())[:5]}"
