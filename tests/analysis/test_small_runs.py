"""Runs too small for some measures (issue 10, item 1): `analyse` and `compare` still write
every output, and say "—" (with a reason) where a cell has too few trials for a number.

Each run is made by the real `mindshift run` with the simulated agent, as a user trying one
item first would make it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis import FIGURES
from mindshift.cli import main
from tests.conftest import sim_config_text

SMALL_RUNS: dict[str, tuple[str, int, str]] = {
    # name: (paradigm, items, extra [paradigm] lines)
    "one-item": ("change-of-mind", 1, ""),
    "two-items": ("change-of-mind", 2, ""),
    "hidden-only": ("change-of-mind", 3, 'displays = ["hidden"]'),
    "one-advice": ("change-of-mind", 3, 'advice = ["opposite"]'),
    "one-accuracy": ("change-of-mind", 3, "accuracies = [0.7]"),
    "one-item-hidden-neutral": (
        "change-of-mind",
        1,
        'displays = ["hidden"]\nadvice = ["neutral"]\naccuracies = [0.7]',
    ),
    "multi-advice-one-item": (
        "multi-advice",
        1,
        'displays = ["hidden"]\n'
        'sequences = [["same@0.7", "opposite@0.9"], ["opposite@0.9", "opposite@0.6"]]',
    ),
    "are-you-sure-one-item": (
        "are-you-sure",
        1,
        'domain = "world-facts"\nchallenges = ["are-you-sure", "user-suggests"]',
    ),
}


def _config(paradigm: str, items: int, extra: str) -> str:
    text = sim_config_text(name="small", items=items, extra_paradigm=extra)
    return text.replace('paradigm = "change-of-mind"', f'paradigm = "{paradigm}"')


def _make_run(root: Path, name: str, paradigm: str, items: int, extra: str) -> Path:
    config = root / f"{name}.toml"
    config.write_text(_config(paradigm, items, extra), encoding="utf-8")
    run_dir = root / name
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    return run_dir


def _strict_json(path: Path) -> dict[str, Any]:
    """summary.json parsed with NaN / Infinity refused (it is written with allow_nan=False)."""

    def refuse(token: str) -> None:
        raise AssertionError(f"{path} holds {token}")

    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
    return document


def _visible_text(report: str) -> str:
    """The report without its embedded images (base64 can spell anything)."""
    return re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', report)


def _check_outputs(out: Path) -> str:
    summary = _strict_json(out / "summary.json")
    assert summary["models"], summary
    # Every run here has two turns: every figure but the turn-by-turn one, which is drawn
    # only beyond two turns.
    for name in FIGURES:
        if name == "turns.png":
            assert not (out / name).exists()
        else:
            assert (out / name).read_bytes().startswith(b"\x89PNG"), name
    assert not list(out.rglob("*.partial"))
    report = _visible_text((out / "report.html").read_text(encoding="utf-8"))
    assert report.rstrip().endswith("</html>")
    for word in ("nan", "NaN", "None", "inf", "null", "<NA>"):
        assert not re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", report), word
    return report


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("small")
    return {
        name: _make_run(root, name, paradigm, items, extra)
        for name, (paradigm, items, extra) in SMALL_RUNS.items()
    }


@pytest.mark.parametrize("name", list(SMALL_RUNS))
def test_analyse_writes_everything_for_a_small_run(
    name: str, small_runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = small_runs[name]
    capsys.readouterr()
    assert main(["analyse", str(run_dir)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    _check_outputs(run_dir / "analysis")


def test_one_item_run_says_why_a_number_is_missing(small_runs: dict[str, Path]) -> None:
    run_dir = small_runs["one-item"]
    assert main(["analyse", str(run_dir)]) == 0
    out = run_dir / "analysis"
    report = _check_outputs(out)
    # A single question gives no item-clustered interval and no fit: say so, show "—".
    assert "—" in report
    assert "too few" in report
    summary = _strict_json(out / "summary.json")
    model = summary["models"]["sim"]
    assert model["n_trials"] == 36
    # Numbers that one item does determine are still reported.
    assert model["com_rate"]["hidden"] is not None
    assert math.isfinite(model["com_rate"]["hidden"])
    # The fit needs several items: null, with the reason beside it.
    fit = model["fit"]
    assert [fit[k] for k in ("choice_support", "w_same", "w_opposite")] == [None] * 3
    assert "too few questions" in fit["note"]
    assert model["display_coefficient"] is None
    fit_table = (out / "tables" / "fit.csv").read_text(encoding="utf-8")
    assert "too few" in fit_table


def test_compare_a_one_item_run_with_a_normal_run(
    small_runs: dict[str, Path],
    tmp_path: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(sim_config_text(name="normal", items=8), "normal.toml")
    normal = tmp_path / "normal"
    assert main(["run", str(config), "--out", str(normal)]) == 0
    out = tmp_path / "cmp"
    capsys.readouterr()
    assert main(["compare", str(small_runs["one-item"]), str(normal), "--out", str(out)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    _check_outputs(out)
    summary = _strict_json(out / "summary.json")
    models = summary["models"]
    assert len(models) == 2
    # The normal run's numbers are unaffected by the small one beside it.
    normal_model = next(m for key, m in models.items() if key.startswith("normal"))
    fit = normal_model["fit"]
    assert all(isinstance(fit[k], float) for k in ("choice_support", "w_same", "w_opposite"))
    assert fit["note"] == ""


def test_estimates_figure_marks_a_model_without_estimates() -> None:
    from mindshift.analysis.render.figures import plot_estimates

    nan = float("nan")
    names = ["display coefficient", "choice_support", "w_same", "w_opposite"]
    estimates = pd.DataFrame(
        {
            "model": ["small"] * 4 + ["big"] * 4,
            "name": names * 2,
            "estimate": [nan] * 4 + [1.0] * 4,
            "ci_low": [nan] * 4 + [0.8] * 4,
            "ci_high": [nan] * 4 + [1.2] * 4,
        }
    )
    figure = plot_estimates(estimates)
    texts = [text.get_text() for ax in figure.axes for text in ax.texts]
    # Every panel says which model it has no estimate for, rather than leaving a blank row.
    assert texts.count("not estimated") == 4


def test_per_model_figures_draw_at_most_a_readable_number_of_models() -> None:
    """200 models made 200-row figures that took minutes to draw (issue 10): a per-model
    figure draws the first MAX_PANEL_MODELS and says how many it leaves to the tables."""
    from mindshift.analysis.render.figures import MAX_PANEL_MODELS, plot_oucs

    n = MAX_PANEL_MODELS + 6
    cells = pd.DataFrame(
        {
            "model": [f"m{i:02d}" for i in range(n) for _ in range(2)],
            "display": ["shown", "hidden"] * n,
            "advice": "opposite",
            "mean": 0.1,
            "ci_low": 0.0,
            "ci_high": 0.2,
        }
    )
    figure = plot_oucs(cells)
    titled = [ax.get_title() for ax in figure.axes if ax.axison]
    assert titled == [f"m{i:02d}" for i in range(MAX_PANEL_MODELS)]
    suptitle = figure.get_suptitle()
    assert f"first {MAX_PANEL_MODELS} of {n} models" in suptitle
