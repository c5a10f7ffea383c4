"""Model D of the Bayesian beta regression on the paper's main data size: 72,000 trials.

The trials come from the real simulated agent run through the harness (2,000 latitude items x
36 conditions, `sim:bayes` with choice_support 0.8, w_same 1.0, w_opposite 2.5, noise 0.3),
so the data have the censoring a run really has (about 14 % of final confidences at a clip
bound). The run directory is made once and reused (`--run-dir`).

Reported: wall time of the fit (Laplace start + NUTS, 4 chains x (500 tuning + 1,000) draws
on the machine's cores), CPU seconds (this process and its chain workers: a fairer figure on
a shared machine, where the load average says how busy the machine was), peak resident memory
of this process (the harness run is made in a child process, so it is not counted),
sampler diagnostics and the posterior; with `--loo`, the PSIS-LOO time and memory as well.

    python bench/bench_beta_regression.py                  # fit only
    python bench/bench_beta_regression.py --loo --items 2000

Needs the `bayes` extra (PyMC, ArviZ). Goal (issue 4): under 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mindshift.analysis.beta.regression import SamplerSettings, fit_beta_model, loo
from mindshift.analysis.data.load import load_run

CONFIG = """[experiment]
name = "bench-beta"
paradigm = "change-of-mind"
seed = 0

[paradigm]
items = {items}

[[models]]
id = "sim"
spec = "sim:bayes"
params = {{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }}
"""


def make_run(run_dir: Path, items: int) -> float:
    """Run the simulated agent into `run_dir` (resumes: a finished run costs little).

    In a child process, so that this process's peak memory is that of loading and fitting.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir.parent / f"{run_dir.name}.toml"
    config.write_text(CONFIG.format(items=items), encoding="utf-8")
    started = time.perf_counter()
    command = "import sys; from mindshift.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", command, "run", str(config), "--out", str(run_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"mindshift run failed: {done.stderr.strip()}")
    return time.perf_counter() - started


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000, help="items (x 36 conditions)")
    parser.add_argument("--run-dir", type=Path, default=None, help="reuse or create this run")
    parser.add_argument("--draws", type=int, default=SamplerSettings.draws)
    parser.add_argument("--tune", type=int, default=SamplerSettings.tune)
    parser.add_argument("--chains", type=int, default=SamplerSettings.chains)
    parser.add_argument("--loo", action="store_true", help="also time PSIS-LOO")
    args = parser.parse_args()

    run_dir = args.run_dir or Path(tempfile.gettempdir()) / f"mindshift-bench-beta-{args.items}"
    run_seconds = make_run(run_dir, args.items)
    trials = load_run(run_dir).trials  # prepared as `mindshift analyse` prepares it

    settings = SamplerSettings(draws=args.draws, tune=args.tune, chains=args.chains)
    # Other work on a shared machine slows the wall time; the load average says how much.
    load_before = os.getloadavg()[0]
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    fit = fit_beta_model(trials, "D", settings=settings)
    fit_seconds = time.perf_counter() - started
    fit_cpu = cpu_seconds() - cpu_before

    report: dict[str, object] = {
        "trials": fit.n,
        "censored_low": fit.n_censored_low,
        "censored_high": fit.n_censored_high,
        "cpus": os.cpu_count(),
        "load_average_1min_before": round(load_before, 2),
        "harness_run_s": round(run_seconds, 1),
        "fit_wall_s": round(fit_seconds, 1),
        "fit_cpu_s": round(fit_cpu, 1),
        "chains": settings.chains,
        "tune": settings.tune,
        "draws": settings.draws,
        "mean_leapfrog_steps": round(fit.mean_steps, 2),
        "divergences": fit.divergences,
        "max_r_hat": round(fit.max_r_hat, 4),
        "min_ess_bulk": round(fit.min_ess_bulk),
    }
    # ru_maxrss is in KiB on Linux: the peak of this process (the table, the fit's data and
    # draws). The chain workers are forked from it and share those pages.
    report["peak_rss_after_fit_mib"] = round(_peak_rss_kib() / 1024)
    if args.loo:
        started = time.perf_counter()
        result = loo(fit)
        report["loo_wall_s"] = round(time.perf_counter() - started, 1)
        report["elpd_loo"] = round(result.elpd, 1)
        report["elpd_se"] = round(result.se, 1)
        report["pareto_k_above_threshold"] = result.n_high_k
    if args.loo:
        report["peak_rss_after_loo_mib"] = round(_peak_rss_kib() / 1024)
    report["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))
    print(fit.summary.round(4).to_string())


if __name__ == "__main__":
    main()
