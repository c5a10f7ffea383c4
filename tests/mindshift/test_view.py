"""`mindshift view`: the trial browser, checked in a real headless browser (Debian's chromium).

The browser is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`:
JSON messages ended by NUL on file descriptors 3 and 4), so no driver or websocket package is
needed. The page is loaded from the file `mindshift view` wrote, and every check reads the
document the page's own script built: the rows listed page by page through its "next"
button, the trial a click on a row opens, the filters chosen in its select boxes.

Without chromium the browser tests skip, and under CI=true a skip fails (tests/conftest.py):
.ci/run installs it (`apt-get install chromium`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mindshift.analysis.data.examples import choose_examples
from mindshift.cli import main
from mindshift.harness.errors import RunDirError
from mindshift.harness.record import read_call_records
from mindshift.harness.transcripts import (
    VIEWER_FILE,
    Transcript,
    group_transcripts,
    read_transcripts,
    read_transcripts_of,
)
from mindshift.harness.types import Message, Prompt
from mindshift.view import build_page
from tests.conftest import sim_config_text

ITEMS = 3  # 3 turn-1 calls and 108 trials: two pages of the list's 100 rows
XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"></script>'


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (Debian: apt-get install chromium)")


class Browser:
    """One headless chromium page, driven through the DevTools protocol over a pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser_read, self._write = os.pipe()
        self._read, from_browser_write = os.pipe()

        def onto_3_and_4() -> None:  # the pipe's ends where chromium looks for them
            read_end, write_end = os.dup(to_browser_read), os.dup(from_browser_write)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self._process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",  # CI runs as root, where the sandbox refuses to start
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=onto_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]
        self._call("Page.enable", session=True)

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        decoded: dict[str, Any] = json.loads(message)
        return decoded

    def _call(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> dict[str, Any]:
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = self._session
        os.write(self._write, json.dumps(request).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def _wait_event(self, method: str) -> None:
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._message())

    def open(self, url: str) -> None:
        """Loads `url` afresh (by way of about:blank, so that a URL differing only in its
        fragment loads too) and waits until the page's script has built the page."""
        for address in ("about:blank", url):
            self.events.clear()
            self._call("Page.navigate", {"url": address}, session=True)
            self._wait_event("Page.loadEventFired")
        self.wait_for("document.body && document.body.dataset.ready === '1'")

    def wait_for(self, condition: str, tries: int = 200) -> None:
        for _ in range(tries):
            if self.evaluate(f"Boolean({condition})"):
                return
            self.evaluate("new Promise(r => setTimeout(r, 25))")
        raise AssertionError(f"the page never met: {condition}")

    def evaluate(self, expression: str) -> Any:
        result = self._call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"the page's script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # it may be gone already
            self._call("Browser.close")
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._read)
        os.close(self._write)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with tempfile.TemporaryDirectory(prefix="mindshift-chromium-") as profile:
        page = Browser(executable, Path(profile))
        try:
            yield page
        finally:
            page.close()


def _make_run(root: Path, items: int = ITEMS) -> Path:
    config = root / "config.toml"
    config.write_text(sim_config_text(items=items), encoding="utf-8")
    run_dir = root / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def viewed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sim:bayes run with its trial browser written by `mindshift view`."""
    run_dir = _make_run(tmp_path_factory.mktemp("view"))
    assert main(["view", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sim:bayes run of one item (37 calls), left as it is by every test."""
    return _make_run(tmp_path_factory.mktemp("small"), items=1)


