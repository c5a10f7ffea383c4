"""Benchmark: the whole analysis (everything but the PyMC fit) on a run of 1,000,000 trials.

    python bench/bench_analysis.py [--trials 1000000] [--models 2] [--dir DIR] [--keep]

Goal (issue 4): under 30 s and under 4 GiB. The run directory is synthesised once, in the
run store's own formats: trials.parquet with every column the harness writes for the
change-of-mind paradigm (`harness.trials_table.table_columns`), and a calls.jsonl with a
record of every stage-1 call (calibration split included) *and* of every stage-2 call, each
line laid out by the harness's own `CallRecord.to_line` (current record schema, the turn's
facts under `request.situation`; a stage-2 line is about 1.6 KB, like the runner's), since
the analysis reads past a million of them (the stage-1 table skips them by their first bytes;
the report's example trials parse every record). The trials come from the simulated agent
(`SimBayesBackend.simulate`, biased and with a miscalibrated readout, tau = 2), so the
calibration, the fits and the figures all do real work.

The analysis then runs in a fresh child process (`mindshift analyse RUN_DIR --fitted-model
tobit`, the CLI a user would run), so its wall time and peak resident memory (the child's
ru_maxrss) are its own, without the generator's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mindshift.harness.paradigm import TurnAnswer
from mindshift.harness.record import CallRecord, StoredRequest, record_problem
from mindshift.harness.run_format import CALLS_FILE, MANIFEST_FILE
from mindshift.harness.trial_ids import seed_from_id
from mindshift.harness.trials_table import table_columns, write_trials_table
from mindshift.harness.types import Item, Message, OptionReadout, Prompt, Usage
from mindshift.paradigms import ChangeOfMind
from mindshift.paradigms.agent.sim_bayes import SimBayesBackend, SimBayesParams
from mindshift.paradigms.facts import AdviceFacts

DISPLAYS = ("shown", "hidden")
ADVICE = ("same", "opposite", "neutral")
ACCURACIES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CALIBRATION_ITEMS = 5000
OPTIONS = ("49.78° N", "74.67° N")
QUESTION = "What is the latitude of {item_id}?"
STAGE1_PROMPT = (
    "Answer the following multiple-choice question.\n\n{question}\nA. 49.78° N\nB. 74.67° N"
    "\n\nReply with the letter of the correct option only."
)
STAGE2_PROMPT = (
    "Answer the following multiple-choice question.\n\n{question}\nA. 49.78° N\nB. 74.67° N"
    "\n\nYour initial answer was: A\nAn advice LLM that is 70% accurate recommends answer B."
    "\n\nTaking this information into account, reply with the letter of the correct option only."
)
FINISHED_AT = "2026-11-26T21:43:19.617+00:00"


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.array(
        [hashlib.sha256(f"{prefix}|{i}".encode()).hexdigest()[:20] for i in range(n)], dtype=object
    )


def _model_trials(
    model: str, params: SimBayesParams, n_items: int, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    conditions = [(d, a, acc) for d in DISPLAYS for a in ADVICE for acc in ACCURACIES]
    k = len(conditions)
    rng = np.random.default_rng(seed)
    block = SimBayesBackend(params).simulate(
        n_items,
        displays=[c[0] for c in conditions],
        advice=[c[1] for c in conditions],
        accuracies=[c[2] for c in conditions],
        rng=rng,
    )
    correct = np.where(np.arange(n_items) % 2 == 0, "A", "B").astype(object)
    initial = np.where(block.initial_correct, correct, np.where(correct == "A", "B", "A"))
    item_ids = np.array([f"lat-standard-{model}-{i}" for i in range(n_items)], dtype=object)
    stage1_ids = _ids(f"{model}|s1", n_items)
    repeat_item = np.repeat(np.arange(n_items), k)
    changed = block.changed_mind
    initial_t = initial[repeat_item]
    final = np.where(changed, np.where(initial_t == "A", "B", "A"), initial_t)
    advice = np.tile(np.array([c[1] for c in conditions], dtype=object), n_items)
    advised = np.where(
        advice == "same",
        initial_t,
        np.where(advice == "opposite", np.where(initial_t == "A", "B", "A"), None),
    )
    q = block.final_prob_initial
    display = np.tile(np.array([c[0] for c in conditions], dtype=object), n_items)
    initial_confidence = np.repeat(block.initial_confidence, k)
    shown = display == "shown"
    # Two options: the advised option is the initial answer (same) or the other one
    # (opposite); neutral advice advises none. A hidden display shows no answer.
    prob_advised = np.where(
        advice == "same",
        initial_confidence,
        np.where(advice == "opposite", 1.0 - initial_confidence, np.nan),
    )
    trials = pd.DataFrame(
        {
            "trial_id": _ids(f"{model}|s2", n_items * k),
            "initial_trial_id": stage1_ids[repeat_item],
            "model": model,
            "repeat": 0,
            "item_id": item_ids[repeat_item],
            "correct": correct[repeat_item],
            "n_options": 2,
            "condition": np.tile(
                np.array([f"{d}/{a}/{acc:.2f}" for d, a, acc in conditions], dtype=object), n_items
            ),
            "turn": 2,
            "readout": "logprobs",
            "display": display,
            "advice": advice,
            "accuracy": np.tile(np.array([c[2] for c in conditions]), n_items),
            "advised": advised,
            "initial_prob_advised": prob_advised,
            "displayed_choice": np.where(shown, initial_t, None),
            "initial_prob_displayed": np.where(shown, initial_confidence, np.nan),
            "final_prob_displayed": np.where(shown, q, np.nan),
            "advisors": None,
            "initial_choice": initial_t,
            "initial_confidence": initial_confidence,
            "initial_correct": np.repeat(block.initial_correct, k),
            "initial_censored": False,
            "initial_outside_mass": 0.0,
            "final_choice": final,
            "final_confidence": np.where(changed, 1.0 - q, q),
            "final_prob_initial": q,
            "changed_mind": changed,
            "final_correct": final == correct[repeat_item],
            "final_censored": False,
            "final_outside_mass": 0.0,
        }
    )
    # Every column, in the order, of the table the harness writes for this paradigm: a
    # column the harness adds (or drops) stops the benchmark here rather than skewing it.
    trials = trials[table_columns(ChangeOfMind)]
    stage1 = pd.DataFrame(
        {
            "trial_id": stage1_ids,
            "item_id": item_ids,
            "correct": correct,
            "choice": initial,
            "confidence": block.initial_confidence,
        }
    )
    return trials, stage1.to_numpy()


def _item(item_id: str, correct: str) -> Item:
    return Item(
        item_id=item_id,
        question=QUESTION.format(item_id=item_id),
        labels=("A", "B"),
        options=OPTIONS,
        correct=correct,
    )


def _prompt(template: str, item: Item) -> Prompt:
    content = template.format(question=item.question)
    return Prompt((Message(role="user", content=content),), "My answer is:", item.labels)


def _sim_record(**fields: Any) -> CallRecord:
    """A call record of the simulated agent with what every synthesised call shares (no
    repeat, no usage, one attempt, read by logprobs at one fixed time); `fields` the rest."""
    return CallRecord(
        repeat=0,
        spec="sim:bayes",
        paradigm="change-of-mind",
        usage=Usage(),
        latency_s=0.001,
        attempts=1,
        finished_at=FINISHED_AT,
        readout_method="logprobs",
        **fields,
    )


def _stage1_line(model: str, row: np.ndarray, condition: str) -> bytes:
    """A stage-1 call's record, as the run store writes it (`CallRecord.to_line`)."""
    trial_id, item_id, correct, choice, confidence = (str(value) for value in row)
    item = _item(item_id, correct)
    other = "B" if choice == "A" else "A"
    probs = {choice: float(confidence), other: 1.0 - float(confidence)}
    request = StoredRequest(
        prompt=_prompt(STAGE1_PROMPT, item),
        temperature=1.0,
        seed=seed_from_id(trial_id, "sample"),
        situation=AdviceFacts.initial(item).to_json(),
    )
    record = _sim_record(
        trial_id=trial_id,
        stage=1,
        model=model,
        item=item,
        condition=condition,
        request=request,
        response={"latent_logodds": 1.0},
        choice=choice,
        readout=OptionReadout(
            mass=dict(probs), probs=dict(sorted(probs.items())), outside_mass=0.0, censored=False
        ),
        batch_size=1,
    )
    return record.to_line()


