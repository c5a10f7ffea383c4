"""The shared clipping rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mindshift.analysis import CLIP_HIGH, CLIP_LOW, clip, expit, logit


def test_clip_bounds_and_nan() -> None:
    assert (CLIP_LOW, CLIP_HIGH) == (0.01, 0.99)
    assert clip([0.0, 0.5, 1.0]).tolist() == [0.01, 0.5, 0.99]
    assert math.isnan(float(clip(float("nan"))))


def test_logit_clips_before_taking_log_odds() -> None:
    # logit(0.99) = ln(99) = 4.59512; 1.0 reads as 0.99, never as infinity.
    assert float(logit(1.0)) == float(logit(0.99)) == math.log(99.0)
    assert float(logit(0.0)) == -math.log(99.0)
    assert float(logit(0.5)) == 0.0
    # logit(0.8) = ln 4
    np.testing.assert_allclose(logit(0.8), math.log(4.0))


def test_expit_inverts_logit_inside_the_bounds() -> None:
    p = np.array([0.01, 0.2, 0.5, 0.77, 0.99])
    np.testing.assert_allclose(expit(logit(p)), p)


def test_the_bound_is_an_option() -> None:
    from mindshift.analysis import BAYES_CLIP

    assert BAYES_CLIP == 0.01
    assert clip([0.0, 1.0], 0.05).tolist() == [0.05, 0.95]
    # Exact (bound 0): 1.0 and 0.0 have infinite log-odds, 0.999 its own.
    assert float(logit(1.0, 0.0)) == math.inf and float(logit(0.0, 0.0)) == -math.inf
    assert float(logit(0.999, 0.0)) == pytest.approx(math.log(0.999 / 0.001), rel=1e-12)


def test_check_bound_refuses_values_outside_zero_to_half() -> None:
    from mindshift.analysis import AnalysisInputError, check_bound

    assert check_bound(0) == 0.0 and check_bound(0.2) == 0.2
    for bad in (-0.01, 0.5, 0.7, float("nan"), float("inf"), "x"):
        with pytest.raises(AnalysisInputError, match="bayes clip"):
            check_bound(bad)  # type: ignore[arg-type]
