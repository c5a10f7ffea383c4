"""Builders shared by the analysis tests: hand-made trial rows and a simulated agent's run.

The simulator follows the `sim:bayes` semantics of docs/design.md (clipped logits, choice support
on `shown` only), written independently of the analysis code it checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

TrialsFactory = Callable[..., pd.DataFrame]


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 0.01, 0.99)
    return np.asarray(np.log(q / (1.0 - q)))


def _row(index: int, **values: Any) -> dict[str, Any]:
    """One trial with every contract column; `values` override the defaults."""
    display = values.get("display", "hidden")
    advice = values.get("advice", "neutral")
    accuracy = values.get("accuracy", 0.7)
    row: dict[str, Any] = {
        "trial_id": f"t{index}",
        "initial_trial_id": f"i{index}",
        "model": "m",
        "repeat": 0,
        "item_id": f"item{index}",
        "correct": "A",
        "n_options": 2,
        "condition": f"{display}/{advice}/{accuracy:.2f}",
        "display": display,
        "advice": advice,
        "accuracy": accuracy,
        "initial_choice": "A",
        "initial_confidence": 0.8,
        "initial_correct": True,
        "final_choice": "A",
        "final_prob_initial": 0.8,
        "changed_mind": False,
        "final_correct": True,
        "initial_censored": False,
        "final_censored": False,
    }
    row.update(values)
    return row


@pytest.fixture(scope="session")
def make_trials() -> Callable[[Iterable[dict[str, Any]]], pd.DataFrame]:
    """Build a trials table from partial rows (dicts of the columns that matter)."""

    def build(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame([_row(i, **values) for i, values in enumerate(rows)])

    return build


def simulate(
    *,
    choice_support: float = 0.8,
    w_same: float = 1.0,
    w_opposite: float = 2.5,
    noise: float = 0.3,
    n_items: int = 60,
    repeats: int = 1,
    displays: tuple[str, ...] = ("shown", "hidden"),
    advice: tuple[str, ...] = ("same", "opposite", "neutral"),
    accuracies: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    model: str = "sim",
    seed: int = 0,
) -> pd.DataFrame:
    """Trials of the simulated agent: every item x repeat x condition, as the harness writes."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(1.0, 1.5, n_items)  # log-odds for the correct option, per item
    rows: list[dict[str, Any]] = []
    for item, repeat in product(range(n_items), range(repeats)):
        correct = "A" if item % 2 == 0 else "B"
        other = "B" if correct == "A" else "A"
        p_correct = 1.0 / (1.0 + math.exp(-latent[item]))
        chose_correct = bool(rng.random() < p_correct)
        confidence = p_correct if chose_correct else 1.0 - p_correct
        initial = correct if chose_correct else other
        initial_id = f"{model}-{item}-{repeat}-s1"
        for display, kind, accuracy in product(displays, advice, accuracies):
            sign = {"same": w_same, "opposite": -w_opposite, "neutral": 0.0}[kind]
            log_odds = (
                _logit(np.array(confidence))
                + choice_support * (display == "shown")
                + sign * _logit(np.array(accuracy))
                + rng.normal(0.0, 1.0) * noise
            )
            q = float(1.0 / (1.0 + np.exp(-log_odds)))
            final = initial if rng.random() < q else ("B" if initial == "A" else "A")
            rows.append(
                {
                    "trial_id": f"{initial_id}-{display}-{kind}-{accuracy:.2f}",
                    "initial_trial_id": initial_id,
                    "model": model,
                    "repeat": repeat,
                    "item_id": f"lat{item}",
                    "correct": correct,
                    "n_options": 2,
                    "condition": f"{display}/{kind}/{accuracy:.2f}",
                    "display": display,
                    "advice": kind,
                    "accuracy": accuracy,
                    "initial_choice": initial,
                    "initial_confidence": confidence,
                    "initial_correct": chose_correct,
                    "final_choice": final,
                    "final_prob_initial": q,
                    "changed_mind": final != initial,
                    "final_correct": final == correct,
                    "initial_censored": False,
                    "final_censored": False,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def simulated() -> Callable[..., pd.DataFrame]:
    """The simulated agent's trials table (see `simulate` for the keyword arguments)."""
    return simulate


def write_run(run_dir: Path, trials: pd.DataFrame) -> Path:
    """A run directory with trials.parquet and the stage-1 calls in calls.jsonl."""
    run_dir.mkdir(parents=True, exist_ok=True)
    trials.to_parquet(run_dir / "trials.parquet")
    stage1 = trials.drop_duplicates("initial_trial_id")
    with (run_dir / "calls.jsonl").open("w", encoding="utf-8") as handle:
        for _, row in stage1.iterrows():
            record = {
                "trial_id": row["initial_trial_id"],
                "stage": 1,
                "model": row["model"],
                "item": {"id": row["item_id"], "correct": row["correct"]},
                "choice": row["initial_choice"],
            }
            handle.write(json.dumps(record) + "\n")
    manifest = {
        "config": {"experiment": {"name": "test"}, "models": [{"id": "sim", "spec": "sim:bayes"}]},
        "git": {"commit": "abc123", "dirty": True},
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


@pytest.fixture(scope="session")
def write_run_dir() -> Callable[[Path, pd.DataFrame], Path]:
    """Write a run directory (see `write_run`)."""
    return write_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A small two-model run directory of simulated agents."""
    trials = pd.concat(
        [
            simulate(model="sim", n_items=20, seed=1),
            simulate(
                model="bayes",
                choice_support=0.0,
                w_same=1.0,
                w_opposite=1.0,
                noise=0.0,
                n_items=20,
                seed=2,
                displays=("shown", "hidden", "other"),
            ),
        ],
        ignore_index=True,
    )
    return write_run(tmp_path / "run", trials)
