"""The call record: what calls.jsonl stores for every finished call, as one typed value.

The runner builds a `CallRecord` from a planned call and its response; the run store writes
it (`to_json`, one line) and reads it back (`from_json`, after `record_problem` has checked
its shape); the trials table, the cost report, the batch waves and the analysis read its
fields. The JSON layout is the run directory's contract (`harness.run_format` names its
versions): keys and their meaning never change for a stored run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mindshift.harness.errors import RunDirError
from mindshift.harness.run_format import CallKey, encode_line, line_key
from mindshift.harness.types import (
    ChoiceRequest,
    Item,
    JsonValue,
    Message,
    OptionReadout,
    Prompt,
    ReadoutDetail,
    Usage,
)

MAX_LINE_BYTES = 64 << 20
"""No record is this long (a prompt and a raw response are some kilobytes): a longer line is
damage, reported before it is parsed."""


@dataclass(frozen=True)
class StoredRequest:
    """The request of a call as stored: the prompt, its sampling settings and its facts."""

    prompt: Prompt
    temperature: float
    seed: int
    situation: dict[str, JsonValue]
    """The protocol's facts of this turn, as JSON (the protocol's own `Facts` schema parses
    them; the engine stores them and never reads them)."""

    @classmethod
    def of(cls, request: ChoiceRequest) -> StoredRequest:
        return cls(
            prompt=request.prompt,
            temperature=request.temperature,
            seed=request.seed,
            situation=request.situation_json(),
        )

    def to_json(self) -> dict[str, JsonValue]:
        return {
            **self.prompt.to_json(),
            "temperature": self.temperature,
            "seed": self.seed,
            "situation": self.situation,
        }

    @classmethod
    def from_json(cls, data: dict[str, JsonValue]) -> StoredRequest:
        messages = tuple(
            Message(role=str(one.get("role")), content=str(one.get("content")))  # type: ignore[arg-type]
            for one in data.get("messages") or []
            if isinstance(one, dict)
        )
        return cls(
            prompt=Prompt(
                messages=messages,
                answer_prefix=str(data.get("answer_prefix") or ""),
                labels=tuple(str(label) for label in data.get("labels") or ()),
            ),
            temperature=float(data.get("temperature") or 0.0),
            seed=int(data.get("seed") or 0),
            situation=dict(data.get("situation") or {}),
        )


@dataclass(frozen=True)
class CallRecord:
    """One finished call: a success (`choice` set) or a final failure (`error` set)."""

    trial_id: str
    stage: int
    """The turn number: 1 for the first turn, k for the k-th."""
    model: str
    item: Item
    condition: str
    repeat: int
    spec: str | None = None
    paradigm: str | None = None
    factors: dict[str, JsonValue] = field(default_factory=dict)
    """The condition's factor values, as the protocol named them (opaque to the engine)."""
    initial_trial_id: str | None = None
    """The turn-1 call a later turn was built from (None at turn 1)."""
    previous_trial_id: str | None = None
    """For turns after the second: the turn just before, which this one was built from."""
    request: StoredRequest | None = None
    response: JsonValue = None
    """The provider's response as received (or what an in-process model computed)."""
    choice: str | None = None
    readout: OptionReadout | None = None
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    batch_size: int = 0
    attempts: int = 0
    attempt_errors: tuple[str, ...] = ()
    error: str | None = None
    finished_at: str | None = None
    batch_id: str | None = None
    """The provider batch that answered the call (`--batch` runs)."""
    readout_method: str | None = None
    """How the confidence was read (`logprobs`, `sampling`, `verbal`, `verbal-2stage`,
    `ptrue`, or `choice-only`); None in records made before it was stored (schema < 3:
    token logprobs, or choices only)."""
    readout_detail: ReadoutDetail | None = None
    """What a readout without logprobs saw: its samples, stated confidence, interval, replies."""
    retired_at: str | None = None
    """Set on the records of failures.jsonl: when a later run retired this failure."""

    @property
    def key(self) -> CallKey:
        return (self.trial_id, self.stage)

    @property
    def failed(self) -> bool:
        """A call that produced no answer."""
        return self.error is not None or self.choice is None

    @property
    def probs(self) -> dict[str, float] | None:
        """Option probabilities of the answer; None for a censored or empty readout."""
        return None if self.readout is None else self.readout.probs

    @property
    def situation(self) -> dict[str, JsonValue]:
        """The protocol's stored facts of this turn ({} when the call has no request)."""
        return {} if self.request is None else self.request.situation

    def retired(self, at: str) -> CallRecord:
        return replace(self, retired_at=at)

    def to_json(self) -> dict[str, JsonValue]:
        """The record as calls.jsonl stores it (trial_id and stage first: see run_format)."""
        data: dict[str, JsonValue] = {
            "trial_id": self.trial_id,
            "stage": self.stage,
            "model": self.model,
            "spec": self.spec,
            "paradigm": self.paradigm,
            "item": self.item.to_json(),
            "condition": self.condition,
            "factors": self.factors,
            "repeat": self.repeat,
            "initial_trial_id": self.initial_trial_id,
        }
        if self.previous_trial_id is not None:  # record schema 2, turns after the second
            data["previous_trial_id"] = self.previous_trial_id
        data.update(
            {
                "request": None if self.request is None else self.request.to_json(),
                "response": self.response,
                "choice": self.choice,
                "readout": None if self.readout is None else self.readout.to_json(),
                "usage": self.usage.to_json(),
                "latency_s": self.latency_s,
                "batch_size": self.batch_size,
                "attempts": self.attempts,
                "attempt_errors": list(self.attempt_errors),
                "error": self.error,
                "finished_at": self.finished_at,
            }
        )
        if self.batch_id is not None:
            data["batch_id"] = self.batch_id
        if self.readout_method is not None:
            data["readout_method"] = self.readout_method
        if self.readout_detail is not None:
            data["readout_detail"] = self.readout_detail.to_json()
        if self.retired_at is not None:
            data["retired_at"] = self.retired_at
        return data

    def to_line(self) -> bytes:
        return encode_line(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallRecord:
        """A record from its decoded JSON, which `record_problem` has accepted."""
        request = data.get("request")
        readout = data.get("readout")
        return cls(
            trial_id=data["trial_id"],
            stage=data["stage"],
            model=data["model"],
            item=Item.from_json(data["item"]),
            condition=str(data.get("condition", "")),
            repeat=int(data.get("repeat") or 0),
            spec=data.get("spec"),
            paradigm=data.get("paradigm"),
            factors=dict(data.get("factors") or {}),
            initial_trial_id=data.get("initial_trial_id"),
            previous_trial_id=data.get("previous_trial_id"),
            request=StoredRequest.from_json(request) if isinstance(request, dict) else None,
            response=data.get("response"),
            choice=data.get("choice"),
            readout=OptionReadout.from_json(readout) if isinstance(readout, dict) else None,
            usage=Usage.from_json(data.get("usage")),
            latency_s=float(data.get("latency_s") or 0.0),
            batch_size=int(data.get("batch_size") or 0),
            attempts=int(data.get("attempts") or 0),
            attempt_errors=tuple(str(one) for one in data.get("attempt_errors") or ()),
            error=data.get("error"),
            finished_at=data.get("finished_at"),
            batch_id=data.get("batch_id"),
            readout_method=data.get("readout_method"),
            readout_detail=(
                ReadoutDetail.from_json(detail)
                if isinstance(detail := data.get("readout_detail"), dict)
                else None
            ),
            retired_at=data.get("retired_at"),
        )


@dataclass(frozen=True)
class StoredAnswer:
    """What a reader of answers takes from a stored call: its key, model, item, condition,
    outcome and option probabilities, as the `CallRecord` of the same line has them.

    Built without the request, the response and the readout's details, a fraction of the
    cost of a whole record: the analysis reads every turn-1 call of a run (a million in a
    large one) for these fields alone.
    """

    trial_id: str
    stage: int
    model: str
    item: Item
    condition: str
    choice: str | None
    error: str | None
    probs: dict[str, float] | None
    """As `CallRecord.probs`: None for a censored or empty readout, or none at all."""

    @property
    def failed(self) -> bool:
        """A call that produced no answer (as `CallRecord.failed`)."""
        return self.error is not None or self.choice is None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredAnswer:
        """The answer of a record's decoded JSON, which `record_problem` has accepted (each
        field converted exactly as `CallRecord.from_json` and `OptionReadout.from_json` do)."""
        readout = data.get("readout")
        return cls(
            trial_id=data["trial_id"],
            stage=data["stage"],
            model=data["model"],
            item=Item.from_json(data["item"]),
            condition=str(data.get("condition", "")),
            choice=data.get("choice"),
            error=data.get("error"),
            probs=OptionReadout.probs_from_json(readout) if isinstance(readout, dict) else None,
        )


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _need(record: dict[str, Any], key: str, kinds: tuple[type, ...], optional: bool) -> str | None:
    """Why `record[key]` does not fit `kinds` (None when it does); bool is no int here."""
    if key not in record:
        return None if optional else f"has no '{key}'"
    value = record[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) and bool not in kinds:
        return f"'{key}' is {_kind(value)}"
    if not isinstance(value, kinds):
        return f"'{key}' is {_kind(value)}"
    return None


_REQUIRED: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("trial_id", (str,)),
    ("stage", (int,)),
    ("model", (str,)),
    ("item", (dict,)),
    ("condition", (str,)),
    ("repeat", (int,)),
)
_NULLABLE: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("choice", (str,)),
    ("error", (str,)),
    ("spec", (str,)),
    ("paradigm", (str,)),
    ("factors", (dict,)),
    ("initial_trial_id", (str,)),
    ("previous_trial_id", (str,)),
    ("request", (dict,)),
    ("readout", (dict,)),
    ("usage", (dict,)),
    ("latency_s", (int, float)),
    ("batch_size", (int,)),
    ("attempts", (int,)),
    ("attempt_errors", (list,)),
    ("finished_at", (str,)),
    ("batch_id", (str,)),
    ("readout_method", (str,)),
    ("readout_detail", (dict,)),
    ("retired_at", (str,)),
)
_KeyCheck = tuple[str, tuple[type, ...], frozenset[type], bool]
"""A key, the types its value may have, those types as a set, and whether it may be absent
or null."""


