"""Power analysis: simulate the `sim:bayes` agent at chosen effect sizes and item counts, and
count how often the analysis detects its biases — to size an API budget before spending it.

Why it lives in `mindshift`, the composition root: it joins the simulated agent and the
analysis's tests, and the engine (`harness`) may import neither, while the analysis reads run
directories and never runs a model (docs/design.md).

Per simulated experiment: a fresh population of `items` questions, every condition of the
design (display x advice x accuracy), the agent's answers from `SimBayesBackend.simulate` (the
agent's own equations, drawn in bulk instead of one seeded stream per call), analysed by the
same functions as a real run:
- choice-supportive bias: `analysis.choice_support_test`, the shown-minus-hidden mean
  confidence change under neutral advice, item-clustered, two-sided t test with G - 1 df;
- overweighting of opposing advice: the Tobit update fit (`analysis.fit_update_model`), the
  contrast w_opposite - w_same with its item-clustered (sandwich) error, two-sided t test.
A detection is p < alpha *and* an estimate of the predicted sign (positive). Power is the
share of detections over the simulations; its Monte Carlo standard error is reported with it.
With choice_support = 0, or w_opposite = w_same, the same share is the test's false-positive
rate, which should sit near alpha.

Speed: each simulation costs a few milliseconds (the Tobit fit dominates), and simulations
run in worker processes. Workers are started with single-threaded BLAS: a small fit gains
nothing from BLAS threads, and several processes each spinning up threads on the same cores
slow every fit down by an order of magnitude.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from typing import Final

import numpy as np
import pandas as pd

from mindshift.analysis import choice_support_test, fit_update_model
from mindshift.harness.errors import UserError
from mindshift.paradigms.agent.sim_bayes import LOGODDS_BOUND, SimBayesBackend, SimBayesParams

MAX_POWER_ITEMS: Final = 30_000
"""As many questions as a run may have (`paradigms.change_of_mind` settings)."""
MAX_SIMULATIONS: Final = 100_000
"""Monte Carlo error 0.0016 at most: further simulations change no decision."""

DISPLAYS: Final = ("shown", "hidden")
ADVICE: Final = ("same", "opposite", "neutral")
ACCURACIES: Final = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CHUNK: Final = 20
"""Simulations per task sent to a worker (amortises the inter-process overhead)."""
_BLAS_THREAD_VARIABLES: Final = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)
POWER_COLUMNS: Final = (
    "items",
    "choice_support",
    "w_same",
    "w_opposite",
    "simulations",
    "calls_per_model",
    "power_choice_support",
    "mc_se_choice_support",
    "power_overweighting",
    "mc_se_overweighting",
    "mean_choice_support_shift",
    "mean_w_difference",
)


@dataclass(frozen=True)
class PowerSettings:
    """A power study: the grid (items x choice_support x w_opposite) and the fixed rest."""

    items: tuple[int, ...] = (50, 100, 200)
    choice_support: tuple[float, ...] = (0.3,)
    w_opposite: tuple[float, ...] = (1.5,)
    w_same: float = 1.0
    noise: float = 0.3
    mu: float = 1.0
    sigma: float = 1.0
    displays: tuple[str, ...] = DISPLAYS
    advice: tuple[str, ...] = ADVICE
    accuracies: tuple[float, ...] = ACCURACIES
    simulations: int = 200
    alpha: float = 0.05
    seed: int = 0
    jobs: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))

    def check(self) -> None:
        """Raise UserError naming the first setting that cannot work."""
        if not self.items or min(self.items) < 3:
            raise UserError("power: --items must be item counts of at least 3")
        if not self.choice_support or not self.w_opposite:
            raise UserError("power: give at least one --choice-support and one --w-opposite")
        if self.simulations < 1:
            raise UserError("power: --simulations must be at least 1")
        if not 0.0 < self.alpha < 1.0:
            raise UserError("power: --alpha must be between 0 and 1")
        if self.noise < 0 or self.sigma < 0:
            raise UserError("power: --noise and --sigma must not be negative")
        if self.jobs < 1:
            raise UserError("power: --jobs must be at least 1")
        if not self.accuracies or any(not 0.5 <= a <= 1.0 for a in self.accuracies):
            raise UserError("power: --accuracies must lie in [0.5, 1]")
        if "neutral" not in self.advice or not {"shown", "hidden"} <= set(self.displays):
            raise UserError("power: the design needs shown and hidden displays and neutral advice")
        # The agent's own bounds (`SimBayesParams`): beyond them its numbers stop being finite.
        effects = [*self.choice_support, *self.w_opposite, self.w_same, self.noise, self.sigma]
        if any(not math.isfinite(x) or abs(x) > LOGODDS_BOUND for x in effects):
            raise UserError(
                f"power: effect sizes, --noise and --sigma must be finite and within "
                f"±{LOGODDS_BOUND:g} (log-odds)"
            )
        if max(self.items) > MAX_POWER_ITEMS or self.simulations > MAX_SIMULATIONS:
            raise UserError(
                f"power: at most {MAX_POWER_ITEMS:,} items and {MAX_SIMULATIONS:,} simulations "
                "per cell (more exhausts memory or time without changing the answer)"
            )

    @property
    def conditions(self) -> list[tuple[str, str, float]]:
        return list(itertools.product(self.displays, self.advice, self.accuracies))


Outcome = tuple[int, bool, bool, float, float]
"""One simulated experiment: its index, the two detections, the two estimates."""


@dataclass(frozen=True)
class _Cell:
    index: int
    items: int
    params: SimBayesParams


def simulated_trials(
    n_items: int, settings: PowerSettings, params: SimBayesParams, rng: np.random.Generator
) -> pd.DataFrame:
    """One simulated experiment as a trials table with the columns the two tests read.

    Only those columns (not the whole trials contract): building thousands of text columns
    per simulation would cost more than the fits. Item ids are integers for the same reason.
    """
    conditions = settings.conditions
    displays = [d for d, _, _ in conditions]
    advice = [a for _, a, _ in conditions]
    accuracies = [acc for _, _, acc in conditions]
    block = SimBayesBackend(params).simulate(
        n_items, displays=displays, advice=advice, accuracies=accuracies, rng=rng
    )
    k = len(conditions)
    return pd.DataFrame(
        {
            "model": "sim",
            "item_id": np.repeat(np.arange(n_items), k),
            "display": np.tile(np.array(displays, dtype=object), n_items),
            "advice": np.tile(np.array(advice, dtype=object), n_items),
            "accuracy": np.tile(np.array(accuracies, dtype=np.float64), n_items),
            "initial_confidence": np.repeat(block.initial_confidence, k),
            "final_prob_initial": block.final_prob_initial,
            "changed_mind": block.changed_mind,
        }
    )


def _one(cell: _Cell, settings: PowerSettings, sim: int) -> Outcome:
    """One simulated experiment: (simulation, detected CS, detected overweighting, CS shift,
    w difference)."""
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, cell.index, sim]))
    trials = simulated_trials(cell.items, settings, cell.params, rng)
    support = choice_support_test(trials).iloc[0]
    contrast = fit_update_model(trials).opposite_minus_same
    detected_cs = bool(support["p_value"] < settings.alpha and support["estimate"] > 0)
    detected_ow = bool(contrast["p_value"] < settings.alpha and contrast["estimate"] > 0)
    return sim, detected_cs, detected_ow, float(support["estimate"]), float(contrast["estimate"])


def _chunk(cell: _Cell, settings: PowerSettings, sims: range) -> tuple[int, list[Outcome]]:
    return cell.index, [_one(cell, settings, sim) for sim in sims]


def _cells(settings: PowerSettings) -> list[_Cell]:
    grid = itertools.product(settings.items, settings.choice_support, settings.w_opposite)
    return [
        _Cell(
            index=i,
            items=items,
            params=SimBayesParams(
                choice_support=cs,
                w_same=settings.w_same,
                w_opposite=w_opposite,
                noise=settings.noise,
                mu=settings.mu,
                sigma=settings.sigma,
            ),
        )
        for i, (items, cs, w_opposite) in enumerate(grid)
    ]


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Environment for worker processes: BLAS libraries read these when they load."""
    saved = {name: os.environ.get(name) for name in _BLAS_THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_BLAS_THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _summarise(
    cell: _Cell, settings: PowerSettings, outcomes: Sequence[Outcome]
) -> dict[str, float | int]:
    n = len(outcomes)
    cs = np.array([o[1] for o in outcomes], dtype=float)
    ow = np.array([o[2] for o in outcomes], dtype=float)
    return {
        "items": cell.items,
        "choice_support": cell.params.choice_support,
        "w_same": cell.params.w_same,
        "w_opposite": cell.params.w_opposite,
        "simulations": n,
        "calls_per_model": cell.items * (1 + len(settings.conditions)),
        "power_choice_support": float(cs.mean()),
        "mc_se_choice_support": math.sqrt(cs.mean() * (1 - cs.mean()) / n),
        "power_overweighting": float(ow.mean()),
        "mc_se_overweighting": math.sqrt(ow.mean() * (1 - ow.mean()) / n),
        "mean_choice_support_shift": float(np.nanmean([o[3] for o in outcomes])),
        "mean_w_difference": float(np.nanmean([o[4] for o in outcomes])),
    }


def power_study(
    settings: PowerSettings,
    progress: Callable[[int, int], None] | None = None,
    *,
    processes: bool = True,
) -> pd.DataFrame:
    """Power per grid cell (POWER_COLUMNS), one row per items x choice_support x w_opposite.

    `progress(done, total)` is called as simulations finish. Results depend on the seed only,
    not on the number of jobs: every simulation has its own seed (seed, cell, simulation).
    `processes=False` runs everything in this process (tests; a caller whose own BLAS is
    already single-threaded), otherwise `settings.jobs` worker processes do.
    """
    settings.check()
    cells = _cells(settings)
    tasks = [
        (cell, range(start, min(start + CHUNK, settings.simulations)))
        for cell in cells
        for start in range(0, settings.simulations, CHUNK)
    ]
    total = len(cells) * settings.simulations
    outcomes: dict[int, list[Outcome]] = {c.index: [] for c in cells}
    done = 0
    if not processes:
        for cell, sims in tasks:
            index, results = _chunk(cell, settings, sims)
            outcomes[index].extend(results)
            done += len(results)
            if progress is not None:
                progress(done, total)
    else:
        workers = min(settings.jobs, len(tasks))
        with (
            _single_threaded_blas(),
            ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool,
        ):
            futures: list[Future[tuple[int, list[Outcome]]]] = [
                pool.submit(_chunk, cell, replace(settings, jobs=1), sims) for cell, sims in tasks
            ]
            for future in as_completed(futures):
                index, results = future.result()
                outcomes[index].extend(results)
                # Chunks finish in any order: keep each cell's in simulation order, so the
                # summaries (sums of floats) do not depend on scheduling.
                outcomes[index].sort(key=lambda outcome: outcome[0])
                done += len(results)
                if progress is not None:
                    progress(done, total)
    rows = [_summarise(cell, settings, outcomes[cell.index]) for cell in cells]
    return pd.DataFrame(rows, columns=list(POWER_COLUMNS))
