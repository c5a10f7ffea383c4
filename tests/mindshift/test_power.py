"""Power analysis: the tests hold their level under the null and detect real effects."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mindshift.cli import main
from mindshift.harness.errors import UserError
from mindshift.power import CHUNK, PowerSettings, power_study


def _study(**overrides: object) -> dict[str, float]:
    settings = PowerSettings(**{"jobs": 1, "noise": 1.0, **overrides})  # type: ignore[arg-type]
    row = power_study(settings, processes=False).iloc[0]
    return {str(k): v for k, v in row.items()}


def test_false_positive_rate_is_near_alpha_under_the_null() -> None:
    # A detection needs p < alpha (two-sided) *and* the predicted sign, so under the null a
    # test of the right size detects at alpha / 2 = 0.025. 400 simulations put the Monte
    # Carlo SE at 0.008: a rate in [0.01, 0.10] is a test of about the right size, one
    # outside it is too liberal (errors too small, e.g. not clustered by item) or too
    # conservative. Two worker processes, as `mindshift power` runs them (same numbers).
    settings = PowerSettings(
        items=(12,), choice_support=(0.0,), w_opposite=(1.0,), simulations=400, noise=1.0, jobs=2
    )
    row = power_study(settings).iloc[0]
    assert 0.01 <= row["power_choice_support"] <= 0.10
    assert 0.01 <= row["power_overweighting"] <= 0.10
    assert abs(row["mean_w_difference"]) < 0.05
    assert abs(row["mean_choice_support_shift"]) < 0.01


def test_real_effects_are_detected_and_estimated() -> None:
    row = _study(items=(30,), choice_support=(1.0,), w_opposite=(2.0,), simulations=10)
    assert row["power_choice_support"] >= 0.9 and row["power_overweighting"] >= 0.9
    assert row["mean_w_difference"] == pytest.approx(1.0, abs=0.1)
    assert row["calls_per_model"] == 30 * 37


def test_grid_and_determinism() -> None:
    settings = PowerSettings(
        items=(6, 12), choice_support=(0.0, 0.5), w_opposite=(1.2,), simulations=3, jobs=1
    )
    first = power_study(settings, processes=False)
    assert len(first) == 4 and list(first["items"]) == [6, 6, 12, 12]
    assert first.equals(power_study(settings, processes=False))


@pytest.mark.parametrize(
    "overrides",
    [{"items": (2,)}, {"simulations": 0}, {"alpha": 1.5}, {"noise": -1.0}, {"accuracies": (0.3,)}],
)
def test_bad_settings_are_user_errors(overrides: dict[str, object]) -> None:
    with pytest.raises(UserError):
        PowerSettings(**overrides).check()  # type: ignore[arg-type]


def test_cli_prints_the_table_and_writes_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "power.csv"
    # Two tasks for the worker processes; the numbers equal those of an in-process study.
    args = ["--items", "6", "--simulations", str(CHUNK + 2), "--jobs", "2", "--seed", "3"]
    assert main(["power", *args, "--out", str(out)]) == 0
    assert "opp > same" in capsys.readouterr().out
    settings = PowerSettings(
        items=(6,),
        simulations=CHUNK + 2,
        seed=3,
        noise=1.0,
        choice_support=(0.2,),
        w_opposite=(1.2,),
        jobs=1,
    )
    expected = power_study(settings, processes=False)
    # Equal up to rounding: BLAS in the workers is single-threaded, here it may not be.
    pd.testing.assert_frame_equal(pd.read_csv(out), expected, rtol=1e-9, check_dtype=False)
    assert main(["power", "--items", "1"]) == 2
    assert "at least 3" in capsys.readouterr().err
