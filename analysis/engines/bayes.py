"""The normative baseline: an ideal Bayesian observer's confidence after the advice.

Everything is framed on the initially chosen option i (its stage-1 probability c = p_i) and
stated on the log-odds scale: logit(post) = logit(c) + Delta, where Delta is the advice's
Bayes log-odds shift of option i.

K options (docs/paradigm.md §4). An advisor of accuracy a recommends option r; it names the truth
with probability a and, when wrong, picks uniformly among the K - 1 other options. Its
likelihood for "the truth is j" is L_j = a if j = r, else (1 - a) / (K - 1), and
post_i = p_i L_i / sum_j p_j L_j. In log-odds, with Lbar the average likelihood of the other
options weighted by their stage-1 probabilities, Delta = log L_i - log Lbar:
- same (r = i):      Delta = logit(a) + log(K - 1);
- opposite (r != i): Delta = log((1 - a) / (K - 1)) - log(w a + (1 - w)(1 - a) / (K - 1)),
  with w = p_r / (1 - p_i), the advised option's share of the mass i does not hold;
- neutral:           Delta = 0.
It needs only p_i, p_r and K. For K = 2 (w = 1) it is s * logit(a), s = +1 / -1 / 0, and that
two-option expression is used verbatim there, so two-option results are bit-identical to the
original baseline: c*a / (c*a + (1-c)*(1-a)) for `same` away from the clip bounds.

Clipping (`analysis.engines.logodds`): a is clipped to [bound, 1 - bound] before any logit or
likelihood, and c before its logit; w is a share and is only bounded to [0, 1] (when i held
all the mass, w is unknown and taken as uniform, 1 / (K - 1)). The bound is `bayes_clip`,
0.01 by default (the simulated agent's rule, so a Bayesian agent matches this baseline to
rounding error); 0 is exact Bayes, where a = 1.0 moves the posterior to 1 (same) or 0
(opposite) and a certain prior against certain contrary advice is undefined (NaN).

A sequence of advisors (`multi-advice`) adds its shifts: each advisor's Delta is computed from
the ideal observer's distribution after the advisors before it, and
logit(post) = logit(c) + sum_k Delta_k (for K = 2, sum_k s_k logit(a_k)).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from mindshift.analysis.engines.logodds import BAYES_CLIP, FloatArray, clip, expit, logit

ADVICE_SIGN: Final[dict[str, float]] = {"same": 1.0, "opposite": -1.0, "neutral": 0.0}
"""Direction of the advice's evidence for the initially chosen option."""


def advice_sign(advice: npt.ArrayLike) -> FloatArray:
    """+1 / -1 / 0 for same / opposite / neutral advice; NaN for an unknown advice type."""
    # Factorise first: one dictionary look-up per distinct label, not per trial.
    flat = advice if isinstance(advice, pd.Series) else np.ravel(np.asarray(advice, dtype=object))
    codes, labels = pd.factorize(flat)
    lookup = np.array([ADVICE_SIGN.get(str(label), np.nan) for label in labels] + [np.nan])
    # Code -1 (a missing label) indexes the trailing NaN.
    return np.asarray(lookup[codes].reshape(np.shape(advice)), dtype=np.float64)


def advice_evidence(
    accuracy: npt.ArrayLike, advice: npt.ArrayLike, bayes_clip: float = BAYES_CLIP
) -> FloatArray:
    """s * logit(a): the advice's log-likelihood ratio for the initially chosen option (K = 2).

    Neutral advice carries no evidence whatever accuracy is recorded for it (even a missing
    one), so it is exactly 0 rather than 0 * NaN.
    """
    sign = advice_sign(advice)
    log_odds = logit(accuracy, bayes_clip)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.where(sign == 0.0, 0.0, sign * log_odds), dtype=np.float64)


def advised_share(
    initial_prob: npt.ArrayLike, advised_prob: npt.ArrayLike, n_options: npt.ArrayLike
) -> FloatArray:
    """w = p_r / (1 - p_i): the advised option's share of the mass the initial choice lacks.

    Bounded to [0, 1]; where 1 - p_i is 0 (or unknown K-option data makes it NaN) the share
    is uniform, 1 / (K - 1) — no information on how the rest is split. NaN p_r stays NaN.
    """
    p_i = np.asarray(initial_prob, dtype=np.float64)
    p_r = np.asarray(advised_prob, dtype=np.float64)
    k = np.asarray(n_options, dtype=np.float64)
    rest = 1.0 - p_i
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(rest > 0.0, p_r / rest, 1.0 / (k - 1.0))
    return np.asarray(np.clip(share, 0.0, 1.0), dtype=np.float64)