def _key_checks(optional: Callable[[str], bool]) -> tuple[_KeyCheck, ...]:
    return tuple(
        (key, kinds, frozenset(kinds), optional(key)) for key, kinds in (*_REQUIRED, *_NULLABLE)
    )


def _misfit(record: dict[str, Any], checks: tuple[_KeyCheck, ...]) -> str | None:
    """The first key of `checks` whose value does not fit (see `_need`); None when all do.

    Every record read back passes through here (~25 keys each, a million records in a large
    run), so the common case costs one dict lookup and one set lookup per key: a decoded JSON
    value's type is exactly dict, list, str, int, float, bool or None. Anything else (a bool
    where a number is expected, a missing key, a subclass) gets `_need`'s full answer.
    """
    for key, kinds, exact, optional in checks:
        value = record.get(key)
        if type(value) in exact or (value is None and optional):
            continue
        problem = _need(record, key, kinds, optional)
        if problem is not None:
            return problem
    return None


_REQUIRED_TO_READ = frozenset({"trial_id", "stage", "model", "item"})
"""What even a log assembled by hand must hold for the analysis and the cost report."""
_STRICT_CHECKS = _key_checks(lambda key: key not in {name for name, _ in _REQUIRED})
"""What `record_problem` checks of a record mindshift wrote: every key, with its type."""
_READABLE_CHECKS = _key_checks(lambda key: key not in _REQUIRED_TO_READ)
"""What it checks of any other log: the keys the readers use, each of the right type."""


