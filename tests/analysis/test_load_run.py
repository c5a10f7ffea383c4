"""Reading run directories: tolerant of a crash's truncated line, loud about real damage."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from analysis import AnalysisInputError, load_run, read_jsonl

Simulate = Callable[..., pd.DataFrame]


def test_loads_a_run(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert len(run.trials) == 20 * 2 * 3 * 6 + 20 * 3 * 3 * 6
    assert run.stage1 is not None and len(run.stage1) == 40
    assert run.manifest["git"] == {"commit": "abc123", "dirty": True}


def test_truncated_last_line_is_skipped(run_dir: Path) -> None:
    calls = run_dir / "calls.jsonl"
    with calls.open("ab") as handle:
        handle.write(b'{"trial_id": "late", "stage": 1, "model": "sim", "ite')
    run = load_run(run_dir)
    assert run.stage1 is not None and len(run.stage1) == 40


def test_truncated_multibyte_character_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": "caf\xc3')
    assert read_jsonl(path) == [{"a": 1}]


def test_corrupt_middle_line_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text('{"a": 1}\n{"broken\n{"c": 3}\n')
    with pytest.raises(AnalysisInputError, match=":2 "):
        read_jsonl(path)


def test_duplicate_stage1_calls_count_once(run_dir: Path) -> None:
    calls = run_dir / "calls.jsonl"
    first = calls.read_text().splitlines()[0]
    with calls.open("a") as handle:
        handle.write(first + "\n")
        handle.write(json.dumps({"trial_id": "s2", "stage": 2, "model": "sim"}) + "\n")
    run = load_run(run_dir)
    assert run.stage1 is not None and len(run.stage1) == 40


def test_missing_calls_file_falls_back(run_dir: Path) -> None:
    (run_dir / "calls.jsonl").unlink()
    assert load_run(run_dir).stage1 is None


def test_missing_run_dir(tmp_path: Path) -> None:
    with pytest.raises(AnalysisInputError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_missing_trials(tmp_path: Path) -> None:
    with pytest.raises(AnalysisInputError, match=r"trials\.parquet"):
        load_run(tmp_path)


def test_corrupt_trials(tmp_path: Path) -> None:
    (tmp_path / "trials.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(AnalysisInputError, match="parquet"):
        load_run(tmp_path)


def test_empty_trials(tmp_path: Path, simulated: Simulate) -> None:
    simulated(n_items=2).iloc[:0].to_parquet(tmp_path / "trials.parquet")
    with pytest.raises(AnalysisInputError, match="no trials"):
        load_run(tmp_path)


def test_missing_column(tmp_path: Path, simulated: Simulate) -> None:
    simulated(n_items=2).drop(columns=["advice"]).to_parquet(tmp_path / "trials.parquet")
    with pytest.raises(AnalysisInputError, match="advice"):
        load_run(tmp_path)
