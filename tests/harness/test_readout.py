import math

import pytest

from mindshift.harness.readout import (
    ReadoutError,
    readout_from_masses,
    readout_from_top_logprobs,
    sample_choice,
    tempered,
)


def test_logprob_of_zero_is_certainty_not_missing() -> None:
    readout = readout_from_top_logprobs([(" A", 0.0), (" B", -30.0)], ["A", "B"])
    assert readout.mass["A"] == 1.0
    assert readout.probs is not None
    assert readout.probs["A"] == pytest.approx(1.0)
    assert not readout.censored


def test_zero_logprob_for_a_second_variant_is_added() -> None:
    # "A" first at -inf-ish, then " A" at 0.0: the 0.0 must not be treated as absent.
    readout = readout_from_top_logprobs([("A", -50.0), (" A", 0.0), ("B", -20.0)], ["A", "B"])
    assert readout.mass["A"] == pytest.approx(1.0 + math.exp(-50.0))


def test_token_variants_are_merged() -> None:
    top = [
        (" A", math.log(0.5)),
        ("A", math.log(0.2)),
        (" B", math.log(0.1)),
        ("\n", math.log(0.05)),
    ]
    readout = readout_from_top_logprobs(top, ["A", "B"])
    assert readout.mass["A"] == pytest.approx(0.7)
    assert readout.mass["B"] == pytest.approx(0.1)
    assert readout.probs == pytest.approx({"A": 0.875, "B": 0.125})
    assert readout.outside_mass == pytest.approx(0.2)


def test_label_missing_from_top_k_is_censored_not_invented() -> None:
    top = [(" A", math.log(0.6)), ("The", math.log(0.3)), ("\n", math.log(0.04))]
    readout = readout_from_top_logprobs(top, ["A", "B"])
    assert readout.censored
    assert readout.mass["B"] is None
    assert readout.probs is None
    assert readout.outside_mass is None
    assert readout.upper_bound["B"] == pytest.approx(0.04)


def test_label_missing_from_a_complete_distribution_has_probability_zero() -> None:
    readout = readout_from_top_logprobs([(" A", math.log(0.9))], ["A", "B"], complete=True)
    assert not readout.censored
    assert readout.mass["B"] == 0.0
    assert readout.probs == {"A": 1.0, "B": 0.0}


def test_invalid_logprobs_are_rejected() -> None:
    with pytest.raises(ReadoutError):
        readout_from_top_logprobs([(" A", float("nan"))], ["A", "B"])
    with pytest.raises(ReadoutError):
        readout_from_top_logprobs([(" A", 0.5)], ["A", "B"])
    with pytest.raises(ReadoutError):
        readout_from_top_logprobs([(" A", -1.0)], [])


def test_masses_with_zero_total_give_no_probabilities() -> None:
    readout = readout_from_masses({"A": 0.0, "B": 0.0})
    assert readout.probs is None
    assert readout.outside_mass == 1.0


def test_sampling_is_seeded_and_follows_the_probabilities() -> None:
    probs = {"A": 0.3, "B": 0.7}
    assert sample_choice(probs, 1.0, 42) == sample_choice(probs, 1.0, 42)
    draws = [sample_choice(probs, 1.0, seed) for seed in range(4000)]
    assert draws.count("A") / len(draws) == pytest.approx(0.3, abs=0.03)


def test_temperature_zero_is_argmax_and_temperature_sharpens() -> None:
    assert sample_choice({"A": 0.4, "B": 0.6}, 0.0, 1) == "B"
    sharpened = tempered({"A": 0.2, "B": 0.8}, 0.5)
    assert sharpened["B"] == pytest.approx(0.64 / 0.68)
    assert tempered({"A": 0.2, "B": 0.8}, 1.0) == pytest.approx({"A": 0.2, "B": 0.8})