def _raw_records(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _listed_ids(browser: Browser) -> list[str]:
    """Every trial the list shows, page after page, by clicking its "next" button."""
    ids: list[str] = []
    while True:
        ids += browser.evaluate(
            "Array.from(document.querySelectorAll('#trial-list tr')).map(r => r.dataset.trial)"
        )
        if browser.evaluate("document.getElementById('page-next').disabled"):
            return ids
        before = browser.evaluate("document.getElementById('page-status').textContent")
        browser.evaluate("document.getElementById('page-next').click()")
        browser.wait_for(
            f"document.getElementById('page-status').textContent !== {json.dumps(before)}"
        )


def _choose(browser: Browser, name: str, value: str) -> None:
    """Picks `value` in a filter's select box as a user would (a change event follows)."""
    browser.evaluate(
        f"(() => {{ const s = document.getElementById('filter-{name}');"
        f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )


def test_every_trial_is_listed_and_a_clicked_one_shows_its_messages(
    browser: Browser, viewed_run: Path
) -> None:
    records = _raw_records(viewed_run)
    later = [r for r in records if r["stage"] == 2]
    assert len(later) == ITEMS * 36 and len(records) == ITEMS * 37
    browser.open((viewed_run / VIEWER_FILE).as_uri())
    assert browser.evaluate("document.getElementById('page-status').textContent").startswith(
        f"{len(later)} of {len(later)} trials · page 1 of 2"
    )
    listed = _listed_ids(browser)
    assert sorted(listed) == sorted(r["trial_id"] for r in later)  # each once, none missing

    # A click on a row (on the list's second page, where the last click left it) opens it.
    record = next(r for r in later if r["trial_id"] == listed[-1])
    first = next(r for r in records if r["trial_id"] == record["initial_trial_id"])
    browser.evaluate(f"document.querySelector('tr[data-trial=\"{listed[-1]}\"]').click()")
    browser.wait_for(f"location.hash.includes('trial={listed[-1]}')")
    opened = browser.evaluate(
        """Array.from(document.querySelectorAll('#trial section.turn')).map(s => ({
            call: s.dataset.call,
            messages: Array.from(s.querySelectorAll('.message')).map(m => ({
                role: m.querySelector('.role').textContent,
                text: m.querySelector('.text').textContent})),
            answer: s.querySelector('.answer').textContent,
            probabilities: Array.from(s.querySelectorAll('table.probs tr')).slice(1)
                .map(r => r.children[2].textContent)}))"""
    )
    assert browser.evaluate("document.querySelector('#trial h2').textContent") == (
        f"Trial {record['trial_id']}"
    )
    assert [turn["call"] for turn in opened] == [first["trial_id"], record["trial_id"]]
    for turn, stored in zip(opened, (first, record), strict=True):
        request = stored["request"]
        sent = [{"role": m["role"], "text": m["content"]} for m in request["messages"]]
        prefix = {"role": "assistant · answer prefix", "text": request["answer_prefix"] + " …"}
        assert turn["messages"] == [*sent, prefix]  # every message, word for word
        assert turn["answer"] == stored["choice"]
        assert turn["probabilities"] == [
            f"{stored['readout']['probs'][label]:.4f}" for label in stored["item"]["labels"]
        ]
    assert browser.evaluate("document.querySelector('tr.open').dataset.trial") == listed[-1]


def test_the_filters_pick_the_trials_the_records_say(browser: Browser, viewed_run: Path) -> None:
    records = _raw_records(viewed_run)
    first = {r["trial_id"]: r["choice"] for r in records if r["stage"] == 1}
    later = [r for r in records if r["stage"] == 2]
    browser.open((viewed_run / VIEWER_FILE).as_uri())

    _choose(browser, "changed", "yes")
    changed = {r["trial_id"] for r in later if r["choice"] != first[r["initial_trial_id"]]}
    assert 0 < len(changed) < len(later)
    assert sorted(_listed_ids(browser)) == sorted(changed)

    _choose(browser, "condition", "hidden/opposite/0.80")
    wanted = {r["trial_id"] for r in later if r["condition"] == "hidden/opposite/0.80"}
    assert sorted(_listed_ids(browser)) == sorted(wanted & changed)
    assert "condition=hidden%2Fopposite%2F0.80" in browser.evaluate("location.hash")

    _choose(browser, "changed", "")
    _choose(browser, "condition", "")
    _choose(browser, "turn", "1")  # every trial has a turn 1 here
    assert len(_listed_ids(browser)) == len(later)
    _choose(browser, "failed", "yes")
    assert _listed_ids(browser) == []
    assert browser.evaluate("document.getElementById('page-status').textContent").startswith(
        "0 of 108 trials"
    )


def test_a_link_names_a_trial_and_a_failed_call_is_shown_with_its_error(
    browser: Browser, tmp_path: Path
) -> None:
    run_dir = _make_run(tmp_path, items=1)
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    failed = json.loads(lines[5])
    failed.update(choice=None, readout=None, error="HTTP 500: the server <b>broke</b>")
    lines[5] = json.dumps(failed, ensure_ascii=False, separators=(",", ":"))
    (run_dir / "calls.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["view", str(run_dir)]) == 0
    url = (run_dir / VIEWER_FILE).as_uri()

    browser.open(f"{url}#failed=yes")
    assert _listed_ids(browser) == [failed["trial_id"]]
    browser.open(f"{url}#trial={failed['trial_id']}")
    assert browser.evaluate("document.querySelector('#trial .error').textContent") == (
        "error: HTTP 500: the server <b>broke</b>"
    )
    assert (
        browser.evaluate(
            "document.querySelector('#trial section.turn:last-child .answer').textContent"
        )
        == "no answer"
    )
    # A turn-1 id opens the first trial that turn starts.
    turn_1 = json.loads(lines[0])["trial_id"]
    browser.open(f"{url}#trial={turn_1}")
    assert browser.evaluate("document.querySelector('#trial section.turn').dataset.call") == turn_1
    browser.open(f"{url}#trial=no-such-trial")
    assert "No trial has the id no-such-trial" in browser.evaluate(
        "document.getElementById('trial').textContent"
    )


def test_a_prompt_holding_markup_is_shown_as_text_and_never_run(
    browser: Browser, tmp_path: Path
) -> None:
    run_dir = _make_run(tmp_path, items=1)
    lines = (run_dir / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    record["request"]["messages"][0]["content"] = f"Question {XSS} <!-- end"
    record["item"]["options"][0] = XSS
    lines[0] = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    (run_dir / "calls.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["view", str(run_dir)]) == 0
    page = (run_dir / VIEWER_FILE).read_text(encoding="utf-8")

    assert "<script>window.__pwned" not in page and "<img" not in page
    assert page.count("</script>") == 2  # the data block's and the script's own
    assert "\\u003cscript\\u003ewindow.__pwned" in page

    browser.open(f"{(run_dir / VIEWER_FILE).as_uri()}#trial={record['trial_id']}")
    assert browser.evaluate("window.__pwned === undefined")
    shown = browser.evaluate("document.querySelector('#trial .message .text').textContent")
    assert shown == f"Question {XSS} <!-- end"
    assert browser.evaluate("document.querySelectorAll('#trial img, #trial script').length") == 0
    assert not [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]


def test_the_page_escapes_every_text_it_writes(small_run: Path) -> None:
    """String level: the data block holds no `<` at all, and titles are escaped."""
    records = list(read_call_records(small_run / "calls.jsonl"))
    first = records[0]
    prompt = Prompt(
        messages=(Message(role="user", content=f"x {XSS} y"),),
        answer_prefix="</script><script>alert(1)</script>",
        labels=first.item.labels,
    )
    assert first.request is not None
    tainted = replace(first, request=replace(first.request, prompt=prompt), error=XSS)
    page = build_page(
        [tainted, *records[1:]], title="run <script>alert(1)</script>", subtitle="<b>&"
    ).html
    assert "<script>alert(1)" not in page and "<script>window" not in page
    assert "run &lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;&amp;" in page
    data = page.split('id="trial-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and ">" not in data
    document = json.loads(data)
    assert f"x {XSS} y" in document["texts"] and XSS in document["texts"]


def test_view_writes_inside_the_run_directory_or_where_out_says(
    small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in small_run.iterdir())
    assert main(["view", str(small_run)]) == 0
    assert sorted(p.name for p in small_run.iterdir()) == sorted({*before, VIEWER_FILE})
    printed = capsys.readouterr().out
    assert printed.startswith(f"trial browser: {small_run / VIEWER_FILE} (36 trials, 37 calls, ")
    elsewhere = tmp_path / "pages" / "one.html"
    elsewhere.parent.mkdir()
    assert main(["view", str(small_run), "--out", str(elsewhere)]) == 0
    assert elsewhere.read_bytes() == (small_run / VIEWER_FILE).read_bytes()
    assert sorted(p.name for p in elsewhere.parent.iterdir()) == ["one.html"]  # no temporary


def test_the_page_costs_a_few_hundred_bytes_per_call(small_run: Path) -> None:
    """What keeps a 100k-call run's page near 25 MB: each text once, items once, compact
    calls (a 100k-call sim:bayes run measured 22.8 MB)."""
    records = list(read_call_records(small_run / "calls.jsonl"))
    empty = len(build_page([], title="t", subtitle="s").html.encode())
    full = len(build_page(records, title="t", subtitle="s").html.encode())
    assert (full - empty) / len(records) < 400


def _one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("mindshift: error: "), error
    return error


def test_bad_input_is_one_line_and_exit_2(
    small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "not found" in _one_line_error(capsys, "view", str(tmp_path / "missing"))
    a_file = tmp_path / "file.txt"
    a_file.write_text("x", encoding="utf-8")
    assert "not a directory" in _one_line_error(capsys, "view", str(a_file))
    assert "no calls.jsonl" in _one_line_error(capsys, "view", str(tmp_path))
    damaged = tmp_path / "damaged"
    shutil.copytree(small_run, damaged)
    (damaged / VIEWER_FILE).unlink(missing_ok=True)
    lines = (damaged / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3][:40]
    (damaged / "calls.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "line 4 is not valid JSON" in _one_line_error(capsys, "view", str(damaged))
    assert not (damaged / VIEWER_FILE).exists()
    assert "--port needs --serve" in _one_line_error(
        capsys, "view", str(small_run), "--port", "8000"
    )
    assert "is a directory" in _one_line_error(
        capsys, "view", str(small_run), "--out", str(tmp_path)
    )


def test_serve_serves_the_page_alone_on_localhost_until_ctrl_c(small_run: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mindshift.cli", "view", str(small_run), "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("trial browser: ")
        announced = process.stdout.readline()
        match = re.fullmatch(
            r"serving on (http://127\.0\.0\.1:(\d+)/) \(Ctrl-C stops\)\n", announced
        )
        assert match, announced
        with urllib.request.urlopen(match.group(1), timeout=10) as response:
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            assert response.read() == (small_run / VIEWER_FILE).read_bytes()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(match.group(1) + "calls.jsonl", timeout=10)
        assert refused.value.code == 404
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert process.stderr is not None and process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_on_a_port_in_use_is_one_line(
    small_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        error = _one_line_error(capsys, "view", str(small_run), "--serve", "--port", port)
    assert f"cannot serve on 127.0.0.1:{port}" in error


def test_transcripts_follow_the_links_of_every_turn(tmp_path: Path) -> None:
    """flip-flop: turn 1, then rounds 2, 3, 4 of each challenge, linked turn to turn."""
    config = tmp_path / "ff.toml"
    config.write_text(
        '[experiment]\nname = "ff"\nparadigm = "flip-flop"\nseed = 3\n\n'
        '[paradigm]\nitems = 2\nchallenges = ["are-you-sure", "think-again"]\nrounds = 3\n\n'
        '[[models]]\nid = "sim"\nspec = "sim:bayes"\nparams = { noise = 1.0 }\n',
        encoding="utf-8",
    )
    run_dir = tmp_path / "run"
    assert main(["run", str(config), "--out", str(run_dir)]) == 0
    records = list(read_call_records(run_dir / "calls.jsonl"))
    transcripts = read_transcripts(run_dir)
    assert len(transcripts) == 2 * 2
    for transcript in transcripts:
        assert [turn.stage for turn in transcript.turns] == [1, 2, 3, 4]
        first, *later = transcript.turns
        assert {turn.condition for turn in later} == {transcript.condition}
        assert all(turn.initial_trial_id == first.trial_id for turn in later)
        assert [turn.previous_trial_id for turn in later[1:]] == [t.trial_id for t in later[:-1]]
        assert transcript.trial_id == later[0].trial_id
        changes = [transcript.changed(turn) for turn in transcript.turns]
        assert changes == [None, *(turn.choice != first.choice for turn in later)]
        assert transcript.changed_mind == any(changes[1:])
    assert sorted(t.key for tr in transcripts for t in tr.turns[1:]) == sorted(
        r.key for r in records if r.stage > 1
    )

    # The grouping reads links, not the order of the log.
    def chains(grouped: list[Transcript]) -> dict[str, list[tuple[str, int]]]:
        return {t.trial_id: [turn.key for turn in t.turns] for t in grouped}

    assert chains(group_transcripts(reversed(records))) == chains(transcripts)


def test_a_turn_1_without_later_turns_is_a_trial_of_its_own(small_run: Path) -> None:
    records = list(read_call_records(small_run / "calls.jsonl"))
    first = next(r for r in records if r.stage == 1)
    failed = replace(first, trial_id="lonely", choice=None, readout=None, error="HTTP 400")
    transcripts = group_transcripts([*records, failed])
    alone = [t for t in transcripts if t.trial_id == "lonely"]
    assert len(alone) == 1 and alone[0].turns == (failed,)
    assert alone[0].failed and not alone[0].changed_mind and alone[0].condition == "initial"
    assert len(transcripts) == 37
    with pytest.raises(ValueError, match="at least one call"):
        Transcript(())


def test_the_report_examples_are_one_answered_trial_per_condition_read_alone(
    small_run: Path, tmp_path: Path
) -> None:
    transcripts = {t.trial_id: t for t in read_transcripts(small_run)}
    trials = pd.read_parquet(small_run / "trials.parquet")
    choice = choose_examples(trials)
    conditions = list(dict.fromkeys(trials["condition"]))
    assert list(choice.conditions) == conditions and len(conditions) == 36
    # The first row of each condition, with its turn-1 call.
    firsts = trials.drop_duplicates("condition")
    assert choice.keys == {(t, 2) for t in firsts["trial_id"]} | {
        (t, 1) for t in firsts["initial_trial_id"]
    }
    read = read_transcripts_of(small_run, choice.keys)
    # One answered trial per condition, each with every text of its records: the same
    # transcript the whole log grouped gives.
    assert sorted(t.condition for t in read) == sorted(conditions)
    assert all(not t.failed and t == transcripts[t.trial_id] for t in read)
    # Only the chosen calls are read, and reading stops once they are found: a line that no
    # reader could parse after them goes unread (the whole-log reader refuses it).
    copy = tmp_path / "run"
    shutil.copytree(small_run, copy)
    with (copy / "calls.jsonl").open("a", encoding="utf-8") as log:
        log.write("not a record\n{}\n")
    assert read_transcripts_of(copy, choice.keys) == read
    with pytest.raises(RunDirError, match="not valid JSON"):
        read_transcripts(copy)
    assert read_transcripts_of(small_run, ()) == []
