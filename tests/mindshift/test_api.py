"""The Python API (`mindshift.run`, `mindshift.load`, `mindshift.analyse`), above all from a
notebook: a Jupyter cell is synchronous code running inside the kernel's event loop, which
`asyncio.run(cell())` reproduces, where `asyncio.run` cannot be called again (issue 13)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import pandas as pd
import pytest

import mindshift
from mindshift.cli import main
from mindshift.harness.errors import ConfigError, RunDirError, UserError
from tests.conftest import sim_config_text, stored_keys

ITEMS = 4
CONDITIONS = 36
PLANNED = ITEMS * (1 + CONDITIONS)
"""Turn 1 per item, then one later turn per condition (change-of-mind's default design)."""
ROOT = Path(__file__).resolve().parents[2]


def in_a_notebook_cell(cell: Callable[[], Any]) -> Any:
    """`cell()` called synchronously inside a running event loop, as Jupyter runs a cell."""

    async def kernel() -> Any:
        asyncio.get_running_loop()  # the loop runs: asyncio.run would refuse here
        return cell()

    return asyncio.run(kernel())


def test_run_analyse_and_load_inside_a_running_event_loop(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    """The notebook test: the run completes inside a running loop, its trials.parquet is the
    command's, and `analyse` and `load` there give the numbers summary.json holds."""
    config = write_config(sim_config_text(items=ITEMS))
    run_dir = tmp_path / "notebook"

    result = in_a_notebook_cell(lambda: mindshift.run(config, out=run_dir))

    assert result.run_dir == run_dir
    assert result.calls_planned == {"sim": PLANNED}
    assert result.calls_made == {"sim": PLANNED}
    assert result.calls_failed == {"sim": 0} and result.failed == 0
    keys = stored_keys(run_dir)
    assert len(keys) == PLANNED, "calls.jsonl lacks planned calls"
    assert set(keys.values()) == {1}, "a call was stored twice"
    assert not [t for t in threading.enumerate() if t.name == "mindshift-run"]
    trials = pd.read_parquet(result.trials_path)
    assert len(trials) == ITEMS * CONDITIONS

    # The same config through the command: the same table.
    by_command = tmp_path / "command"
    assert main(["run", str(config), "--out", str(by_command)]) == 0
    pd.testing.assert_frame_equal(trials, pd.read_parquet(by_command / "trials.parquet"))

    analysis = in_a_notebook_cell(lambda: mindshift.analyse(run_dir, fitted_model="tobit"))
    run = in_a_notebook_cell(lambda: mindshift.load(run_dir))

    written = json.loads((run_dir / "analysis" / "summary.json").read_text(encoding="utf-8"))
    assert analysis.out_dir == run_dir / "analysis"
    assert (analysis.out_dir / "report.html").is_file()
    # Every number, exactly: summary.json is this summary written as JSON.
    assert json.loads(json.dumps(analysis.summary, allow_nan=False)) == written
    assert written["models"]["sim"]["n_trials"] == ITEMS * CONDITIONS
    # The results object is what the summary was rendered from, and `load` gives the
    # prepared table the measures read: a measure of it is the report's number.
    oucs = analysis.results.table("oucs")
    shown_same = oucs[(oucs["display"] == "shown") & (oucs["advice"] == "same")]
    assert math.isclose(
        float(shown_same["mean"].iloc[0]), written["models"]["sim"]["oucs"]["shown"]["same"]
    )
    pd.testing.assert_frame_equal(run.trials, analysis.run.trials)
    from mindshift.analysis import oucs as oucs_of

    recomputed = oucs_of(run.trials)
    again = recomputed[(recomputed["display"] == "shown") & (recomputed["advice"] == "same")]
    assert math.isclose(float(again["mean"].iloc[0]), float(shown_same["mean"].iloc[0]))


def test_run_outside_a_loop_from_a_mapping_resumes_and_reports_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tomllib.loads(sim_config_text(name="plain", items=ITEMS))

    class Counting:
        def __init__(self) -> None:
            self.stored: Counter[str] = Counter()

        def start_model(self, model: str, total: int, done: int) -> None:
            self.stored[model] += done

        def advance(self, model: str, calls: int, failed: int = 0) -> None:
            self.stored[model] += calls

        def retrying(self, model: str, calls: int) -> None:
            return None

        def concurrency(self, model: str, limit: int) -> None:
            return None

    progress = Counting()
    result = mindshift.run(config, progress=progress)
    assert result.run_dir == Path("runs") / "plain"  # the command's default
    assert result.calls_made == {"sim": PLANNED}
    assert progress.stored == {"sim": PLANNED}
    assert len(pd.read_parquet(tmp_path / "runs" / "plain" / "trials.parquet")) == ITEMS * 36

    again = mindshift.run(config, "runs/plain")
    assert again.calls_made == {"sim": 0}
    assert again.calls_already_stored == {"sim": PLANNED}
    assert "0 calls made, 148 already stored" in again.describe()


def _command_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line
    return line.removeprefix("mindshift: error: ")


def test_bad_input_raises_the_commands_one_line_errors(
    tmp_path: Path,
    write_config: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as error:
        mindshift.run(missing)
    assert str(error.value) == _command_error(["run", str(missing)], capsys)

    unknown_key = sim_config_text().replace("seed = 0", "seed = 0\nsede = 1")
    with pytest.raises(ConfigError) as error:
        mindshift.run(write_config(unknown_key))
    assert str(error.value) == _command_error(["run", str(tmp_path / "config.toml")], capsys)
    with pytest.raises(ConfigError, match="sede"):
        mindshift.run(tomllib.loads(unknown_key))

    with pytest.raises(ConfigError, match=r"tomllib\.loads"):
        mindshift.run(sim_config_text())  # TOML text where a path belongs
    with pytest.raises(TypeError, match="not int"):
        mindshift.run(3)  # type: ignore[arg-type]

    # A refused run touches nothing: no directory is created.
    bad_spec = sim_config_text().replace('spec = "sim:bayes"', 'spec = "nosuch:model"')
    with pytest.raises(ConfigError):
        mindshift.run(write_config(bad_spec), out=tmp_path / "never")
    assert not (tmp_path / "never").exists()

    # A directory that is not a run is refused as the command refuses it.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(RunDirError) as refused:
        mindshift.run(write_config(sim_config_text()), out=foreign)
    command = _command_error(["run", str(tmp_path / "config.toml"), "--out", str(foreign)], capsys)
    assert str(refused.value) == command
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]

    nowhere = tmp_path / "nowhere"
    for call in (mindshift.load, mindshift.analyse):
        with pytest.raises(UserError) as not_a_run:
            call(nowhere)
        assert str(not_a_run.value) == _command_error(["analyse", str(nowhere)], capsys)
    with pytest.raises(UserError, match="unknown prior 'calibrate'"):
        mindshift.analyse(nowhere, prior="calibrate")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="unknown fitted_model 'tobbit'"):
        mindshift.analyse(nowhere, fitted_model="tobbit")  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"0 <= x < 0\.5"):
        mindshift.load(nowhere, bayes_clip=0.5)


