"""Time the phases of `mindshift demo` in this checkout against another checkout of the
project (an older commit), as ratios, in one run.

    .venv/bin/python bench/bench_demo_phases.py --old /tmp/old --pairs 3
    .venv/bin/python bench/bench_demo_phases.py --old /tmp/old --sim-only --items 48

Each run is a fresh subprocess with PYTHONPATH set to its own checkout (it prints which
command-line module it imported, and stops if that is not the checkout's), so the two trees never
share a module. Runs are interleaved (old, new, old, new, ...) because the machine may be
shared: only a pair run back to back sees the same load. Per phase it reports wall seconds
and process CPU seconds (every thread of the process: the local model's forward passes run
outside the main thread); CPU time moves less than wall time when other work competes.

Phases: `import` (the command's module and what it imports at start), `run` (the calls,
stored in calls.jsonl, and the trials table), `analyse` (tables, figures, report). `--sim-only`
drops the local model, so `run` measures the harness's own work per call; `--items` scales the
item count (the demo has 12) to make that work large enough to time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PHASES = ("import", "run", "analyse")

# Run inside the subprocess: works with the old layout (harness.cli, demo.toml in harness/)
# and the new one (mindshift.cli, demo.toml in mindshift/). Prints one JSON line.
_DRIVER = r"""
import json, os, sys, time, tomllib, contextlib, io
from pathlib import Path

def clock():
    return time.perf_counter(), time.process_time()

timings = {}
start = clock()
# Decided by the checkout's files, not by trying an import: an installed mindshift (this
# venv's editable install of another checkout) would answer `import mindshift.cli` for an
# old tree that has none, and time the wrong code.
checkout = Path(os.environ["BENCH_CHECKOUT"])
if (checkout / "mindshift" / "cli.py").is_file():
    import mindshift.cli as cli
else:
    import harness.cli as cli
if not Path(cli.__file__).resolve().is_relative_to(checkout.resolve()):
    raise SystemExit(f"imported {cli.__file__}, not the checkout's {checkout}")
timings["import"] = start
config_text = cli.demo_config_text()
data = tomllib.loads(config_text)
data["paradigm"]["items"] = int(os.environ["BENCH_ITEMS"])
if os.environ["BENCH_SIM_ONLY"] == "1":
    data["models"] = [model for model in data["models"] if model["spec"].startswith("sim")]
config = cli.parse_config(data, "bench config")
run_dir = Path(os.environ["BENCH_RUN_DIR"])
after_import = clock()
with contextlib.redirect_stderr(io.StringIO()):
    cli._run(config, run_dir)
after_run = clock()
with contextlib.redirect_stderr(io.StringIO()):
    cli._analyse(run_dir)
after_analyse = clock()

def spent(a, b):
    return {"wall": b[0] - a[0], "cpu": b[1] - a[1]}