def bayes_shift(
    accuracy: npt.ArrayLike,
    advice: npt.ArrayLike,
    n_options: npt.ArrayLike = 2,
    share: npt.ArrayLike = np.nan,
    bayes_clip: float = BAYES_CLIP,
) -> FloatArray:
    """Delta: the ideal observer's log-odds shift of the initially chosen option (module doc).

    `share` is `advised_share(p_i, p_r, K)`, needed only by opposite advice with K > 2
    (NaN there gives NaN). Unknown advice types give NaN; neutral advice gives exactly 0.
    """
    two_option = advice_evidence(accuracy, advice, bayes_clip)
    k = np.asarray(n_options, dtype=np.float64)
    a = clip(accuracy, bayes_clip)
    w = np.asarray(share, dtype=np.float64)
    sign = advice_sign(advice)
    with np.errstate(divide="ignore", invalid="ignore"):
        wrong = (1.0 - a) / (k - 1.0)
        same = logit(a, bayes_clip) + np.log(k - 1.0)
        opposite = np.log(wrong) - np.log(w * a + (1.0 - w) * wrong)
    many = np.where(sign > 0.0, same, np.where(sign < 0.0, opposite, two_option))
    return np.asarray(np.where(k == 2.0, two_option, many), dtype=np.float64)


def bayes_posterior(
    confidence: npt.ArrayLike,
    accuracy: npt.ArrayLike,
    advice: npt.ArrayLike,
    *,
    n_options: npt.ArrayLike = 2,
    advised_prob: npt.ArrayLike = np.nan,
    bayes_clip: float = BAYES_CLIP,
) -> FloatArray:
    """The ideal observer's probability of the initially chosen option after the advice.

    `confidence` is p_i; with K > 2 options, opposite advice also needs `advised_prob`, the
    stage-1 probability p_r of the option the advice recommends (docs/paradigm.md §4).
    """
    share = advised_share(confidence, advised_prob, n_options)
    shift = bayes_shift(accuracy, advice, n_options, share, bayes_clip)
    with np.errstate(invalid="ignore"):
        return expit(logit(confidence, bayes_clip) + shift)


def with_bayes(trials: pd.DataFrame, bayes_clip: float = BAYES_CLIP) -> pd.DataFrame:
    """`trials` with `bayes_shift` and `bayes_post` columns (NaN where they cannot be known),
    probabilities clipped to [bayes_clip, 1 - bayes_clip] before every logit.

    A trial with a sequence of `advisors` (multi-advice) gets the sequence's summed shift.
    K-option trials need `initial_prob_advised` for opposite advice; a table without that
    column (written before it existed) gets NaN there rather than a two-option number that
    would silently ignore the other options' probabilities.
    """
    c = trials["initial_confidence"].to_numpy(np.float64)
    advised = (
        trials["initial_prob_advised"].to_numpy(np.float64)
        if "initial_prob_advised" in trials.columns
        else np.full(len(trials), np.nan)
    )
    # A lean table (the power study's) without `n_options` is a two-option design.
    k = (
        trials["n_options"].to_numpy(np.float64)
        if "n_options" in trials.columns
        else np.full(len(trials), 2.0)
    )
    # A table without the advice columns (a protocol that declares none) has no advice to
    # update on: its baseline is unknown, NaN, as for a trial without an advice factor.
    unknown = pd.Series(np.nan, index=trials.index, dtype=np.float64)
    shift = bayes_shift(
        trials.get("accuracy", unknown).to_numpy(np.float64),
        trials.get("advice", unknown.astype(object)),
        k,
        advised_share(c, advised, k),
        bayes_clip,
    )
    if "advisors" in trials.columns:
        # A sequence of advisors (multi-advice): its shifts add up (one Python step per row;
        # such runs are small next to the million-trial main design).
        texts = trials["advisors"].to_numpy(object)
        choices = trials["initial_choice"].to_numpy(object)
        for row in np.flatnonzero(trials["advisors"].notna().to_numpy(bool)):
            shift[row] = sequence_posterior(
                float(c[row]),
                str(choices[row]),
                parse_advisors(str(texts[row])),
                int(k[row]),
                bayes_clip,
            )[0]
    with np.errstate(invalid="ignore"):
        post = expit(logit(c, bayes_clip) + shift)
    return trials.assign(bayes_shift=shift, bayes_post=post)


