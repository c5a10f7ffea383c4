"""`mindshift analyse` of a run with many models (issue 10): where the per-model time goes.

Builds (once) a run directory of N simulated models (`sim:bayes`, a few items each) with the
real `mindshift run`, then times the analysis stage by stage — load, measures, summary,
figures, report, write — and the whole `mindshift analyse` command, and checks that
summary.json is the same as a reference copy when one is given.

    .venv/bin/python bench/bench_many_models.py                       # 200 models, 3 items
    .venv/bin/python bench/bench_many_models.py --models 40 --profile prof.out
    .venv/bin/python bench/bench_many_models.py --reference old/summary.json

The run directory is kept (default /tmp/mindshift-bench-many/run) so that repeated timings
analyse the same data; `--fresh` makes it again.
"""

from __future__ import annotations

import argparse
import cProfile
import filecmp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def config_text(models: int, items: int) -> str:
    """A change-of-mind config with `models` sim:bayes entries, each with its own choice
    support, so that the models' numbers differ."""
    lines = [
        "[experiment]",
        'name = "many-models"',
        'paradigm = "change-of-mind"',
        "seed = 0",
        "",
        "[paradigm]",
        'domain = "latitude"',
        f"items = {items}",
        "",
    ]
    for i in range(models):
        support = 0.2 + (i % 10) * 0.1
        lines += [
            "[[models]]",
            f'id = "sim{i:03d}"',
            'spec = "sim:bayes"',
            f"params = {{ choice_support = {support:.1f}, w_same = 1.0, w_opposite = 2.0, "
            "noise = 0.3 }",
            "",
        ]
    return "\n".join(lines)


def mindshift(*args: str) -> list[str]:
    return [sys.executable, "-m", "mindshift.cli", *args]


def make_run(root: Path, models: int, items: int, fresh: bool) -> Path:
    run_dir = root / "run"
    if fresh and root.exists():
        shutil.rmtree(root)
    if (run_dir / "trials.parquet").is_file():
        return run_dir
    root.mkdir(parents=True, exist_ok=True)
    config = root / "many.toml"
    config.write_text(config_text(models, items), encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        mindshift("run", str(config), "--out", str(run_dir)),
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    print(f"made {run_dir} ({models} models x {items} items) in {seconds:.1f} s")
    return run_dir


def staged(run_dir: Path) -> dict[str, float]:
    """The analysis in its stages, in this process (seconds per stage)."""
    from mindshift.analysis.analyse import _facts
    from mindshift.analysis.data.load import load_run
    from mindshift.analysis.measures.results import results_for_run
    from mindshift.analysis.render.figures import render_figures
    from mindshift.analysis.render.report import render_report
    from mindshift.analysis.render.summary import summary_document

    times: dict[str, float] = {}
    started = time.perf_counter()
    run = load_run(run_dir)
    times["load_run"] = time.perf_counter() - started
    started = time.perf_counter()
    results = results_for_run(run)
    times["measures (results_for_run)"] = time.perf_counter() - started
    started = time.perf_counter()
    summary_document(results)
    times["summary_document"] = time.perf_counter() - started
    started = time.perf_counter()
    figures = render_figures(results)
    times["render_figures"] = time.perf_counter() - started
    started = time.perf_counter()
    render_report(results, figures, title="bench", facts=_facts(run))
    times["render_report"] = time.perf_counter() - started
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--items", type=int, default=3)
    parser.add_argument("--root", type=Path, default=Path("/tmp/mindshift-bench-many"))
    parser.add_argument("--fresh", action="store_true", help="make the run directory again")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the stages here")
    parser.add_argument("--reference", type=Path, help="a summary.json the new one must equal")
    parser.add_argument("--no-stages", action="store_true", help="time the command only")
    args = parser.parse_args()

    run_dir = make_run(args.root, args.models, args.items, args.fresh)
    if not args.no_stages:
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        times = staged(run_dir)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        for stage, seconds in times.items():
            print(f"  {stage:<28} {seconds:7.2f} s")
        print(f"  {'stages, total':<28} {sum(times.values()):7.2f} s")

    started = time.perf_counter()
    subprocess.run(
        mindshift("analyse", str(run_dir)), check=True, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    wall = time.perf_counter() - started
    print(f"mindshift analyse {run_dir}: {wall:.1f} s wall ({args.models} models)")
    if args.reference is not None:
        same = filecmp.cmp(args.reference, run_dir / "analysis" / "summary.json", shallow=False)
        print(f"summary.json identical to {args.reference}: {same}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
