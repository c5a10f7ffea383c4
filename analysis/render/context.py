"""What report.html shows about a run besides its measures: the protocol, example trials and
the trial browser.

The measures come from `Results`; these come from the run directory (its manifest, its
calls.jsonl, whether `mindshift view` has written its page), which `analysis.analyse` reads
and hands over as a `ReportContext`, so rendering stays a pure function of its inputs. A
report without a run directory behind it (`mindshift compare`, a notebook's
`render_report(results, figures)`) gets the empty context: no protocol named, no examples.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from mindshift.harness.transcripts import VIEWER_FILE, Transcript

VIEW_COMMAND: Final = "mindshift view"
"""The command that writes a run's trial browser (`mindshift.view`)."""


@dataclass(frozen=True)
class Protocol:
    """The paradigm a run was made with, as its own code names and describes it."""

    name: str
    """Its registered name, the config's `[experiment] paradigm` (e.g. "are-you-sure")."""
    description: str
    """The first paragraph of its documentation ("" when it has none or is not installed)."""


def protocol_of(name: str, paradigm: type | None) -> Protocol:
    """The `Protocol` of a paradigm class (None: not installed here, named only).

    A paradigm documents itself in its module's docstring (every built-in does), or in its
    class's own docstring when it has one; the first paragraph is the summary.
    """
    if paradigm is None:
        return Protocol(name, "")
    own = paradigm.__dict__.get("__doc__")
    module = sys.modules.get(paradigm.__module__)
    text = own or (module.__doc__ if module is not None else None) or ""
    summary = " ".join(inspect.cleandoc(text).split("\n\n", 1)[0].split())
    # A docstring that opens with its own name ("`are-you-sure`: the ...") says it once.
    summary = summary.removeprefix(f"`{name}`:").removeprefix(f"{name}:").strip()
    return Protocol(name, summary[:1].upper() + summary[1:])


@dataclass(frozen=True)
class ViewerLink:
    """Where the run's trial browser is, or how to write it."""

    written: bool
    """Whether `mindshift view` has written it into the run directory."""
    run_dir: str
    """The run directory, for the command that writes it."""

    @property
    def href(self) -> str:
        """The page relative to the report (RUN_DIR/analysis/report.html)."""
        return f"../{VIEWER_FILE}"

    @property
    def command(self) -> str:
        return f"{VIEW_COMMAND} {self.run_dir}"


@dataclass(frozen=True)
class ReportContext:
    """The run-directory facts a report shows beside the measures (all optional)."""

    protocol: Protocol | None = None
    examples: Mapping[str, Transcript] = field(default_factory=dict)
    """One answered trial per condition (`analysis.data.examples`), in the order the
    conditions first appear."""
    viewer: ViewerLink | None = None
