"""`mindshift import` and `mindshift export` (issue 13, Deliver 6): the tidy trials schema.

Must show: a run's trials exported, imported into a new run directory and analysed give the
summary numbers of the run itself. Bad files: one line naming the row and the column, exit 2,
and the target directory untouched.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mindshift.analysis.data.load import load_run
from mindshift.cli import main
from mindshift.harness.config import load_config
from mindshift.harness.errors import RunDirError
from mindshift.harness.experiment import check_run_dir, prepare
from mindshift.paradigms import PARADIGMS
from mindshift.paradigms.registry import installed_paradigms, paradigm_class
from mindshift.transfer import export_run, import_trials
from mindshift.transfer.schema import known_columns
from mindshift.transfer.turn1 import OPTIONAL as TURN1_OPTIONAL
from mindshift.transfer.turn1 import REQUIRED as TURN1_REQUIRED
from tests.conftest import sim_config_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "trials-schema.md"


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a JSON tree, keyed by its path."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(_leaves(child, f"{path}/{key}"))
        return out
    if isinstance(value, list):
        out = {}
        for index, child in enumerate(value):
            out.update(_leaves(child, f"{path}[{index}]"))
        return out
    return {path: value}


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, int | float):
        if math.isnan(old):
            return math.isnan(new)
        return math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12)
    return bool(old == new)


def _numbers_that_differ(original: Path, imported: Path) -> tuple[int, list[str]]:
    """How many numbers the original summary holds, and the paths of those the imported
    run's summary lacks or states differently."""
    expected = _leaves(json.loads((original / "analysis" / "summary.json").read_text()))
    actual = _leaves(json.loads((imported / "analysis" / "summary.json").read_text()))
    numbers = {path: value for path, value in expected.items() if not isinstance(value, str)}
    differ = [
        path
        for path, value in numbers.items()
        if path not in actual or not _same(value, actual[path])
    ]
    return len(numbers), differ


def _tables(run_dir: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted((run_dir / "analysis" / "tables").glob("*.csv"))
    }