Advisor = tuple[str, float, str | None, float]
"""One advisor of a sequence: (advice type, stated accuracy, advised label or None, the
advised option's stage-1 probability or NaN)."""


def sequence_shifts(
    confidence: float,
    initial: str,
    advisors: Sequence[Advisor],
    n_options: int,
    bayes_clip: float = BAYES_CLIP,
) -> list[float]:
    """Delta_k of each advisor of a sequence, for the initially chosen option `initial`.

    Each shift is computed from the ideal observer's distribution after the advisors before
    it. For two options they are s_k * logit(a_k) exactly. With K options only the options
    some advisor names matter individually: every other option has the same likelihood under
    every advisor, so they are lumped into one mass (what makes p_i and the advised options'
    probabilities enough, as for one advisor). An unknown probability gives NaN shifts.
    """
    if n_options == 2:
        return [float(bayes_shift(a, kind, 2, bayes_clip=bayes_clip)) for kind, a, _, _ in advisors]
    labels = [initial]
    mass = [float(confidence)]
    for kind, _, advised, p_advised in advisors:
        if kind != "neutral" and advised is None:
            return [float("nan")] * len(advisors)
        if advised is not None and advised not in labels:
            labels.append(advised)
            mass.append(float(p_advised))
    current = np.asarray(mass, dtype=np.float64)
    if not np.all(np.isfinite(current)):
        return [float("nan")] * len(advisors)
    named_others = len(labels) - 1
    lumped = max(n_options - 1 - named_others, 0)
    rest = max(1.0 - float(current.sum()), 0.0) if lumped else 0.0
    others = float(current[1:].sum()) + rest
    if others <= 0.0:
        # The initial choice held all the mass: the rest is taken as uniform (as advised_share).
        current[1:] = 1.0 / (n_options - 1)
        rest = lumped / (n_options - 1)
    shifts: list[float] = []
    for kind, accuracy, advised, _ in advisors:
        if kind not in ADVICE_SIGN or kind == "neutral":
            shifts.append(0.0 if kind == "neutral" else float("nan"))
            continue
        a = float(clip(accuracy, bayes_clip))
        wrong = (1.0 - a) / (n_options - 1)
        likelihood = np.full(len(labels), wrong)
        likelihood[labels.index(str(advised))] = a
        other_mass = float(current[1:].sum()) + rest
        if other_mass > 0.0:
            mean_other = (float(current[1:] @ likelihood[1:]) + rest * wrong) / other_mass
        else:
            # Exact Bayes after a certain advisor: the other options hold no mass, so their
            # split is unknown and taken as uniform (as `advised_share`).
            mean_other = (float(likelihood[1:].sum()) + lumped * wrong) / (n_options - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            shifts.append(float(np.log(likelihood[0]) - np.log(mean_other)))
        current = current * likelihood
        rest *= wrong
        total = float(current.sum()) + rest
        if total <= 0.0:
            # Exact Bayes (bayes_clip 0): certain advisors that contradict each other leave
            # no option possible; what follows is undefined.
            shifts.extend([float("nan")] * (len(advisors) - len(shifts)))
            break
        current, rest = current / total, rest / total
    return shifts


def sequence_posterior(
    confidence: float,
    initial: str,
    advisors: Sequence[Advisor],
    n_options: int,
    bayes_clip: float = BAYES_CLIP,
) -> tuple[float, float]:
    """(sum of the shifts, posterior) of the initially chosen option after a sequence.

    logit(post) = logit(c) + sum_k Delta_k, c clipped as everywhere (`sequence_shifts`).
    """
    with np.errstate(invalid="ignore"):
        total = float(sum(sequence_shifts(confidence, initial, advisors, n_options, bayes_clip)))
        return total, float(expit(logit(confidence, bayes_clip) + total))


def parse_advisors(text: str) -> list[Advisor]:
    """The `advisors` column of trials.parquet (JSON text) as a list of `Advisor`."""
    advisors: list[Advisor] = []
    for one in json.loads(text):
        advised = one.get("advised")
        p_advised = one.get("initial_prob_advised")
        advisors.append(
            (
                str(one["advice"]),
                float(one["accuracy"]),
                None if advised is None else str(advised),
                float("nan") if p_advised is None else float(p_advised),
            )
        )
    return advisors