def _json_failed(record: dict[str, Any]) -> bool:
    return record.get("error") is not None or record.get("choice") is None


def record_problem(record: object, *, strict: bool = True) -> str | None:
    """Why a decoded line is not a call record the harness can use; None when it is one.

    Checks every key the runner, the trials table, the cost report and the analysis read,
    with its type, so a damaged log is refused when it is opened rather than failing half
    way through a run (or silently producing wrong tables). `strict` False: a log that
    mindshift did not write (no manifest of its own) needs only the keys the readers use,
    each of the right type where present.
    """
    if not isinstance(record, dict):
        return f"is a JSON {_kind(record)}, not a call record"
    if not strict:
        return _readable_problem(record)
    problem = _misfit(record, _STRICT_CHECKS)
    if problem is not None:
        return problem
    if not record["trial_id"] or record["stage"] < 1 or record["repeat"] < 0:
        return "has an empty 'trial_id', a 'stage' below 1 or a negative 'repeat'"
    item = record["item"]
    labels, options = item.get("labels"), item.get("options")
    if (
        not isinstance(item.get("id"), str)
        or not isinstance(item.get("correct"), str)
        or not isinstance(labels, list)
        or not all(isinstance(label, str) for label in labels)
        or not isinstance(options, list)
    ):
        return "has an 'item' without a text 'id', 'correct' and a list of text 'labels'"
    problem = _readout_problem(record)
    if problem is not None:
        return problem
    if not _json_failed(record):
        if record["stage"] > 1 and not isinstance(record.get("initial_trial_id"), str):
            return "is a stage-2 answer without an 'initial_trial_id'"
        request = record.get("request")
        if record["stage"] > 1 and not isinstance(request, dict):
            return "is a stage-2 answer without its 'request'"
        if isinstance(request, dict) and not isinstance(request.get("situation") or {}, dict):
            return "has a 'request.situation' that is not an object"
    return None


