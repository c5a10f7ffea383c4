"""`mindshift view RUN_DIR`: every trial of a run as one self-contained HTML trial browser.

The page (`mindshift.viewer`) lists the run's trials (`harness.transcripts`: an item's turn-1
call and the later turns of one condition and repeat), filters them by model, condition,
turn, changed mind and failure, and opens one to show every turn: the messages sent and the
answer prefix, the answer, the option probabilities, the top-k log-probabilities, the readout
and what it saw (samples, stated confidence, replies), usage and errors. It needs no network:
its stylesheet, script and data are inlined. By default it is written to
`RUN_DIR/trials.html` (`harness.transcripts.VIEWER_FILE`), never outside the run directory
unless `--out` says so; `--serve` also serves it on 127.0.0.1 until Ctrl-C.

The run's data travels as one JSON document in `<script type="application/json"
id="trial-data">`, laid out to stay small (about 250 bytes per call of a two-option run; a
run of 100k calls is a page of about 25 MB):

- `texts`: every distinct text once (message lines, names, option texts, tokens, replies,
  errors); elsewhere a text is its index in this list.
- `items`: every item once, as [item id, question, correct label, [labels], [option texts]]
  (texts by index, labels as they are).
- `calls`: one object per call (the turn 1 its item's trials share, once): `id` (trial_id),
  `t` turn, `m` model, `c` condition, `r` repeat, `i` item (index into `items`), `msg` the
  messages as [role, [line, ...]], `pre` answer prefix, `T` temperature, `ch` answer, `p`
  probabilities in label order, `mass` raw masses (only where they differ from `p`), `cen`
  censored, `out` mass outside the options, `ub` upper bounds of censored labels, `top`
  [[token, log-probability], ...], `rm` readout method, `rd` readout detail (`s` samples,
  `st` stated confidence, `iv` interval, `rp` replies, `rule`), `u` usage (input, output,
  reasoning, cached; left out when all 0), `lat` latency (s), `att` attempts, `ae` earlier
  attempts' errors, `err` error, `b` batch id. A key without a value is left out.
- `trials`: one array per trial (`harness.transcripts.Transcript`), [flags, call, call, ...]
  with its calls (indexes into `calls`) in turn order; flags: 1 changed mind, 2 failed.
  Its name is the id of its first later turn, or of its turn-1 call when it has no other.

Probabilities are rounded to 6 significant digits and latencies to milliseconds (calls.jsonl
holds them exactly). The raw provider response is left out (calls.jsonl has it).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socketserver
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindshift.harness.errors import UserError
from mindshift.harness.record import CallRecord, read_call_records
from mindshift.harness.run_dir import inspect_run_dir
from mindshift.harness.run_format import CALLS_FILE, CallKey
from mindshift.harness.transcripts import VIEWER_FILE, Transcript, group_transcripts, outline
from mindshift.harness.types import Item
from mindshift.viewer.page import render_page

PAYLOAD_FORMAT = 1
"""The layout of the page's JSON data (this module's docstring); raised when it changes."""

LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class ViewPage:
    """A rendered trial browser and what it holds."""

    html: str
    calls: int
    trials: int


@dataclass(frozen=True)
class WrittenView:
    """Where `write_view` put the page, and its size."""

    path: Path
    calls: int
    trials: int
    size_bytes: int


def _number(value: float) -> float:
    """Six significant digits: enough to read, a third of the bytes of a full float."""
    return float(f"{value:.6g}")


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


class _PayloadBuilder:
    """Builds the page's JSON document one call at a time (the layout in the docstring).

    Each call's entry is encoded to its JSON text as soon as it is read: 100k calls held as
    text take a tenth of the memory they take as Python objects."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._text_index: dict[str, int] = {}
        self.items: list[str] = []
        self._item_index: dict[tuple[object, ...], int] = {}
        self.calls: list[str] = []

    def text(self, value: str) -> int:
        index = self._text_index.get(value)
        if index is None:
            index = self._text_index[value] = len(self.texts)
            self.texts.append(value)
        return index

    def item(self, item: Item) -> int:
        key = (item.item_id, item.question, item.correct, item.labels, item.options)
        index = self._item_index.get(key)
        if index is None:
            index = self._item_index[key] = len(self.items)
            self.items.append(
                _encode(
                    [
                        self.text(item.item_id),
                        self.text(item.question),
                        item.correct,
                        list(item.labels),
                        [self.text(option) for option in item.options],
                    ]
                )
            )
        return index

    def add_call(self, record: CallRecord) -> int:
        """Appends the call's entry; returns its index."""
        entry: dict[str, Any] = {
            "id": record.trial_id,
            "t": record.stage,
            "m": self.text(record.model),
            "c": self.text(record.condition),
            "r": record.repeat,
            "i": self.item(record.item),
        }
        labels = list(record.item.labels)
        request = record.request
        if request is not None:
            prompt = request.prompt
            entry["msg"] = [
                [self.text(message.role), [self.text(line) for line in message.content.split("\n")]]
                for message in prompt.messages
            ]
            if prompt.answer_prefix:
                entry["pre"] = self.text(prompt.answer_prefix)
            if prompt.labels and list(prompt.labels) != labels:
                labels = entry["lab"] = list(prompt.labels)
            entry["T"] = request.temperature
        if record.choice is not None:
            entry["ch"] = record.choice
        self._add_readout(entry, record, labels)
        usage = record.usage
        counts = [usage.input_tokens, usage.output_tokens, usage.reasoning_tokens]
        counts.append(usage.cached_tokens)
        if any(counts):
            entry["u"] = counts
        entry["lat"] = round(record.latency_s, 3)
        entry["att"] = record.attempts
        if record.attempt_errors:
            entry["ae"] = [self.text(error) for error in record.attempt_errors]
        if record.error is not None:
            entry["err"] = self.text(record.error)
        if record.batch_id is not None:
            entry["b"] = record.batch_id
        self.calls.append(_encode(entry))
        return len(self.calls) - 1

    def _add_readout(self, entry: dict[str, Any], record: CallRecord, labels: list[str]) -> None:
        readout = record.readout
        if readout is not None:
            probs = None
            if readout.probs is not None:
                probs = [_rounded(readout.probs.get(label)) for label in labels]
                entry["p"] = probs
            mass = [_rounded(readout.mass.get(label)) for label in labels]
            if mass != probs:
                entry["mass"] = mass
            if readout.censored:
                entry["cen"] = 1
            if readout.outside_mass is not None:
                entry["out"] = _number(readout.outside_mass)
            if readout.upper_bound:
                entry["ub"] = {k: _number(v) for k, v in readout.upper_bound.items()}
            if readout.top_logprobs:
                entry["top"] = [
                    [self.text(token), _number(logprob)] for token, logprob in readout.top_logprobs
                ]
        if record.readout_method is not None:
            entry["rm"] = self.text(record.readout_method)
        detail = record.readout_detail
        if detail is not None:
            shown: dict[str, Any] = {}
            if detail.samples:
                shown["s"] = list(detail.samples)
            if detail.stated is not None:
                shown["st"] = _number(detail.stated)
            if detail.interval is not None:
                shown["iv"] = [_number(detail.interval[0]), _number(detail.interval[1])]
            if detail.replies:
                shown["rp"] = [self.text(reply) for reply in detail.replies]
            if detail.rule is not None:
                shown["rule"] = detail.rule
            entry["rd"] = shown

    def document(self, trials: list[list[int]]) -> str:
        """The whole JSON document, joined from the entries' texts."""
        return (
            f'{{"format":{PAYLOAD_FORMAT},"texts":{_encode(self.texts)},'
            f'"items":[{",".join(self.items)}],"calls":[{",".join(self.calls)}],'
            f'"trials":{_encode(trials)}}}'
        )


