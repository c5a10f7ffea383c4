"""Run directories that are not what a command expects: someone else's folder, a run that
lost its manifest, a damaged log or manifest, a run left by a kill. Every command (`run`,
`run --dry-run`, `cost`, `analyse`) answers with one line and exit code 2, and a command
that refuses changes no file."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from mindshift.cli import main
from mindshift.harness.run_store import RunStore
from mindshift.harness.testing.fault_server import FaultServer, FaultServerConfig
from mindshift.harness.trials_table import build_trials_table, write_trials_table
from mindshift.paradigms.registry import paradigm_class
from tests.conftest import sim_config_text

GOOD = sim_config_text(items=3)


def fingerprint(root: Path) -> dict[str, str]:
    """Every file and folder under `root` with a digest of its bytes ('dir' for folders)."""
    return {
        str(path.relative_to(root)): (
            "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        )
        for path in sorted(root.rglob("*"))
    }


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mindshift: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished sim run, copied by each test that damages it."""
    root = tmp_path_factory.mktemp("finished")
    config = root / "good.toml"
    config.write_text(GOOD, encoding="utf-8")
    assert main(["run", str(config), "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def commands(config: Path, run_dir: Path) -> dict[str, list[str]]:
    return {
        "run": ["run", str(config), "--out", str(run_dir)],
        "dry-run": ["run", str(config), "--out", str(run_dir), "--dry-run"],
        "cost": ["cost", str(run_dir)],
        "analyse": ["analyse", str(run_dir)],
    }


# --- item 5: --out at a directory that is not a mindshift run ---------------------------


def test_out_at_a_foreign_directory_is_refused_before_anything_is_written(
    tmp_path: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    foreign = tmp_path / "theirs"
    foreign.mkdir()
    # Someone else's files that happen to have our names, the last line unterminated.
    (foreign / "calls.jsonl").write_bytes(b'{"their": "data"}\n{"not": "ours"}')
    (foreign / "trials.parquet").write_bytes(b"their parquet")
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    before = fingerprint(foreign)
    capsys.readouterr()
    assert main(["run", str(write_config(GOOD, "c.toml")), "--out", str(foreign)]) == 2
    line = one_error_line(capsys)
    assert str(foreign) in line and "manifest" in line
    assert fingerprint(foreign) == before


def test_a_folder_of_other_files_is_refused_untouched(
    tmp_path: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "a.jpg").write_bytes(b"\xff\xd8jpeg")
    before = fingerprint(foreign)
    capsys.readouterr()
    assert main(["run", str(write_config(GOOD, "c.toml")), "--out", str(foreign)]) == 2
    assert "not empty" in one_error_line(capsys)
    assert fingerprint(foreign) == before


def test_an_empty_directory_takes_a_run(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", str(write_config(GOOD, "c.toml")), "--out", str(empty)]) == 0
    assert (empty / "manifest.json").is_file()


def test_a_run_whose_manifest_was_deleted_is_not_adopted_by_the_next_config(
    run_copy: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (run_copy / "manifest.json").unlink()
    before = fingerprint(run_copy)
    other = write_config(sim_config_text(items=4, seed=3), "other.toml")
    capsys.readouterr()
    assert main(["run", str(other), "--out", str(run_copy)]) == 2
    assert "no manifest.json" in one_error_line(capsys)
    assert fingerprint(run_copy) == before


# --- item 7: a damaged run directory: one line, exit 2, from every command -------------


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _replace_line(path: Path, index: int, new: bytes) -> None:
    lines = _lines(path)
    lines[index] = new
    path.write_bytes(b"".join(lines))


def _edit_record(path: Path, index: int, edit: Callable[[dict[str, object]], None]) -> None:
    record = json.loads(_lines(path)[index])
    edit(record)
    _replace_line(path, index, json.dumps(record, separators=(",", ":")).encode() + b"\n")


def _first_stage2(run: Path) -> int:
    lines = _lines(run / "calls.jsonl")
    return next(i for i, line in enumerate(lines) if json.loads(line)["stage"] == 2)


def _calls_dir(run: Path) -> None:
    (run / "calls.jsonl").unlink()
    (run / "calls.jsonl").mkdir()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "undecodable line": (
        lambda run: _replace_line(run / "calls.jsonl", 4, b'{"trial_id": "\xff\xfe"}\n'),
        "calls.jsonl: line 5",
    ),
    "garbage line": (
        lambda run: _replace_line(run / "calls.jsonl", 2, b"}}}not json\n"),
        "calls.jsonl: line 3",
    ),
    "JSON that is not a record": (
        lambda run: _replace_line(run / "calls.jsonl", 6, b"[1, 2, 3]\n"),
        "calls.jsonl: line 7",
    ),
    "record without a key": (
        lambda run: _edit_record(run / "calls.jsonl", 9, lambda r: r.pop("item")),
        "calls.jsonl: line 10",
    ),
    "record with a mistyped key": (
        lambda run: _edit_record(run / "calls.jsonl", 0, lambda r: r.update(stage="1")),
        "calls.jsonl: line 1",
    ),
    "stage-2 answer without its request": (
        lambda run: _edit_record(
            run / "calls.jsonl", _first_stage2(run), lambda r: r.update(request=None)
        ),
        "calls.jsonl: line",
    ),
    "directory where calls.jsonl belongs": (_calls_dir, "calls.jsonl"),
    "manifest that is not JSON": (
        lambda run: (run / "manifest.json").write_text("{oops", encoding="utf-8"),
        "manifest.json",
    ),
    "manifest that is a list": (
        lambda run: (run / "manifest.json").write_text("[]", encoding="utf-8"),
        "manifest.json",
    ),
    "manifest without its config": (
        lambda run: (run / "manifest.json").write_text(
            json.dumps({"manifest_version": 1, "started_at": "x"}), encoding="utf-8"
        ),
        "manifest.json",
    ),
    "failures log with a junk line": (
        lambda run: (run / "failures.jsonl").write_bytes(b"junk\n"),
        "failures.jsonl: line 1",
    ),
}


@pytest.mark.parametrize("command", ["run", "dry-run", "cost", "analyse"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_run_directory_is_one_line_and_exit_2_from_every_command(
    damage: str,
    command: str,
    run_copy: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    damage_it, named = DAMAGE[damage]
    config = write_config(GOOD, "good.toml")
    if command == "run":
        # A kill's torn last line too: a refused run must not even cut that.
        with (run_copy / "calls.jsonl").open("ab") as handle:
            handle.write(b'{"trial_id":"torn')
    damage_it(run_copy)
    before = fingerprint(run_copy)
    capsys.readouterr()
    assert main(commands(config, run_copy)[command]) == 2
    line = one_error_line(capsys)
    assert named in line, line
    assert fingerprint(run_copy) == before


# --- issue 9: a refusal after the run directory exists (failed preflight) --------------


@pytest.fixture
def api_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_config: Callable[[str, str], Path]
) -> Iterator[tuple[Path, Path, int]]:
    """A finished run of an OpenAI-compatible model on a local server that is then gone."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-preflight")
    with FaultServer(FaultServerConfig(seed=3)) as server:
        text = (
            '[experiment]\nname = "api"\nparadigm = "change-of-mind"\n\n'
            "[paradigm]\nitems = 2\naccuracies = [0.7]\n\n"
            f'[[models]]\nid = "gpt"\nspec = "openai:gpt-4o"\nbase_url = "{server.base_url}"\n'
        )
        config = write_config(text, "api.toml")
        run_dir = tmp_path / "api-run"
        assert main(["run", str(config), "--out", str(run_dir)]) == 0
        port = server.port
    yield config, run_dir, port


def test_a_failed_preflight_leaves_an_existing_run_byte_identical(
    api_run: tuple[Path, Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    config, run_dir, _ = api_run
    with (run_dir / "calls.jsonl").open("ab") as handle:
        handle.write(b'{"trial_id":"torn-by-a-kill","sta')  # the kill of a previous run
    before = fingerprint(run_dir)
    capsys.readouterr()
    # The server is gone: the preflight cannot reach it.
    assert main(["run", str(config), "--out", str(run_dir)]) == 2
    assert "cannot reach" in one_error_line(capsys)
    assert fingerprint(run_dir) == before


def test_a_missing_api_key_leaves_an_existing_run_byte_identical(
    api_run: tuple[Path, Path, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, run_dir, _ = api_run
    monkeypatch.delenv("OPENAI_API_KEY")
    before = fingerprint(run_dir)
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(run_dir)]) == 2
    assert "OPENAI_API_KEY" in one_error_line(capsys)
    assert fingerprint(run_dir) == before


def test_a_failed_preflight_leaves_no_new_directory_behind(
    api_run: tuple[Path, Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, _ = api_run
    fresh = tmp_path / "fresh"
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(fresh)]) == 2
    one_error_line(capsys)
    assert not fresh.exists()


# --- item 10: dry-run says when the run would be refused; stale trials; Ctrl-C ---------


def test_dry_run_says_when_the_real_run_would_be_refused(
    run_copy: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = write_config(sim_config_text(items=5), "other.toml")
    before = fingerprint(run_copy)
    capsys.readouterr()
    assert main(["run", str(other), "--out", str(run_copy), "--dry-run"]) == 2
    line = one_error_line(capsys)
    assert "would be refused" in line and "different config" in line
    assert fingerprint(run_copy) == before


def test_a_stale_trials_table_is_rebuilt_before_it_is_analysed(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = pd.read_parquet(run_copy / "trials.parquet")
    # As a killed resume leaves it: trials.parquet written at the end of an earlier run,
    # when calls.jsonl held a third of the calls it holds now.
    calls = run_copy / "calls.jsonl"
    everything = calls.read_bytes()
    lines = everything.splitlines(keepends=True)
    calls.write_bytes(b"".join(lines[: len(lines) // 3]))
    with RunStore(run_copy) as store:
        table = build_trials_table(store.load().values(), paradigm_class("change-of-mind"))
        write_trials_table(run_copy, table)
    calls.write_bytes(everything)
    assert len(pd.read_parquet(run_copy / "trials.parquet")) < len(full)
    assert main(["analyse", str(run_copy)]) == 0
    rebuilt = pd.read_parquet(run_copy / "trials.parquet")
    assert len(rebuilt) == len(full)
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text(encoding="utf-8"))
    assert summary["models"]["sim"]["n_trials"] == len(full)


def test_analyse_of_a_current_table_does_not_reparse_its_calls(
    run_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trials.parquet stamped with this very calls.jsonl: the log is what the harness read
    and checked, so `analyse` does not parse a million calls again (issue 10's speed); one
    byte changed in the log makes the table stale and the log is checked in full."""
    import mindshift.harness.run_dir as run_dir_module

    parsed: list[Path] = []
    real = run_dir_module.read_call_records

    def spy(path: Path, **options: object) -> Iterator[dict[str, object]]:
        parsed.append(path)
        return real(path, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(run_dir_module, "read_call_records", spy)
    assert main(["analyse", str(run_copy)]) == 0
    assert run_copy / "calls.jsonl" not in parsed
    calls = run_copy / "calls.jsonl"
    lines = calls.read_bytes().splitlines(keepends=True)
    calls.write_bytes(b"".join(lines[:3]) + b'{"trial_id": 7}\n' + b"".join(lines[3:]))
    capsys.readouterr()
    assert main(["analyse", str(run_copy)]) == 2
    line = one_error_line(capsys)
    assert "calls.jsonl" in line and "4" in line


def test_a_missing_trials_table_is_rebuilt_from_the_calls(run_copy: Path) -> None:
    full = pd.read_parquet(run_copy / "trials.parquet")
    (run_copy / "trials.parquet").unlink()
    assert main(["analyse", str(run_copy)]) == 0
    assert len(pd.read_parquet(run_copy / "trials.parquet")) == len(full)


@pytest.mark.parametrize("command", ["analyse", "power"])
def test_ctrl_c_of_analyse_and_power_says_nothing_about_stored_calls(
    command: str,
    run_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import mindshift.cli

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    if command == "analyse":
        monkeypatch.setattr(mindshift.cli, "_analyse", interrupted)
        argv = ["analyse", str(run_copy)]
    else:
        monkeypatch.setattr("mindshift.power.power_study", interrupted)
        argv = ["power", "--items", "10", "--simulations", "2", "--jobs", "1"]
    capsys.readouterr()
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err
    assert "call" not in err and "resume" not in err


# --- item 9: a question file edited between a run and its resume -----------------------


QUESTIONS = [
    {"id": f"q{n}", "question": f"Question {n}?", "options": ["yes", "no", "maybe"], "answer": "A"}
    for n in range(4)
]


def _write_questions(path: Path, questions: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")


def test_a_question_file_edited_before_the_resume_is_refused(
    tmp_path: Path,
    write_config: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    questions = tmp_path / "questions.jsonl"
    _write_questions(questions, QUESTIONS)
    config = write_config(
        sim_config_text(items=2, extra_paradigm=f'domain = "file:{questions}"'), "q.toml"
    )
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    # A row the run does not use may change: the run's questions are the same.
    _write_questions(questions, [*QUESTIONS[:3], {**QUESTIONS[3], "question": "Changed?"}])
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    # A question the run asked changes: resuming would mix two versions of it.
    edited = {**QUESTIONS[1], "options": ["yes", "no", "perhaps"]}
    _write_questions(questions, [QUESTIONS[0], edited, *QUESTIONS[2:]])
    before = fingerprint(run_dir)
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(run_dir)]) == 2
    assert "other questions" in one_error_line(capsys)
    assert main(["run", str(config), "--out", str(run_dir), "--dry-run"]) == 2
    assert "would be refused" in one_error_line(capsys)
    assert fingerprint(run_dir) == before


def test_a_run_directory_in_use_is_one_line_not_three(
    run_copy: Path, write_config: Callable[[str, str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import fcntl
    import os

    lock = os.open(run_copy / ".lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running mindshift holds it
        before = fingerprint(run_copy)
        capsys.readouterr()
        assert main(["run", str(write_config(GOOD, "good.toml")), "--out", str(run_copy)]) == 2
        assert "in use by another mindshift process" in one_error_line(capsys)
        assert fingerprint(run_copy) == before
    finally:
        os.close(lock)


def test_a_run_killed_before_its_manifest_was_written_can_start_again(
    tmp_path: Path, write_config: Callable[[str, str], Path]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").touch()  # what a kill during the first preflight leaves
    (run_dir / "manifest.json.tmp").write_text("{", encoding="utf-8")  # or during its write
    assert main(["run", str(write_config(GOOD, "good.toml")), "--out", str(run_dir)]) == 0
