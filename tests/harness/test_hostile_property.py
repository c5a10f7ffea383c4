"""Property: whatever a user feeds `run`, `run --dry-run`, `cost` and `analyse` — a malformed
config, a damaged question file, a damaged run directory — the outcome is exit 0, or exit 2
with exactly one line on stderr; never a traceback; and every file of an existing run is
byte-identical after a command that refused it.

The cases come from a seeded generator of mutations (truncations, byte flips, junk lines,
values of the wrong type, deleted keys, directories where files belong, ...) applied to a
real finished run, its config and its question file. They run in-process through
`mindshift.cli.main` (a few through the installed command, for realism).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mindshift.cli import main
from tests.conftest import sim_config_text

SEED = 20261130
RUN_DIR_CASES = 120
CONFIG_CASES = 90
QUESTION_CASES = 60
ANALYSE_CASES = 24
"""`analyse` of a directory that passes every check runs the whole analysis (seconds): a
smaller share of the cases, to keep the test near a minute."""
SUBPROCESS_CASES = 4

QUESTIONS = [
    {
        "id": f"q{n}",
        "question": f"Question {n}?",
        "options": ["red", "green", "blue"],
        "answer": "B",
    }
    for n in range(3)
]
RUN_FILES = ("calls.jsonl", "manifest.json", "trials.parquet", "failures.jsonl")
JUNK_VALUES: tuple[object, ...] = (
    None,
    True,
    -1,
    0,
    10**18,
    1.5,
    1e308,
    "",
    "x" * 50,
    [],
    [1, "a"],
    {},
    {"a": {"b": []}},
)


def snapshot(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): (
            "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        )
        for path in sorted(root.rglob("*"))
    }


# --- mutations ------------------------------------------------------------------------


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def flip(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"\xff"
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        buffer[rng.randrange(len(buffer))] = rng.randrange(256)
    return bytes(buffer)


def junk_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.splitlines(keepends=True)
    junk = rng.choice(
        [
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))).replace(b"\n", b"")
            + b"\n",
            b"[]\n",
            b"null\n",
            b'"a string"\n',
            b"{}\n",
            b'{"trial_id": 5, "stage": "one"}\n',
            b"NaN\n",
            b"\n\n",
        ]
    )
    lines.insert(rng.randrange(len(lines) + 1), junk)
    return b"".join(lines)


def _mutate_json_line(
    data: bytes, rng: random.Random, edit: Callable[[dict[str, object]], None]
) -> bytes:
    lines = data.splitlines(keepends=True)
    if not lines:
        return b"{}\n"
    index = rng.randrange(len(lines))
    try:
        record = json.loads(lines[index])
    except ValueError:
        return data
    if not isinstance(record, dict) or not record:
        return data
    edit(record)
    lines[index] = json.dumps(record).encode() + b"\n"
    return b"".join(lines)


def wrong_type(data: bytes, rng: random.Random) -> bytes:
    def edit(record: dict[str, object]) -> None:
        key = rng.choice(sorted(record))
        if isinstance(record[key], dict) and record[key] and rng.random() < 0.5:
            inner = record[key]
            assert isinstance(inner, dict)
            inner[rng.choice(sorted(inner))] = rng.choice(JUNK_VALUES)
        else:
            record[key] = rng.choice(JUNK_VALUES)

    return _mutate_json_line(data, rng, edit)


def delete_key(data: bytes, rng: random.Random) -> bytes:
    return _mutate_json_line(data, rng, lambda record: record.pop(rng.choice(sorted(record))))


def whole_json(data: bytes, rng: random.Random) -> bytes:
    """A JSON document (the manifest) with one key changed or deleted."""
    try:
        document = json.loads(data)
    except ValueError:
        return data
    if not isinstance(document, dict) or not document:
        return json.dumps(rng.choice(JUNK_VALUES)).encode()
    key = rng.choice(sorted(document))
    if rng.random() < 0.5:
        del document[key]
    else:
        document[key] = rng.choice(JUNK_VALUES)
    return json.dumps(document).encode()


BYTE_MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": truncate,
    "flip": flip,
    "junk line": junk_line,
    "wrong type": wrong_type,
    "delete key": delete_key,
}


def damage_run_dir(run_dir: Path, rng: random.Random) -> str:
    """Apply one or two random damages; returns a description."""
    done = []
    for _ in range(rng.choice([1, 1, 2])):
        name = rng.choice([*RUN_FILES, "calls.jsonl", "calls.jsonl", "batches.jsonl", "analysis"])
        path = run_dir / name
        kind = rng.choice(["bytes", "bytes", "bytes", "directory", "delete"])
        if name == "analysis":
            if path.is_dir():
                shutil.rmtree(path)
            path.write_text("a file where the analysis folder goes", encoding="utf-8")
            done.append("file as analysis/")
            continue
        if kind == "directory":
            if path.is_dir():
                continue
            path.unlink(missing_ok=True)
            path.mkdir()
            (path / "inner").write_text("x", encoding="utf-8")
            done.append(f"directory as {name}")
        elif kind == "delete" and path.is_file():
            path.unlink()
            done.append(f"deleted {name}")
        elif path.is_file() or name in ("failures.jsonl", "batches.jsonl"):
            data = path.read_bytes() if path.is_file() else b""
            if name == "manifest.json" and rng.random() < 0.5:
                how, mutated = "json edit", whole_json(data, rng)
            else:
                how = rng.choice(sorted(BYTE_MUTATIONS))
                mutated = BYTE_MUTATIONS[how](data, rng)
            path.write_bytes(mutated)
            done.append(f"{how} {name}")
    return ", ".join(done) or "nothing"


CONFIG_VALUE_LINES = ("items = ", "seed = ", "spec = ", "name = ", "params = ", "accuracies = ")


def mutate_config(text: str, rng: random.Random) -> str:
    data = text.encode()
    kind = rng.choice(["truncate", "flip", "junk", "value", "value", "value", "drop", "repeat"])
    if kind == "truncate":
        return truncate(data, rng).decode(errors="replace")
    if kind == "flip":
        return flip(data, rng).decode(errors="replace")
    lines = text.splitlines()
    if kind == "junk":
        lines.insert(
            rng.randrange(len(lines) + 1), rng.choice(["[[models]]", "x =", "= 1", "[a.b]"])
        )
    elif kind == "drop":
        del lines[rng.randrange(len(lines))]
    elif kind == "repeat":
        index = rng.randrange(len(lines))
        lines.insert(index, lines[index])
    else:
        candidates = [i for i, line in enumerate(lines) if line.startswith(CONFIG_VALUE_LINES)]
        index = rng.choice(candidates)
        key = lines[index].split("=")[0].strip()
        value = rng.choice(
            [
                "nan",
                "inf",
                "-inf",
                "1e308",
                "-1",
                "0",
                "9223372036854775807",
                '"text"',
                "[]",
                "{}",
                "true",
                '"file:/dev/zero"',
                "{ noise = nan }",
                "{ w_same = 1e300 }",
                "{ beta_kappa = 0.0 }",
            ]
        )
        lines[index] = f"{key} = {value}"
    return "\n".join(lines) + "\n"


def mutate_questions(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["truncate", "flip", "junk line", "wrong type", "delete key", "answer"])
    if kind != "answer":
        return BYTE_MUTATIONS[kind](data, rng)

    def edit(record: dict[str, object]) -> None:
        record["answer"] = rng.choice(["1", "2", "A", "red", "Z", "", 7, None])
        if rng.random() < 0.3:
            record["answer_is"] = rng.choice(["label", "number", "text", "letter", 1])
        if rng.random() < 0.3:
            record["options"] = rng.choice([["1", "2"], ["B", "A", "C"], ["a"], "abc", []])

    return _mutate_json_line(data, rng, edit)


# --- the property -----------------------------------------------------------------------


@dataclass
class Outcome:
    case: str
    code: int
    err: str


def check(outcome: Outcome, before: dict[str, str], after: dict[str, str]) -> None:
    where = f"case {outcome.case}: exit {outcome.code}, stderr {outcome.err!r}"
    assert "Traceback" not in outcome.err, where
    assert outcome.code in (0, 2), where
    if outcome.code == 2:
        lines = outcome.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mindshift: error: "), where
        assert after == before, f"{where}: a refused command changed the run directory"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A finished run of a config whose questions come from a file."""
    root = tmp_path_factory.mktemp("base")
    questions = root / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    text = sim_config_text(
        name="hostile",
        items=2,
        extra_paradigm=f'domain = "file:{questions}"\naccuracies = [0.7, 0.9]\n',
    )
    config = root / "base.toml"
    config.write_text(text, encoding="utf-8")
    assert main(["run", str(config), "--out", str(root / "run")]) == 0
    return root / "run", text, questions