def _fingerprint(run_dir: Path) -> dict[str, str]:
    return {
        str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


def _run(tmp: Path, name: str, config: str, *analyse: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(config, encoding="utf-8")
    run_dir = tmp / name
    assert main(["run", str(path), "--out", str(run_dir)]) == 0
    assert main(["analyse", str(run_dir), "--fitted-model", "tobit", *analyse]) == 0
    return run_dir


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sim:bayes change-of-mind run (two options, no calibration split), analysed."""
    return _run(tmp_path_factory.mktemp("sim"), "run", sim_config_text(items=8))


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four options and held-out calibration items: the analysis reads turn-1 answers that
    the trials do not hold (the calibration split, every option's probability)."""
    extra = 'domain = "arithmetic"\ncalibration_items = 16\ndisplays = ["shown", "hidden"]\n'
    return _run(
        tmp_path_factory.mktemp("cal"), "run", sim_config_text(items=8, extra_paradigm=extra)
    )


# -- the round trip ----------------------------------------------------------------------------


def test_round_trip_export_import_analyse_gives_the_same_summary_numbers(
    sim_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    assert main(["export", str(sim_run), "--out", str(out)]) == 0
    assert (out / "trials.csv").is_file()
    assert sorted(path.name for path in (out / "tables").glob("*.csv")) == sorted(_tables(sim_run))
    imported = tmp_path / "imported"
    assert main(["import", str(out / "trials.csv"), "--out", str(imported)]) == 0
    assert not (imported / "calls.jsonl").exists()  # no call was made here
    capsys.readouterr()
    assert main(["analyse", str(imported), "--fitted-model", "tobit"]) == 0

    count, differ = _numbers_that_differ(sim_run, imported)
    assert count > 500
    assert not differ, f"{len(differ)} of {count} numbers differ, e.g. {differ[:5]}"
    # The tables too, but for the one column that names where the turn-1 answers were read.
    original, again = _tables(sim_run), _tables(imported)
    assert original.keys() == again.keys()
    assert [name for name in original if original[name] != again[name]] == ["accuracy.csv"]
    accuracy = pd.read_csv(imported / "analysis" / "tables" / "accuracy.csv")
    before = pd.read_csv(sim_run / "analysis" / "tables" / "accuracy.csv")
    assert accuracy.drop(columns="source").equals(before.drop(columns="source"))

    manifest = json.loads((imported / "manifest.json").read_text())
    source = out / "trials.csv"
    assert manifest["imported"]["source"] == "trials.csv"
    assert manifest["imported"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert manifest["imported"]["rows"] == len(pd.read_parquet(sim_run / "trials.parquet"))
    assert manifest["imported"]["mindshift_version"]
    assert manifest["config"]["experiment"]["paradigm"] == "change-of-mind"


def test_the_imported_trials_table_is_the_runs_own(sim_run: Path, tmp_path: Path) -> None:
    export_run(sim_run, tmp_path / "export")
    import_trials(tmp_path / "export" / "trials.csv", tmp_path / "imported")
    original = pd.read_parquet(sim_run / "trials.parquet")
    imported = pd.read_parquet(tmp_path / "imported" / "trials.parquet")
    pd.testing.assert_frame_equal(imported, original, check_dtype=False)
    assert (imported.dtypes == original.dtypes).all()


def test_round_trip_with_the_turn1_file_of_a_calibrated_four_option_run(
    calibrated_run: Path, tmp_path: Path
) -> None:
    report = export_run(calibrated_run, tmp_path / "export")
    assert report.turn1 is not None
    answers = pd.read_csv(report.turn1)
    assert set(answers["split"]) == {"main", "calibration"}
    assert {"prob_A", "prob_B", "prob_C", "prob_D"} <= set(answers.columns)
    imported = tmp_path / "imported"
    assert (
        main(["import", str(report.trials), "--turn1", str(report.turn1), "--out", str(imported)])
        == 0
    )
    assert main(["analyse", str(imported), "--fitted-model", "tobit"]) == 0
    count, differ = _numbers_that_differ(calibrated_run, imported)
    assert count > 500
    assert not differ, f"{len(differ)} of {count} numbers differ, e.g. {differ[:5]}"
    assert _tables(imported) == _tables(calibrated_run)  # every table, byte for byte
    manifest = json.loads((imported / "manifest.json").read_text())
    assert manifest["imported"]["turn1"]["rows"] == len(answers)
    # Exported again, the imported run gives back the same two files.
    again = export_run(imported, tmp_path / "again")
    assert report.turn1.read_bytes() == again.turn1.read_bytes()  # type: ignore[union-attr]
    assert report.trials.read_bytes() == again.trials.read_bytes()


def test_without_the_turn1_file_only_the_calibration_section_differs_on_the_raw_scale(
    calibrated_run: Path, tmp_path: Path
) -> None:
    """docs/trials-schema.md's statement of what the trials alone cannot carry: on the raw
    confidence scale, only the calibration section differs (the calibrated `auto` prior needs
    the calibration split, so there every confidence-scale number would)."""
    raw = tmp_path / "raw"
    shutil.copytree(calibrated_run, raw, ignore=shutil.ignore_patterns("analysis", "export"))
    assert main(["analyse", str(raw), "--fitted-model", "tobit", "--prior", "raw"]) == 0
    export_run(raw, tmp_path / "export")
    imported = tmp_path / "imported"
    import_trials(tmp_path / "export" / "trials.csv", imported)
    assert main(["analyse", str(imported), "--fitted-model", "tobit", "--prior", "raw"]) == 0
    count, differ = _numbers_that_differ(raw, imported)
    assert differ, "the calibration split cannot come through the trials alone"
    assert all(re.match(r"/models/[^/]+/calibration/", path) for path in differ), differ
    assert count - len(differ) > 500


# -- a file made by hand --------------------------------------------------------------------


HEADER = "model,item_id,correct,initial_choice,initial_confidence,final_choice,final_prob_initial"
HAND_MADE = (
    HEADER
    + """,display,advice,accuracy
gpt,q1,A,A,0.7,A,0.9,shown,same,0.8
gpt,q1,A,A,0.7,B,0.4,hidden,opposite,0.7
gpt,q1,A,A,0.7,A,0.72,shown,neutral,0.8
gpt,q2,B,A,0.6,B,0.3,shown,opposite,0.9
gpt,q2,B,A,0.6,A,0.65,hidden,same,0.6
"""
)


def test_a_hand_made_file_with_the_required_columns_only(tmp_path: Path) -> None:
    source = tmp_path / "mine.csv"
    source.write_text(HAND_MADE, encoding="utf-8")
    report = import_trials(source, tmp_path / "run")
    assert report.rows == 5 and report.models == ("gpt",) and report.ignored == ()
    table = pd.read_parquet(tmp_path / "run" / "trials.parquet").set_index("condition")
    same = table.loc["shown/same/0.80"]
    assert same["turn"] == 2 and same["repeat"] == 0 and same["n_options"] == 2
    assert same["readout"] == "logprobs"
    assert same["advised"] == "A" and same["initial_prob_advised"] == 0.7
    assert same["displayed_choice"] == "A" and same["final_prob_displayed"] == 0.9
    assert same["final_confidence"] == 0.9 and not same["changed_mind"] and same["final_correct"]
    opposite = table.loc["hidden/opposite/0.70"]
    assert pd.isna(opposite["displayed_choice"])  # a hidden display shows no answer
    assert opposite["advised"] == "B" and opposite["initial_prob_advised"] == pytest.approx(0.3)
    assert opposite["final_confidence"] == pytest.approx(0.6) and opposite["changed_mind"]
    assert pd.isna(table.loc["shown/neutral/0.80", "advised"])
    # Ids follow from each row's identity: a second import gives the same ones.
    import_trials(source, tmp_path / "again")
    again = pd.read_parquet(tmp_path / "again" / "trials.parquet").set_index("condition")
    assert again["trial_id"].equals(table["trial_id"])
    assert table["trial_id"].is_unique
    assert table.groupby("item_id")["initial_trial_id"].nunique().eq(1).all()

    # The analysis reads it, and its Bayes baseline is the textbook one (docs/paradigm.md §4).
    run = load_run(tmp_path / "run", prior="raw", bayes_clip=0.0)
    post = run.trials.set_index("condition")["bayes_post"]
    assert post["shown/same/0.80"] == pytest.approx(0.7 * 0.8 / (0.7 * 0.8 + 0.3 * 0.2))
    assert post["hidden/opposite/0.70"] == pytest.approx(0.7 * 0.3 / (0.7 * 0.3 + 0.3 * 0.7))
    assert post["shown/opposite/0.90"] == pytest.approx(0.6 * 0.1 / (0.6 * 0.1 + 0.4 * 0.9))
    assert post["shown/neutral/0.80"] == pytest.approx(0.7)
    assert main(["analyse", str(tmp_path / "run"), "--fitted-model", "tobit"]) == 0


def test_final_confidence_alone_gives_the_final_probability_of_the_initial_answer(
    tmp_path: Path,
) -> None:
    text = HAND_MADE.replace("final_prob_initial", "final_confidence")
    source = tmp_path / "mine.csv"
    source.write_text(text, encoding="utf-8")
    import_trials(source, tmp_path / "run")
    table = pd.read_parquet(tmp_path / "run" / "trials.parquet").set_index("condition")
    assert table.loc["shown/same/0.80", "final_prob_initial"] == 0.9  # kept its answer
    assert table.loc["hidden/opposite/0.70", "final_prob_initial"] == pytest.approx(0.6)


def test_a_choice_only_row_and_columns_outside_the_schema(tmp_path: Path) -> None:
    text = HEADER + ",condition,notes\nm,q1,A,A,,B,,pushback,first try\n"
    source = tmp_path / "mine.csv"
    source.write_text(text, encoding="utf-8")
    report = import_trials(source, tmp_path / "run", paradigm="are-you-sure")
    assert report.ignored == ("notes",)
    row = pd.read_parquet(tmp_path / "run" / "trials.parquet").iloc[0]
    assert row["readout"] == "choice-only" and math.isnan(row["initial_confidence"])
    assert pd.isna(row["display"]) and pd.isna(row["advice"])


# -- bad files ------------------------------------------------------------------------------


def _hand_made() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(HAND_MADE), dtype=str, keep_default_na=False)


def _cell(position: int, column: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """An edit of the hand-made file: one cell (position 0 is the file's row 2)."""

    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[position, column] = value
        return frame

    return edit


def _column(column: str, values: list[str]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{column: values})

    return edit


def _then(*edits: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        for one in edits:
            frame = one(frame)
        return frame

    return edit


CONDITIONS = ["c1", "c2", "c3", "c4", "c5"]
BAD_FILES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame] | bytes, str]] = {
    "missing column": (
        lambda frame: frame.drop(columns="initial_confidence"),
        "mine.csv lacks column(s): initial_confidence",
    ),
    "no final probability at all": (
        lambda frame: frame.drop(columns="final_prob_initial"),
        "lacks column(s): final_prob_initial or final_confidence",
    ),
    "not a number": (
        _cell(3, "initial_confidence", "high"),
        "mine.csv row 5, column 'initial_confidence': 'high' is not a number",
    ),
    "probability above 1": (
        _cell(0, "final_prob_initial", "1.3"),
        "mine.csv row 2, column 'final_prob_initial': 1.3 is not a probability",
    ),
    "NaN where a confidence was read": (
        _cell(2, "final_prob_initial", "NaN"),
        "mine.csv row 4, column 'final_prob_initial': is empty, but the row's readout read",
    ),
    "choice not among the options": (
        _cell(1, "final_choice", "C"),
        "mine.csv row 3, column 'final_choice': 'C' is not one of the options (A, B)",
    ),
    "unknown display": (
        _cell(4, "display", "hiden"),
        "mine.csv row 6, column 'display': unknown display 'hiden' (one of shown, hidden",
    ),
    "unknown advice": (
        _cell(2, "advice", "neutrall"),
        "mine.csv row 4, column 'advice': unknown advice 'neutrall'",
    ),
    "unknown readout": (
        _column("readout", ["logprobs", "logprob", "", "", ""]),
        "mine.csv row 3, column 'readout': unknown readout 'logprob'",
    ),
    "fractional repeat": (
        _column("repeat", ["0", "0", "0.5", "0", "0"]),
        "mine.csv row 4, column 'repeat': 0.5 is not a whole number",
    ),
    "accuracy missing for same advice": (
        _then(_column("condition", CONDITIONS), _cell(4, "accuracy", "")),
        "mine.csv row 6, column 'accuracy': is empty, but same advice needs its stated accuracy",
    ),
    "two turn-1 answers of one item": (
        _cell(2, "initial_confidence", "0.75"),
        "mine.csv row 4, column 'initial_confidence': 0.75 differs from 0.7 in row 2",
    ),
    "two correct answers of one item": (
        _then(_column("condition", CONDITIONS), _cell(1, "correct", "B")),
        "mine.csv row 3, column 'correct': 'B' differs from 'A' in row 2",
    ),
    "a row twice": (
        lambda frame: pd.concat([frame, frame.iloc[[4]]], ignore_index=True),
        "mine.csv row 7 repeats row 6: the same model, item_id, repeat, condition and turn",
    ),
    "changed_mind against the choices": (
        _column("changed_mind", ["false", "false", "false", "true", "false"]),
        "mine.csv row 3, column 'changed_mind': says False, but the choices say True",
    ),
    "four options, a changed answer and its final confidence only": (
        _then(
            lambda frame: frame.rename(columns={"final_prob_initial": "final_confidence"}),
            _column("n_options", ["4"] * 5),
        ),
        "mine.csv row 3, column 'final_prob_initial': is needed: with more than two options",
    ),
    "a misspelt column": (
        _column("n_option", ["2"] * 5),
        "mine.csv: unknown column 'n_option' (did you mean 'n_options'?)",
    ),
    "labels and n_options disagree": (
        _then(_column("labels", ["A|B"] * 5), _column("n_options", ["2", "2", "3", "2", "2"])),
        "mine.csv row 4, column 'n_options': 3 options, but labels names 2",
    ),
    "a hidden display that shows an answer": (
        _column("displayed_choice", ["A", "A", "A", "A", ""]),
        "mine.csv row 3, column 'displayed_choice': is 'A', but a hidden display shows no answer",
    ),
    "same advice for another answer": (
        _column("advised", ["B", "", "", "", ""]),
        "mine.csv row 2, column 'advised': is 'B', but same advice recommends the answer",
    ),
    "not text": (b"\xff\xfe\x00\x81 not a table", "mine.csv is neither parquet nor UTF-8 text"),
    "header only": (HAND_MADE.splitlines()[0].encode() + b"\n", "mine.csv holds no rows"),
    "ragged rows": (
        HAND_MADE.encode() + b"gpt,q3,A,A,0.5,A,0.5,shown,same,0.8,extra,cells\n",
        "mine.csv is not a CSV table",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_file_is_one_line_exit_2_and_writes_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, expected = BAD_FILES[case]
    source = tmp_path / "mine.csv"
    if isinstance(bad, bytes):
        source.write_bytes(bad)
    else:
        bad(_hand_made()).to_csv(source, index=False)
    target = tmp_path / "run"
    assert main(["import", str(source), "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert expected in err[0], err[0]
    assert not target.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine.csv"]  # no staging left


def test_the_hand_made_file_itself_imports(tmp_path: Path) -> None:
    """The bad files above are each one edit away from a good one."""
    source = tmp_path / "mine.csv"
    _hand_made().to_csv(source, index=False)
    assert import_trials(source, tmp_path / "run").rows == 5


def test_a_bad_file_leaves_an_imported_run_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text(HAND_MADE, encoding="utf-8")
    bad.write_text(HAND_MADE.replace("0.9,shown", "-0.1,shown"), encoding="utf-8")
    target = tmp_path / "run"
    assert main(["import", str(good), "--out", str(target)]) == 0
    before = _fingerprint(target)
    assert main(["import", str(bad), "--out", str(target)]) == 2
    assert "bad.csv row 2, column 'final_prob_initial'" in capsys.readouterr().err
    assert _fingerprint(target) == before


def test_an_import_replaces_an_imported_run_and_nothing_else(
    sim_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "mine.csv"
    source.write_text(HAND_MADE, encoding="utf-8")
    target = tmp_path / "run"
    assert main(["import", str(source), "--out", str(target)]) == 0
    assert main(["analyse", str(target), "--fitted-model", "tobit"]) == 0
    source.write_text(HAND_MADE.replace("0.72", "0.74"), encoding="utf-8")
    assert main(["import", str(source), "--out", str(target)]) == 0
    assert not (target / "analysis").exists()  # the old analysis went with the old trials
    table = pd.read_parquet(target / "trials.parquet")
    assert 0.74 in set(table["final_prob_initial"])
    # A run mindshift made, or any other non-empty directory, is never overwritten.
    before = _fingerprint(sim_run)
    capsys.readouterr()
    assert main(["import", str(source), "--out", str(sim_run)]) == 2
    assert "is not empty and is not an imported run" in capsys.readouterr().err
    assert _fingerprint(sim_run) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["import", str(source), "--out", str(other)]) == 2
    assert [path.name for path in other.iterdir()] == ["notes.txt"]
    assert main(["import", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "absent.csv: no such file" in capsys.readouterr().err
    assert main(["import", str(source), "--out", str(tmp_path / "y"), "--paradigm", "nope"]) == 2
    assert "unknown paradigm 'nope'" in capsys.readouterr().err


def test_no_config_resumes_into_an_imported_run(tmp_path: Path) -> None:
    source = tmp_path / "mine.csv"
    source.write_text(HAND_MADE, encoding="utf-8")
    import_trials(source, tmp_path / "run")
    config = tmp_path / "config.toml"
    config.write_text(sim_config_text(items=2), encoding="utf-8")
    prepared = prepare(load_config(config), installed_paradigms())
    with pytest.raises(RunDirError, match="holds a run of a different config"):
        check_run_dir(prepared, tmp_path / "run")


def test_parquet_in_gives_the_table_csv_gives_and_numbers_its_rows_from_1(
    sim_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export_run(sim_run, tmp_path / "export")
    import_trials(sim_run / "trials.parquet", tmp_path / "from_parquet")
    import_trials(tmp_path / "export" / "trials.csv", tmp_path / "from_csv")
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "from_parquet" / "trials.parquet"),
        pd.read_parquet(tmp_path / "from_csv" / "trials.parquet"),
    )
    table = pd.read_parquet(sim_run / "trials.parquet")
    table.loc[3, "final_choice"] = "Z"
    table.to_parquet(tmp_path / "bad.parquet")
    assert main(["import", str(tmp_path / "bad.parquet"), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "bad.parquet row 4, column 'final_choice': 'Z' is not one of the options" in err


# -- the turn-1 file ---------------------------------------------------------------------------


@pytest.fixture
def calibrated_export(calibrated_run: Path, tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    report = export_run(calibrated_run, tmp_path / "export")
    assert report.turn1 is not None
    return report.trials, pd.read_csv(report.turn1, dtype={"item_id": str})


def _bad_turn1(
    trials: Path, answers: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    path = tmp_path / "turn1.csv"
    answers.to_csv(path, index=False)
    target = tmp_path / "run"
    assert main(["import", str(trials), "--turn1", str(path), "--out", str(target)]) == 2
    assert not target.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_bad_turn1_file_names_its_row_and_column(
    calibrated_export: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trials, answers = calibrated_export
    partial = answers.copy()
    partial.loc[2, "prob_C"] = np.nan
    assert "turn1.csv row 4, column 'prob_C': is empty, but other options'" in _bad_turn1(
        trials, partial, tmp_path, capsys
    )
    moved = answers.copy()
    main_row = int(np.flatnonzero(moved["split"] == "main")[0])
    moved.loc[main_row, "split"] = "calibration"
    assert "but this item has trials" in _bad_turn1(trials, moved, tmp_path, capsys)
    fewer = answers.loc[answers.index != main_row]
    assert "lacks the turn-1 answer of model 'sim'" in _bad_turn1(trials, fewer, tmp_path, capsys)
    other = answers.copy()
    labels = ["A", "B", "C", "D"]
    chosen = str(other.loc[main_row, "choice"])
    other.loc[main_row, "choice"] = next(label for label in labels if label != chosen)
    assert f"row {main_row + 2}, column 'choice'" in _bad_turn1(trials, other, tmp_path, capsys)
    outside = answers.copy()
    outside.loc[0, "prob_A"] = 1.5
    assert "row 2, column 'prob_A': 1.5 is not a probability" in _bad_turn1(
        trials, outside, tmp_path, capsys
    )


# -- export -----------------------------------------------------------------------------------


def test_export_of_a_run_not_analysed_writes_the_trials_and_says_so(
    sim_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(sim_run, run_dir, ignore=shutil.ignore_patterns("analysis", "export"))
    capsys.readouterr()
    assert main(["export", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "the run is not analysed: exported the trials only" in out
    assert (run_dir / "export" / "trials.csv").is_file()
    assert (run_dir / "export" / "turn1.csv").is_file()
    assert not (run_dir / "export" / "tables").exists()


def test_export_refuses_a_trials_table_older_than_its_calls(
    sim_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(sim_run, run_dir)
    calls = (run_dir / "calls.jsonl").read_bytes().splitlines(keepends=True)
    (run_dir / "calls.jsonl").write_bytes(b"".join(calls[:-1]))  # as if killed before the end
    capsys.readouterr()
    assert main(["export", str(run_dir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is older than calls.jsonl" in err[0]
    assert not (tmp_path / "out").exists()
    assert main(["export", str(tmp_path / "absent")]) == 2
    assert "run directory not found" in capsys.readouterr().err


# -- the documented schema ----------------------------------------------------------------------


def test_the_documented_schema_names_every_column_the_importer_reads() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_0-9<>]+)`", text, flags=re.MULTILINE))
    wanted = set(known_columns(paradigm_class("change-of-mind")))
    wanted |= set(TURN1_REQUIRED) | set(TURN1_OPTIONAL) | {"prob_<label>"}
    assert wanted <= documented, sorted(wanted - documented)
    for name in PARADIGMS:  # the built-in paradigms whose columns the page describes
        assert f"`{name}`" in text, name
