"""Transcripts: a run's calls grouped into trials, each turn in order, for reading by a person.

A trial here is what one branch of the planner's tree holds (docs/architecture.md, "The path
of one run"): an item's turn-1 call followed by the later turns of one condition and repeat.
Turn 1 is shared by every condition of its item, so one turn-1 record opens many trials. A
later turn names its turn-1 call in `initial_trial_id`, and a turn after the second names the
turn before it in `previous_trial_id`; following those links (never matching prompts or
conditions) is what puts a branch together. A turn-1 call that opens no branch (a calibration
item, a turn 1 that failed before any later turn was planned, a run stopped after its first
wave) is a trial of its own.

`mindshift view` renders every transcript of a run as an HTML trial browser; the analysis
shows a few of them in its report (`read_transcripts_of` the calls it chose). This module
reads only the engine's contracts (`harness.record`, `harness.run_format`), so the analysis
may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from mindshift.harness.record import CallRecord, read_call_records
from mindshift.harness.run_format import CALLS_FILE, CallKey
from mindshift.harness.types import Item

VIEWER_FILE = "trials.html"
"""Where `mindshift view RUN_DIR` writes the trial browser, inside the run directory (beside
calls.jsonl, not in `analysis/`, which `mindshift analyse` replaces as a whole). The report in
`analysis/report.html` links to it as `../trials.html`."""


@dataclass(frozen=True)
class Transcript:
    """One trial: its calls in turn order (turn 1 first, when the log holds it)."""

    turns: tuple[CallRecord, ...]

    def __post_init__(self) -> None:
        if not self.turns:
            raise ValueError("a transcript holds at least one call")

    @property
    def trial_id(self) -> str:
        """The trial's name: the id of its first later turn (unique to this branch), or of
        its turn-1 call when that is all it holds."""
        return self.branch[0].trial_id if self.branch else self.turns[0].trial_id

    @property
    def first(self) -> CallRecord | None:
        """The turn-1 call (None in a hand-made log that lacks it)."""
        return self.turns[0] if self.turns[0].stage == 1 else None

    @property
    def branch(self) -> tuple[CallRecord, ...]:
        """The later turns (turn 2 on), which belong to this trial alone."""
        return tuple(turn for turn in self.turns if turn.stage > 1)

    @property
    def last(self) -> CallRecord:
        return self.turns[-1]

    @property
    def model(self) -> str:
        return self.last.model

    @property
    def item_id(self) -> str:
        return self.last.item.item_id

    @property
    def condition(self) -> str:
        """The later turns' condition; turn 1's (`initial`, `calibration`) for a trial
        without later turns."""
        return self.last.condition

    @property
    def repeat(self) -> int:
        return self.last.repeat

    def changed(self, turn: CallRecord) -> bool | None:
        """Whether a later turn's answer differs from turn 1's; None for turn 1 itself, or
        when either of the two has no answer (nothing to compare)."""
        first = self.first
        if turn.stage == 1 or first is None or first.failed or turn.failed:
            return None
        return turn.choice != first.choice

    @property
    def changed_mind(self) -> bool:
        """Whether any later turn's answer differs from turn 1's."""
        return any(self.changed(turn) for turn in self.branch)

    @property
    def failed(self) -> bool:
        """Whether any of its calls ended without an answer (its `error` says why)."""
        return any(turn.failed for turn in self.turns)


def group_transcripts(records: Iterable[CallRecord]) -> list[Transcript]:
    """The trials of a run's records, each turn in order.

    The first record of a key counts, as the run store keeps it. Trials come in a stable
    order: by model, item and condition as each first appears in the log, then by repeat.
    A later turn whose earlier turn is missing from the log (a hand-made log) starts a
    branch of its own; one whose turn 1 is missing is shown without it.
    """
    by_key: dict[CallKey, CallRecord] = {}
    for record in records:
        by_key.setdefault(record.key, record)
    branch_root: dict[CallKey, CallKey] = {}

    def root_of(key: CallKey) -> CallKey:
        """The branch's first later turn: follow `previous_trial_id` back to turn 2."""
        chain: list[CallKey] = []
        while key not in branch_root:
            record = by_key[key]
            parent = (record.previous_trial_id or "", record.stage - 1)
            if record.stage <= 2 or parent not in by_key:
                branch_root[key] = key
                break
            chain.append(key)
            key = parent
        root = branch_root[key]
        for one in chain:
            branch_root[one] = root
        return root

    branches: dict[CallKey, list[CallRecord]] = {}
    opened: set[CallKey] = set()
    for key, record in by_key.items():
        if record.stage > 1:
            branches.setdefault(root_of(key), []).append(record)
            opened.add((record.initial_trial_id or "", 1))
    transcripts: list[Transcript] = []
    for key, record in by_key.items():
        if record.stage == 1 and key not in opened:
            transcripts.append(Transcript((record,)))
    for root, later in branches.items():
        first = by_key.get((by_key[root].initial_trial_id or "", 1))
        later.sort(key=lambda one: one.stage)
        transcripts.append(Transcript(((first,) if first is not None else ()) + tuple(later)))
    return sorted(transcripts, key=_order(by_key.values()))


def _order(records: Iterable[CallRecord]) -> Callable[[Transcript], tuple[int, int, int, int, str]]:
    """A sort key: model, item and condition by first appearance, then repeat, then id."""
    seen: dict[tuple[str, str], int] = {}
    for record in records:
        for kind, value in (
            ("model", record.model),
            ("item", record.item.item_id),
            ("condition", record.condition),
        ):
            seen.setdefault((kind, value), len(seen))

    def key(transcript: Transcript) -> tuple[int, int, int, int, str]:
        return (
            seen[("model", transcript.model)],
            seen[("item", transcript.item_id)],
            transcript.repeat,
            seen[("condition", transcript.condition)],
            transcript.trial_id,
        )

    return key


def outline(record: CallRecord) -> CallRecord:
    """A record without its texts and numbers: what grouping it into a trial and telling
    whether it changed its mind or failed read (its key, links, model, item id, condition,
    repeat, choice and error). A reader of a large log groups outlines and keeps the full
    records it needs elsewhere: a 100k-call log is 0.3 GB of outlines, 0.9 GB of records."""
    item = record.item
    return replace(
        record,
        item=Item(item_id=item.item_id, question="", labels=(), options=(), correct=item.correct),
        factors={},
        request=None,
        response=None,
        readout=None,
        readout_detail=None,
        attempt_errors=(),
    )


def read_transcripts(run_dir: Path, *, strict: bool = True) -> list[Transcript]:
    """Every transcript of a run directory's calls.jsonl, with full records (RunDirError on
    a damaged line; `strict` False for a log mindshift did not write, as
    `harness.run_dir.inspect_run_dir` decides). Holds the whole log in memory."""
    return group_transcripts(read_call_records(run_dir / CALLS_FILE, strict=strict))


def read_transcripts_of(
    run_dir: Path, keys: Collection[CallKey], *, strict: bool = True
) -> list[Transcript]:
    """The transcripts made of the calls with these keys, with full records (the first
    record of a key, as the run store keeps it), grouped as `group_transcripts` groups them.

    Reads only those lines of calls.jsonl (the others are passed over unparsed) and stops
    once every key is found, so a few example trials cost little however long the log is.
    A key the log lacks is left out."""
    wanted = set(keys)
    found: dict[CallKey, CallRecord] = {}
    if wanted:
        for record in read_call_records(run_dir / CALLS_FILE, strict=strict, keys=wanted):
            found.setdefault(record.key, record)
            if len(found) == len(wanted):
                break
    return group_transcripts(found.values())
