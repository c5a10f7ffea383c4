"""Figures: labelled panels, one per model (x display), and no crash on missing confidences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from mindshift.analysis import (
    FIGURES,
    com_rates,
    compute_results,
    confidence_change,
    plot_com_by_accuracy,
    plot_confidence_change,
    render_figures,
    validate_trials,
)

Simulate = Callable[..., pd.DataFrame]


def test_com_figure_has_a_labelled_panel_per_model_and_display(simulated: Simulate) -> None:
    trials = pd.concat(
        [simulated(model="a", n_items=6), simulated(model="b", n_items=6, seed=2)],
        ignore_index=True,
    )
    table = com_rates(validate_trials(trials), ("display", "advice", "accuracy"))
    figure = plot_com_by_accuracy(table)
    panels = [ax for ax in figure.axes if ax.axison]
    assert len(panels) == 2 * 2
    assert {ax.get_title() for ax in panels} == {
        "a — shown",
        "a — hidden",
        "b — shown",
        "b — hidden",
    }
    assert all(ax.get_xlabel() == "stated advice accuracy (%)" for ax in panels)
    assert figure.legends  # one legend for the figure, naming the advice types
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["same", "opposite", "neutral"]


def test_many_models_wrap_into_rows(simulated: Simulate) -> None:
    trials = pd.concat(
        [simulated(model=f"m{i}", n_items=4, seed=i) for i in range(4)], ignore_index=True
    )
    figure = plot_confidence_change(confidence_change(validate_trials(trials)))
    visible = [ax for ax in figure.axes if ax.axison]
    assert len(visible) == 4
    # Three per row: the first panel of each row carries the y label.
    assert sum(bool(ax.get_ylabel()) for ax in visible) == 2


def test_choice_only_model_still_renders(simulated: Simulate) -> None:
    trials = simulated(n_items=4).assign(initial_confidence=np.nan, final_prob_initial=np.nan)
    images = render_figures(compute_results(trials, fitted_model="tobit"))
    # Every figure but the turn-by-turn one (drawn only beyond two turns).
    assert list(images) == [name for name in FIGURES if name != "turns.png"]
    assert all(png.startswith(b"\x89PNG") for png in images.values())