def test_an_interrupt_in_a_notebook_stops_the_run_cleanly_and_it_resumes(
    tmp_path: Path, write_config: Callable[[str], Path]
) -> None:
    """Ctrl-C while a cell waits for a run: the worker stops, the directory is unlocked, and
    the same call resumes to every planned call, each stored once."""
    slow = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3, latency_s = 0.01 }"
    items = 8
    config = write_config(sim_config_text(items=items, params=slow))
    run_dir = tmp_path / "run"

    def interrupt_once_under_way() -> None:
        calls = run_dir / "calls.jsonl"
        deadline = time.monotonic() + 60
        while not (calls.exists() and calls.stat().st_size > 0):
            if time.monotonic() > deadline:
                return  # the test fails below: the run never started
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)  # Python handles it in the main thread

    def cell() -> None:
        threading.Thread(target=interrupt_once_under_way, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            mindshift.run(config, out=run_dir)

    started = time.monotonic()
    in_a_notebook_cell(cell)
    assert time.monotonic() - started < 30
    assert not [t for t in threading.enumerate() if t.name == "mindshift-run"]
    stored = stored_keys(run_dir)
    assert 0 < len(stored) < items * (1 + CONDITIONS), "the interrupt did not stop the run"
    assert (run_dir / "trials.parquet").is_file()  # what was stored stays analysable

    resumed = in_a_notebook_cell(lambda: mindshift.run(config, out=run_dir))
    assert resumed.calls_already_stored == {"sim": len(stored)}
    keys = stored_keys(run_dir)
    assert len(keys) == items * (1 + CONDITIONS)
    assert set(keys.values()) == {1}, "a call was stored twice"


def test_import_mindshift_imports_none_of_the_heavy_parts(tmp_path: Path) -> None:
    probe = (
        "import sys, mindshift\n"
        "heavy = ('pandas', 'numpy', 'matplotlib', 'pyarrow', 'pydantic', 'rich', "
        "'mindshift.harness', 'mindshift.analysis', 'mindshift.paradigms', 'harness', "
        "'analysis', 'paradigms', 'mindshift.api', 'mindshift.cli')\n"
        "print(','.join(name for name in heavy if name in sys.modules))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == ""
    for name in mindshift.__all__:
        assert getattr(mindshift, name) is not None
    with pytest.raises(AttributeError):
        _ = mindshift.no_such_name


def test_a_folder_of_yours_named_like_a_part_of_mindshift_shadows_nothing(tmp_path: Path) -> None:
    """A researcher's working directory with its own analysis/, harness/ and paradigms/
    packages: mindshift runs, analyses and loads from there without importing any of them
    (each raises unless the script has said it wants its own), and theirs stay importable
    under their own names."""
    for name in ("analysis", "harness", "paradigms"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            "import os\n"
            "if os.environ.get('MINE') != '1':\n"
            f"    raise ImportError('the researcher\\'s own {name}/ was imported')\n"
            f"WHOSE = 'mine: {name}'\n",
            encoding="utf-8",
        )
    (tmp_path / "c.toml").write_text(sim_config_text(items=ITEMS), encoding="utf-8")
    script = (
        "import os, sys, mindshift\n"
        "result = mindshift.run('c.toml', out='run')\n"
        "summary = mindshift.analyse(result.run_dir, fitted_model='tobit').summary\n"
        "trials = mindshift.load(result.run_dir).trials\n"
        "import mindshift.analysis, mindshift.harness, mindshift.paradigms\n"
        "ours = [mindshift.analysis.__file__, mindshift.harness.__file__, "
        "mindshift.paradigms.__file__]\n"
        "os.environ['MINE'] = '1'\n"
        "import analysis, harness, paradigms\n"
        "print(summary['models']['sim']['n_trials'], len(trials), result.failed)\n"
        "print(analysis.WHOSE, harness.WHOSE, paradigms.WHOSE, sep=',')\n"
        "print(*ours, sep=',')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts, theirs, ours = done.stdout.strip().splitlines()[-3:]
    assert counts == f"{ITEMS * CONDITIONS} {ITEMS * CONDITIONS} 0"
    assert theirs == "mine: analysis,mine: harness,mine: paradigms"
    for path in ours.split(","):
        assert not Path(path).resolve().is_relative_to(tmp_path.resolve()), path
    assert (tmp_path / "run" / "analysis" / "report.html").is_file()


def test_the_api_defaults_are_the_analysis_defaults() -> None:
    from mindshift.analysis import BAYES_CLIP, PRIOR_MODES
    from mindshift.api import DEFAULT_BAYES_CLIP, Prior

    assert DEFAULT_BAYES_CLIP == BAYES_CLIP
    assert set(PRIOR_MODES) == set(get_args(Prior))