def _run_main(argv: list[str], capsys: pytest.CaptureFixture[str], case: str) -> Outcome:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as leave:  # argparse: usage errors
        code = int(leave.code or 0)
    return Outcome(case, code, capsys.readouterr().err)


def test_damaged_run_directories(
    base: tuple[Path, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, text, _ = base
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    rng = random.Random(SEED)
    refused = 0
    for number in range(RUN_DIR_CASES + ANALYSE_CASES):
        copy = tmp_path / f"case{number}"
        shutil.copytree(run, copy)
        what = damage_run_dir(copy, rng)
        # The analyse cases come last (fewer: see ANALYSE_CASES).
        command = rng.choice(["run", "dry-run", "cost"]) if number < RUN_DIR_CASES else "analyse"
        argv = {
            "run": ["run", str(config), "--out", str(copy)],
            "dry-run": ["run", str(config), "--out", str(copy), "--dry-run"],
            "cost": ["cost", str(copy)],
            "analyse": ["analyse", str(copy)],
        }[command]
        before = snapshot(copy)
        outcome = _run_main(argv, capsys, f"{number} ({command} after {what})")
        check(outcome, before, snapshot(copy))
        refused += outcome.code == 2
        shutil.rmtree(copy)
    # The generator must mostly produce damage that matters, or it tests nothing.
    assert refused > (RUN_DIR_CASES + ANALYSE_CASES) // 3


def test_malformed_configs(
    base: tuple[Path, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, text, _ = base
    rng = random.Random(SEED + 1)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = snapshot(copy)
    refused = 0
    for number in range(CONFIG_CASES):
        mutated = mutate_config(text, rng)
        config = tmp_path / f"c{number}.toml"
        config.write_text(mutated, encoding="utf-8")
        command = rng.choice(["run", "dry-run"])
        argv = ["run", str(config), "--out", str(copy)]
        argv += ["--dry-run"] if command == "dry-run" else []
        outcome = _run_main(argv, capsys, f"config {number} ({command}): {mutated!r}")
        after = snapshot(copy)
        check(outcome, before, after)
        if outcome.code == 0:
            before = after  # the same config, resumed: nothing to add, but a resume entry
        refused += outcome.code == 2
    assert refused > CONFIG_CASES // 2


def test_damaged_question_files(
    base: tuple[Path, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, text, questions = base
    rng = random.Random(SEED + 2)
    original = questions.read_bytes()
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = snapshot(copy)
    # The run's own question file, mutated in place (and restored): a valid edit of a
    # question the run asked must be refused by the resume check, not mixed in.
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    edited_questions_refused = 0
    try:
        for number in range(QUESTION_CASES):
            questions.write_bytes(mutate_questions(original, rng))
            fresh = rng.random() < 0.3
            out = tmp_path / f"fresh{number}" if fresh else copy
            command = rng.choice(["run", "dry-run"])
            argv = ["run", str(config), "--out", str(out)]
            argv += ["--dry-run"] if command == "dry-run" else []
            case = f"questions {number} ({command}): {questions.read_bytes()!r}"
            outcome = _run_main(argv, capsys, case)
            after = snapshot(copy)
            check(outcome, before, after)
            if outcome.code == 2 and fresh:
                assert not out.exists(), f"{case}: a refused run left {out} behind"
            edited_questions_refused += "other questions" in outcome.err
            before = after
    finally:
        questions.write_bytes(original)
    assert edited_questions_refused > 0, "no case edited a question the run asked"


def test_a_few_cases_through_the_installed_command(
    base: tuple[Path, str, Path], tmp_path: Path
) -> None:
    run, text, _ = base
    rng = random.Random(SEED + 3)
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    for number in range(SUBPROCESS_CASES):
        copy = tmp_path / f"case{number}"
        shutil.copytree(run, copy)
        what = damage_run_dir(copy, rng)
        argv = [["run", str(config), "--out", str(copy)], ["cost", str(copy)]][number % 2]
        before = snapshot(copy)
        result = subprocess.run(
            [sys.executable, "-m", "mindshift.cli", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        outcome = Outcome(
            f"subprocess {number} ({argv[0]} after {what})", result.returncode, result.stderr
        )
        check(outcome, before, snapshot(copy))