print(json.dumps({
    "cli": cli.__file__,
    "import": spent(start, after_import),
    "run": spent(after_import, after_run),
    "analyse": spent(after_run, after_analyse),
    "summary": json.loads((run_dir / "analysis" / "summary.json").read_text()),
}))
"""


@dataclass(frozen=True)
class PhaseTime:
    wall: float
    cpu: float


@dataclass(frozen=True)
class DemoTiming:
    tree: Path
    cli_file: str
    phases: dict[str, PhaseTime]
    summary: object


def time_demo(tree: Path, items: int, sim_only: bool) -> DemoTiming:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "BENCH_CHECKOUT": str(tree),
            "BENCH_ITEMS": str(items),
            "BENCH_SIM_ONLY": "1" if sim_only else "0",
            "BENCH_RUN_DIR": str(Path(scratch) / "demo"),
        }
        done = subprocess.run(
            [sys.executable, "-c", _DRIVER],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"demo in {tree} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return DemoTiming(
        tree=tree,
        cli_file=result["cli"],
        phases={phase: PhaseTime(**result[phase]) for phase in PHASES},
        summary=result["summary"],
    )


def _without_paths(document: object) -> object:
    """The summary without what names the run directory (a temporary path each run)."""
    if isinstance(document, dict):
        return {
            key: _without_paths(value)
            for key, value in document.items()
            if key not in {"run_dir", "generated_at", "analysed_at"}
        }
    if isinstance(document, list):
        return [_without_paths(value) for value in document]
    return document


@dataclass
class SummaryComparison:
    """Value by value: the entries both summaries hold, equal or not (numbers to 1e-9), and
    those only one holds (a newer analysis adds entries; it should change none)."""

    equal: int = 0
    differing: list[str] = field(default_factory=list)
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)

    def walk(self, old: object, new: object, path: str = "") -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for key in old:
                if key in new:
                    self.walk(old[key], new[key], f"{path}.{key}")
                else:
                    self.only_old.append(f"{path}.{key}")
            self.only_new += [f"{path}.{key}" for key in new if key not in old]
        elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            for index, (one, other) in enumerate(zip(old, new, strict=True)):
                self.walk(one, other, f"{path}[{index}]")
        elif _number(old) and _number(new):
            assert isinstance(old, int | float) and isinstance(new, int | float)
            self._count(math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12), path)
        else:
            self._count(old == new, path)

    def _count(self, same: bool, path: str) -> None:
        if same:
            self.equal += 1
        else:
            self.differing.append(path)

    def __str__(self) -> str:
        return (
            f"{self.equal} shared values equal, {len(self.differing)} differ"
            + (f" ({', '.join(self.differing[:5])}, ...)" if self.differing else "")
            + f"; {len(self.only_new)} entries only in new, {len(self.only_old)} only in old"
        )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _median(runs: list[DemoTiming], phases: tuple[str, ...], kind: str) -> float:
    """The median over runs of the seconds (`kind`: wall or cpu) spent in `phases`."""
    return float(
        statistics.median(sum(getattr(run.phases[p], kind) for p in phases) for run in runs)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout to compare against")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--items", type=int, default=12, help="demo items (the demo has 12)")
    parser.add_argument("--sim-only", action="store_true", help="leave out the local model")
    args = parser.parse_args()
    if args.pairs < 1 or args.items < 1:
        print("--pairs and --items must be at least 1", file=sys.stderr)
        return 2

    old_runs: list[DemoTiming] = []
    new_runs: list[DemoTiming] = []
    for pair in range(args.pairs):
        for tree, runs in ((args.old, old_runs), (args.new, new_runs)):
            timing = time_demo(tree.resolve(), args.items, args.sim_only)
            runs.append(timing)
            line = "  ".join(
                f"{phase} {t.wall:6.2f}s wall {t.cpu:6.2f}s cpu"
                for phase, t in timing.phases.items()
            )
            print(f"pair {pair + 1} {'old' if runs is old_runs else 'new'}: {line}", flush=True)
            print(f"    cli from {timing.cli_file}", flush=True)
    print()
    print(
        f"{'phase':8} {'old wall':>9} {'new wall':>9} {'ratio':>6}  "
        f"{'old cpu':>8} {'new cpu':>8} {'ratio':>6}  (medians of {args.pairs})"
    )
    for phase in (*PHASES, "total"):
        chosen = PHASES if phase == "total" else (phase,)
        ow, nw = _median(old_runs, chosen, "wall"), _median(new_runs, chosen, "wall")
        oc, nc = _median(old_runs, chosen, "cpu"), _median(new_runs, chosen, "cpu")
        print(f"{phase:8} {ow:9.2f} {nw:9.2f} {nw / ow:6.3f}  {oc:8.2f} {nc:8.2f} {nc / oc:6.3f}")
    comparison = SummaryComparison()
    comparison.walk(_without_paths(old_runs[0].summary), _without_paths(new_runs[0].summary))
    print(f"\nsummary.json, old against new (paths aside): {comparison}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