def _rounded(value: float | None) -> float | None:
    return None if value is None else _number(value)


def _trial_entry(transcript: Transcript, calls: list[int]) -> list[int]:
    flags = (1 if transcript.changed_mind else 0) | (2 if transcript.failed else 0)
    return [flags, *calls]


def build_page(records: Iterable[CallRecord], *, title: str, subtitle: str) -> ViewPage:
    """The trial browser of a run's records (the first record of a key counts, as the run
    store keeps it). Each record becomes its entry's JSON text as it is read, and only its
    outline is kept for grouping, so a large log is never held whole."""
    builder = _PayloadBuilder()
    entry_of: dict[CallKey, int] = {}
    outlines: list[CallRecord] = []
    for record in records:
        if record.key not in entry_of:
            entry_of[record.key] = builder.add_call(record)
            outlines.append(outline(record))
    transcripts = group_transcripts(outlines)
    del outlines
    trials = [
        _trial_entry(transcript, [entry_of[turn.key] for turn in transcript.turns])
        for transcript in transcripts
    ]
    counts = f"{len(trials):,} trials, {len(builder.calls):,} calls"
    return ViewPage(
        html=render_page(
            title=title, subtitle=f"{subtitle} · {counts}", data_json=builder.document(trials)
        ),
        calls=len(builder.calls),
        trials=len(trials),
    )


