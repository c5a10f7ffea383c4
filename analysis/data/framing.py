"""Which option a trial's measures are framed on: the answer displayed as the model's own.

Every measure is framed on "the initially chosen option" (docs/paradigm.md §3). In the main design
that is the model's stage-1 answer, which stage 2 displays (or hides). The `answer-wrong`
control displays a wrong option as if it were the model's own answer, and the advice is
defined relative to that displayed answer; its trials are framed on the displayed answer:
- `initial_choice` := the displayed answer, `initial_correct` := whether it is correct;
- `initial_confidence` := its stage-1 probability (what the model actually believed of it:
  the prior an ideal observer, told it had chosen it, would update);
- `final_prob_initial` := its final probability; `changed_mind` := the final answer differs
  from it (so CoM under answer-wrong means leaving the displayed wrong answer).
The model's own stage-1 answer, confidence and correctness stay in `stage1_choice`,
`stage1_confidence` and `stage1_correct` for every trial, and `reframed` flags the rows
changed here. Initial accuracy is computed from the stage-1 calls, never from framed rows.
Framing a framed table (one with `reframed`) changes nothing: it is returned as it is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def frame_on_displayed(trials: pd.DataFrame) -> pd.DataFrame:
    """`trials` framed on the displayed answer where it differs from the stage-1 answer.

    Needs the (validated) `displayed_choice`, `initial_prob_displayed` and
    `final_prob_displayed` columns; rows without a displayed answer are left as they are.
    """
    if "reframed" in trials.columns:
        return trials
    displayed = trials["displayed_choice"]
    initial = trials["initial_choice"]
    moved = (displayed.notna() & initial.notna() & displayed.ne(initial)).to_numpy(bool)
    out = trials.assign(
        stage1_choice=initial,
        stage1_confidence=trials["initial_confidence"],
        stage1_correct=trials["initial_correct"],
        reframed=moved,
    )
    if not moved.any():
        return out
    final = out["final_choice"]
    new_initial = displayed.where(moved, initial)
    return out.assign(
        initial_choice=new_initial,
        initial_correct=np.where(
            moved, displayed.eq(out["correct"]).to_numpy(bool), out["initial_correct"]
        ),
        initial_confidence=out["initial_prob_displayed"].where(moved, out["initial_confidence"]),
        final_prob_initial=out["final_prob_displayed"].where(moved, out["final_prob_initial"]),
        changed_mind=np.where(
            moved, (final.notna() & final.ne(new_initial)).to_numpy(bool), out["changed_mind"]
        ),
    )