STAGE2_FIELDS = ("trial_id", "item_id", "correct", "condition", "initial_trial_id", "choice")
"""The text fields of a stage-2 line that differ from trial to trial (`_stage2_template`)."""
STAGE2_NUMBERS = ("prob_a", "prob_b")
"""Its number fields: the final probabilities of A and B."""


def _stage2_template(model: str) -> str:
    """A stage-2 call's record as the run store writes it (`CallRecord.to_line`), made once
    per model as a `str.format` template of the fields that differ from trial to trial: a
    million records built one by one would take minutes. The rest (the advice in the prompt
    and in its facts) is the same on every line; only the lines' layout and length matter,
    since the analysis reads them only to pick the report's example trials."""
    item = _item("@item_id@", "@correct@")
    initial = TurnAnswer(choice="A", probs={"A": 0.7379826421322149, "B": 0.2620173578677851})
    facts = AdviceFacts.followup(
        item,
        initial,
        display="shown",
        advice="opposite",
        accuracy=0.7,
        advised="B",
        displayed="A",
    )
    # Placeholders where the numbers go: the quotes around them are dropped below.
    probs: dict[str, Any] = {"A": "@prob_a@", "B": "@prob_b@"}
    record = _sim_record(
        trial_id="@trial_id@",
        stage=2,
        model=model,
        item=item,
        condition="@condition@",
        factors={"display": "shown", "advice": "opposite", "accuracy": 0.7},
        initial_trial_id="@initial_trial_id@",
        request=StoredRequest(
            prompt=_prompt(STAGE2_PROMPT, item),
            temperature=1.0,
            seed=613664151058703693,
            situation=facts.to_json(),
        ),
        response={"logodds_initial": 0.123456789},
        choice="@choice@",
        readout=OptionReadout(mass=probs, probs=probs, outside_mass=0.0, censored=False),
        batch_size=36,
    )
    template = record.to_line().decode("utf-8").replace("{", "{{").replace("}", "}}")
    for name in STAGE2_NUMBERS:
        template = template.replace(f'"@{name}@"', f"{{{name}}}")
    for name in STAGE2_FIELDS:
        template = template.replace(f"@{name}@", f"{{{name}}}")
    return template