def view_page(run_dir: Path) -> ViewPage:
    """The trial browser of a run directory; UserError (RunDirError) for a path that is no
    run directory or a damaged calls.jsonl, naming the file and line."""
    state = inspect_run_dir(run_dir, for_run=False)
    if not state.exists:
        raise UserError(f"run directory not found: {run_dir}")
    if CALLS_FILE not in state.names:
        raise UserError(f"no {CALLS_FILE} in {run_dir}: is this a run directory?")
    name = run_dir.resolve().name
    if state.manifest is not None:
        experiment = state.manifest.config.get("experiment")
        if isinstance(experiment, dict) and isinstance(experiment.get("name"), str):
            name = experiment["name"]
    paradigm = None if state.manifest is None else state.manifest.paradigm
    subtitle = f"run directory {run_dir}" + (f" · paradigm {paradigm}" if paradigm else "")
    records = read_call_records(run_dir / CALLS_FILE, strict=state.ours)
    return build_page(records, title=f"mindshift trials: {name}", subtitle=subtitle)


def default_view_path(run_dir: Path) -> Path:
    return run_dir / VIEWER_FILE


def write_view(run_dir: Path, out: Path | None = None) -> WrittenView:
    """Writes the trial browser of `run_dir` to `out` (default RUN_DIR/trials.html),
    replacing the file in one rename so that a reader never sees half a page."""
    page = view_page(run_dir)
    path = default_view_path(run_dir) if out is None else out
    if path.is_dir():
        raise UserError(f"--out {path} is a directory; name the HTML file to write")
    data = page.html.encode("utf-8")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except OSError as error:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    return WrittenView(path=path, calls=page.calls, trials=page.trials, size_bytes=len(data))


class _PageServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve(page: bytes, *, port: int, on_ready: Callable[[str], None]) -> None:
    """Serves `page` at http://127.0.0.1:PORT/ (port 0: a free one) until interrupted.

    Only the page is served, from memory: no other file of the run directory, or of the
    machine, is reachable through it. `on_ready` receives the URL once the port is bound.
    KeyboardInterrupt ends it normally (the caller's Ctrl-C).
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/", f"/{VIEWER_FILE}"):
                self.send_error(404, "only the trial browser is served here")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the terminal shows the URL, not one line per request."""

    try:
        server = _PageServer((LOCALHOST, port), Handler)
    except OSError as error:
        raise UserError(
            f"cannot serve on {LOCALHOST}:{port}: {error.strerror or error} "
            "(choose another --port, or leave it out for a free one)"
        ) from None
    with server:
        on_ready(f"http://{LOCALHOST}:{server.server_address[1]}/")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.1f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} kB"


def run_view_command(run_dir: str, out: str | None, serve_page: bool, port: int | None) -> int:
    """The `view` subcommand: writes the page, says where and how large, and serves it when
    asked (Ctrl-C stops the server, exit 0). Bad input raises UserError (exit 2)."""
    if port is not None and not serve_page:
        raise UserError("--port needs --serve")
    if port is not None and not 0 <= port <= 65535:
        raise UserError(f"--port {port} is no port number (0-65535)")
    written = write_view(Path(run_dir), None if out is None else Path(out))
    sys.stdout.write(
        f"trial browser: {written.path} ({written.trials:,} trials, {written.calls:,} calls, "
        f"{_size(written.size_bytes)})\n"
    )
    if serve_page:

        def announce(url: str) -> None:
            sys.stdout.write(f"serving on {url} (Ctrl-C stops)\n")
            sys.stdout.flush()

        serve(written.path.read_bytes(), port=port or 0, on_ready=announce)
    return 0
