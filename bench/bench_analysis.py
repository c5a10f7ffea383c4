"""Benchmark: the whole analysis (everything but the PyMC fit) on a run of 1,000,000 trials.

    python bench/bench_analysis.py [--trials 1000000] [--models 2] [--dir DIR] [--keep]

Goal (issue 4): under 30 s and under 4 GiB. The run directory is synthesised once, in the
run store's own formats: trials.parquet with every column the harness writes, and a
calls.jsonl with every stage-1 call (calibration split included) *and* one realistic line per
stage-2 call (about 1.8 KB each, like the runner's records), since the analysis must read past
a million of them. The trials come from the simulated agent (`SimBayesBackend.simulate`,
biased and with a miscalibrated readout, tau = 2), so the calibration, the fits and the figures
all do real work.

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

import numpy as np
import pandas as pd

from mindshift.harness.trials_table import write_trials_table
from mindshift.paradigms.agent.sim_bayes import SimBayesBackend, SimBayesParams

DISPLAYS = ("shown", "hidden")
ADVICE = ("same", "opposite", "neutral")
ACCURACIES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
CALIBRATION_ITEMS = 5000
PROMPT = (
    "Answer the following multiple-choice question.\\n\\nWhat is the latitude of {city}?\\n"
    "A. 49.78° N\\nB. 74.67° N\\n\\nYour initial answer was: A\\nAn advice LLM that is 70% "
    "accurate recommends answer B.\\n\\nTaking this information into account, reply with the "
    "letter of the correct option only."
)


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
            "display": np.tile(np.array([c[0] for c in conditions], dtype=object), n_items),
            "advice": advice,
            "accuracy": np.tile(np.array([c[2] for c in conditions]), n_items),
            "advised": advised,
            "initial_choice": initial_t,
            "initial_confidence": np.repeat(block.initial_confidence, k),
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


def _stage1_line(model: str, row: np.ndarray, condition: str) -> str:
    trial_id, item_id, correct, choice, confidence = row
    p_choice = float(confidence)
    other = "B" if choice == "A" else "A"
    probs = {choice: p_choice, other: 1.0 - p_choice}
    record = {
        "trial_id": trial_id,
        "stage": 1,
        "model": model,
        "spec": "sim:bayes",
        "paradigm": "change-of-mind",
        "item": {"id": item_id, "labels": ["A", "B"], "options": ["x", "y"], "correct": correct},
        "condition": condition,
        "factors": {},
        "repeat": 0,
        "choice": choice,
        "readout": {"mass": probs, "probs": dict(sorted(probs.items())), "censored": False},
        "error": None,
    }
    return json.dumps(record, separators=(",", ":"))


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
    with (run_dir / "calls.jsonl").open("w", encoding="utf-8") as calls:
        for m, model in enumerate(models):
            params = biased if m % 2 == 0 else ideal
            trials, stage1 = _model_trials(model, params, per_model, seed=m)
            frames.append(trials)
            calls.writelines(_stage1_line(model, row, "initial") + "\n" for row in stage1)
            _, calibration = _model_trials(f"{model}-cal", params, CALIBRATION_ITEMS, seed=100 + m)
            calls.writelines(_stage1_line(model, row, "calibration") + "\n" for row in calibration)
            # The stage-2 records, of realistic length, that the analysis has to skip.
            prompt = json.dumps(PROMPT)[1:-1]
            head = '{"trial_id":"'
            for trial_id, item_id, condition, choice, q in zip(
                trials["trial_id"],
                trials["item_id"],
                trials["condition"],
                trials["final_choice"],
                trials["final_prob_initial"],
                strict=True,
            ):
                calls.write(
                    f'{head}{trial_id}","stage":2,"model":"{model}","spec":"sim:bayes",'
                    f'"paradigm":"change-of-mind","item":{{"id":"{item_id}","question":'
                    f'"What is the latitude of {item_id}?","labels":["A","B"],"options":'
                    f'["49.78° N","74.67° N"],"correct":"A"}},"condition":"{condition}",'
                    f'"request":{{"messages":[{{"role":"user","content":"{prompt}"}}],'
                    f'"answer_prefix":"My answer is:","labels":["A","B"],"temperature":1.0,'
                    f'"seed":613664151058703693,"situation":{{"stage":2,"item_id":"{item_id}",'
                    f'"correct":"A","display":"shown","advice":"opposite","accuracy":0.7,'
                    f'"advised":"B","initial_choice":"A","initial_confidence":0.7379826421322149}}}},'
                    f'"response":{{"logodds_initial":0.123456789}},"factors":{{"display":"shown",'
                    f'"advice":"opposite","accuracy":0.7}},"repeat":0,"initial_trial_id":'
                    f'"a8749b6dc5625dc9560d","finished_at":"2026-11-26T21:43:19.617+00:00",'
                    f'"choice":"{choice}","readout":{{"probs":{{"A":{q},"B":{1 - q}}},'
                    f'"outside_mass":0.0,"censored":false}},"usage":{{"input_tokens":0,'
                    f'"output_tokens":0}},"latency_s":0.001,"attempts":1,"error":null}}\n'
                )
    # As the harness writes it: stamped with the fingerprint of the calls.jsonl it was built
    # from, which tells `analyse` the log is unchanged since the harness read it.
    write_trials_table(run_dir, pd.concat(frames, ignore_index=True))
    manifest = {"config": {"experiment": {"name": "bench"}, "models": [{"id": m} for m in models]}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


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