def _readout_problem(record: dict[str, Any]) -> str | None:
    readout = record.get("readout")
    if readout is None:
        return None
    probs = readout.get("probs")
    if probs is not None and (
        not isinstance(probs, dict)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in probs.values())
    ):
        return "has 'readout.probs' that are not numbers by label"
    return None


def _readable_problem(record: dict[str, Any]) -> str | None:
    problem = _misfit(record, _READABLE_CHECKS)
    if problem is not None:
        return problem
    item = record["item"]
    for key in ("id", "correct"):
        if not isinstance(item.get(key), str):
            return f"has an 'item' without a text '{key}'"
    labels = item.get("labels")
    if labels is not None and (
        not isinstance(labels, list) or not all(isinstance(label, str) for label in labels)
    ):
        return "has 'item.labels' that are not a list of texts"
    request = record.get("request")
    if isinstance(request, dict) and not isinstance(request.get("situation") or {}, dict):
        return "has a 'request.situation' that is not an object"
    return _readout_problem(record)


def _no_constant(name: str) -> None:
    """The run store writes no NaN or Infinity (`allow_nan=False`): one read back is damage."""
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
"""Built once: `json.loads` with an option builds a decoder for every line it is given."""


def _complete_lines(path: Path) -> Iterator[bytes]:
    """The lines of a file that end in a newline, streamed one at a time (a log can hold a
    million later turns, gigabytes a reader of turn 1 skips: read whole, it would cost that
    much memory). Everything after the last newline is an unfinished write, left out."""
    try:
        handle = path.open("rb")
    except IsADirectoryError:
        raise RunDirError(
            f"{path} is a directory, not a file: the run directory is damaged"
        ) from None
    except OSError as error:
        raise RunDirError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        try:
            for line in handle:
                if not line.endswith(b"\n"):
                    return
                yield line
        except OSError as error:
            raise RunDirError(f"cannot read {path}: {error.strerror}") from None


def read_call_records(
    path: Path,
    *,
    strict: bool = True,
    stages: Collection[int] | None = None,
    keys: Collection[CallKey] | None = None,
) -> Iterator[CallRecord]:
    """Records of a calls.jsonl (or failures.jsonl), skipping a torn final line (the call
    that was in flight).

    Any other line that is not a whole call record (undecodable, not JSON, JSON of another
    shape, a key missing or of the wrong type) raises RunDirError naming the file and line.
    `stages`: read only records of these stages; `keys`: only records of these keys. Lines
    the filters leave out that the run store wrote are passed over without parsing (a large
    run holds a million later turns), so their damage goes unnoticed here.
    """
    return map(
        CallRecord.from_json, _checked_records(path, strict=strict, stages=stages, keys=keys)
    )


def read_stored_answers(
    path: Path, *, strict: bool = True, stages: Collection[int] | None = None
) -> Iterator[StoredAnswer]:
    """The answers of the records of a calls.jsonl, read and checked as `read_call_records`
    reads them (the same lines, the same errors), each built as a `StoredAnswer` only."""
    return map(StoredAnswer.from_json, _checked_records(path, strict=strict, stages=stages))


def _checked_records(
    path: Path,
    *,
    strict: bool,
    stages: Collection[int] | None,
    keys: Collection[CallKey] | None = None,
) -> Iterator[dict[str, Any]]:
    """The decoded lines of `path` that `record_problem` accepts (see `read_call_records`)."""
    for number, line in enumerate(_complete_lines(path), start=1):
        if not line.strip():
            continue
        if stages is not None or keys is not None:
            key = line_key(line)
            if key is not None and (
                (stages is not None and key[1] not in stages)
                or (keys is not None and key not in keys)
            ):
                continue
        if len(line) - 1 > MAX_LINE_BYTES:
            raise RunDirError(
                f"{path}: line {number} is {len(line) - 1:,} bytes long; the log is damaged"
            )
        try:
            decoded = _DECODER.decode(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise RunDirError(
                f"{path}: line {number} is not UTF-8 text; the log is damaged"
            ) from None
        except (ValueError, RecursionError):  # JSONDecodeError, NaN, a 5000-digit number
            raise RunDirError(
                f"{path}: line {number} is not valid JSON; the log is damaged"
            ) from None
        problem = record_problem(decoded, strict=strict)
        if problem is not None:
            raise RunDirError(f"{path}: line {number} {problem}; the log is damaged")
        if stages is not None and decoded["stage"] not in stages:
            continue  # a line in another layout, filtered once parsed
        if keys is not None and (decoded["trial_id"], decoded["stage"]) not in keys:
            continue
        yield decoded