def _check_line(line: bytes) -> None:
    """Stop unless `line` is a call record the run store reads back as written (the report's
    example trials swallow an unreadable log, which would only make the analysis look fast)."""
    decoded = json.loads(line)
    problem = record_problem(decoded)
    if problem is not None or CallRecord.from_json(decoded).to_line() != line:
        raise SystemExit(f"a synthesised record is not the run store's: {problem or 'layout'}")


def write_run(run_dir: Path, n_trials: int, n_models: int) -> None:
    """Synthesise the run directory (trials.parquet, calls.jsonl, manifest.json)."""
    per_model = math.ceil(n_trials / n_models / 36)
    biased = SimBayesParams(
        choice_support=0.8, w_same=1.0, w_opposite=2.5, noise=0.5, tau=2.0, mu=1.0, sigma=1.4
    )
    ideal = SimBayesParams(noise=0.3)
    run_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    models = [f"model{m}" for m in range(n_models)]
    with (run_dir / CALLS_FILE).open("wb") as calls:
        for m, model in enumerate(models):
            params = biased if m % 2 == 0 else ideal
            trials, stage1 = _model_trials(model, params, per_model, seed=m)
            frames.append(trials)
            lines = [_stage1_line(model, row, "initial") for row in stage1]
            _, calibration = _model_trials(f"{model}-cal", params, CALIBRATION_ITEMS, seed=100 + m)
            lines += [_stage1_line(model, row, "calibration") for row in calibration]
            _check_line(lines[0])
            calls.writelines(lines)
            # The stage-2 records, a million in a large run, that the analysis reads past.
            template = _stage2_template(model)
            prob_a = np.where(
                trials["initial_choice"] == "A",
                trials["final_prob_initial"],
                1.0 - trials["final_prob_initial"],
            )
            columns = [trials[name] for name in ("trial_id", "item_id", "correct", "condition")]
            columns += [trials["initial_trial_id"], trials["final_choice"], prob_a, 1.0 - prob_a]
            for number, values in enumerate(zip(*columns, strict=True)):
                fields = dict(zip((*STAGE2_FIELDS, *STAGE2_NUMBERS), values, strict=True))
                line = template.format(**fields).encode("utf-8")
                if number == 0:
                    _check_line(line)
                calls.write(line)
    # As the harness writes it: stamped with the fingerprint of the calls.jsonl it was built
    # from, which tells `analyse` the log is unchanged since the harness read it.
    write_trials_table(run_dir, pd.concat(frames, ignore_index=True))
    manifest = {
        "config": {
            "experiment": {"name": "bench", "paradigm": "change-of-mind"},
            "models": [{"id": m} for m in models],
        }
    }
    (run_dir / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--dir", help="run directory (reused if it holds trials.parquet)")
    parser.add_argument("--keep", action="store_true", help="keep a temporary run directory")
    args = parser.parse_args()
    scratch: Path | None = None
    if args.dir:
        run_dir = Path(args.dir)
    else:
        base = Path(tempfile.mkdtemp(prefix="mindshift-bench-"))
        run_dir = base / "run"
        scratch = None if args.keep else base
    try:
        return _bench(run_dir, args.trials, args.models)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _bench(run_dir: Path, n_trials: int, n_models: int) -> int:
    if not (run_dir / "trials.parquet").is_file():
        started = time.perf_counter()
        write_run(run_dir, n_trials, n_models)
        size = (run_dir / "calls.jsonl").stat().st_size / 2**30
        print(
            f"synthesised {run_dir} in {time.perf_counter() - started:.1f} s "
            f"(calls.jsonl {size:.2f} GiB)"
        )
    trials = len(pd.read_parquet(run_dir / "trials.parquet", columns=["trial_id"]))
    command = [
        sys.executable,
        "-m",
        "mindshift.cli",
        "analyse",
        str(run_dir),
        "--fitted-model",
        "tobit",
    ]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
    if result.returncode != 0:
        print(result.stdout, result.stderr, sep="\n")
        return result.returncode
    print(f"analysis of {trials:,} trials: {wall:.1f} s wall, peak RSS {peak_gib:.2f} GiB")
    print(f"command: {' '.join(command)}")
    print(f"goal: < 30 s and < 4 GiB -> {'met' if wall < 30 and peak_gib < 4 else 'NOT met'}")
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
