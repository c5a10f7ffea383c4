"""report.html as a reader meets it (issues 12 and 13): the answer first, the readout named on
every table, the protocol's own name and wordings, one example trial per condition with the
way to the trial browser, entities escaped once, a pooled row only where it pools, a design
table that fits a 1,280-px window (checked in headless chromium), and an install command for
the bayes extra that names this installation.

The runs are real sim:bayes runs made through the CLI (change-of-mind under two readouts,
are-you-sure), analysed with `mindshift.analyse`, whose objects the report is rendered from.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import mindshift
from mindshift.analysis.beta.install import bayes_install_command
from mindshift.analysis.measures.results import compute_results
from mindshift.analysis.render.context import Protocol, ReportContext
from mindshift.analysis.render.report import render_report
from mindshift.cli import main
from mindshift.harness import extras
from mindshift.harness.extras import install_command
from mindshift.harness.record import read_call_records
from mindshift.harness.transcripts import VIEWER_FILE
from mindshift.paradigms.are_you_sure import CHALLENGES
from tests.mindshift.test_view import Browser, _chromium

SIM = "{ choice_support = 0.8, w_same = 1.0, w_opposite = 2.5, noise = 0.3 }"
CHANGE_OF_MIND = f"""
[experiment]
name = "report-com"
paradigm = "change-of-mind"
seed = 3

[paradigm]
items = 8

[[models]]
id = "sim"
spec = "sim:bayes"
params = {SIM}

[[models]]
id = "stated"
spec = "sim:bayes"
readout = "verbal"
params = {SIM}
"""
ARE_YOU_SURE = f"""
[experiment]
name = "report-ays"
paradigm = "are-you-sure"
seed = 3

[paradigm]
items = 4

[[models]]
id = "sim"
spec = "sim:bayes"
params = {SIM}
"""


def _run(root: Path, config: str) -> Path:
    path = root / "config.toml"
    path.write_text(config, encoding="utf-8")
    run_dir = root / "run"
    assert main(["run", str(path), "--out", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def com(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, mindshift.RunAnalysis, str]:
    run_dir = _run(tmp_path_factory.mktemp("com"), CHANGE_OF_MIND)
    analysed = mindshift.analyse(run_dir, fitted_model="tobit")
    report = (run_dir / "analysis" / "report.html").read_text(encoding="utf-8")
    return run_dir, analysed, report


@pytest.fixture(scope="module")
def ays(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run_dir = _run(tmp_path_factory.mktemp("ays"), ARE_YOU_SURE)
    mindshift.analyse(run_dir, fitted_model="tobit")
    return run_dir, (run_dir / "analysis" / "report.html").read_text(encoding="utf-8")


def _section(report: str, heading: str) -> str:
    """The HTML of the section whose <h2> ends with `heading`, up to the next <h2>."""
    start = re.search(rf"<h2>(\d+\. )?{re.escape(heading)}</h2>", report)
    assert start is not None, f"no section {heading!r}"
    end = report.find("<h2>", start.end())
    return report[start.end() : end if end >= 0 else len(report)]


def _rows(table_html: str) -> list[list[str]]:
    """The body rows of the first table in `table_html`, each cell's text (tags removed)."""
    body = table_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body)
    ]


def test_every_table_names_the_readout_of_each_model_as_summary_json_does(
    com: tuple[Path, mindshift.RunAnalysis, str],
) -> None:
    _, analysed, report = com
    readouts = {m: entry["readout"] for m, entry in analysed.summary["models"].items()}
    assert readouts == {"sim": "logprobs", "stated": "verbal"}
    tables = re.findall(r"<table>(.*?)</table>", report, re.S)
    assert len(tables) >= 15
    for table in tables:
        caption = re.match(r'<caption class="readout">(.*?)</caption><thead>', table)
        assert caption is not None, table[:200]
        text = caption.group(1)
        # A table of one model (an OUCS table) names that model's readout; others both.
        named = dict(re.findall(r"<code>([^<]+)</code> ([a-z0-9+-]+)", text))
        assert named, text
        assert all(readouts[model] == readout for model, readout in named.items())
    both = "Readout: <code>sim</code> logprobs; <code>stated</code> verbal"
    assert report.count(both) >= 10
    assert "Readout: <code>stated</code> verbal</caption>" in report  # its own OUCS table


def test_the_key_results_come_first_with_the_notebook_api_numbers(
    com: tuple[Path, mindshift.RunAnalysis, str],
) -> None:
    _, analysed, report = com
    headings = re.findall(r"<h2>([^<]*)</h2>", report)
    assert headings[:2] == ["1. Key results", "2. Design"]
    assert report.index("Key results") < report.index("<h2>2. Design</h2>")
    rows = {row[0]: row for row in _rows(_section(report, "Key results"))}
    assert set(rows) == {"sim", "stated"}
    results = analysed.results
    for model, row in rows.items():
        entry = analysed.summary["models"][model]
        assert row[1] == entry["readout"]
        support = results.choice_support.set_index("model").loc[model]
        assert row[2] == (
            f"{support['estimate']:+.3f} [{support['ci_low']:.3f}, {support['ci_high']:.3f}]"
        )
        assert row[2].startswith(f"{entry['choice_support_test']['estimate']:+.3f}")
        assert row[3] == f"{entry['overweighting']['opposite']:.2f}\N{MULTIPLICATION SIGN}"
        fit = results.fit.loc[results.fit["model"] == model].set_index("term")
        for column, term in ((4, "w_opposite"), (5, "w_same"), (6, "choice_support")):
            value = fit.loc[term]
            assert row[column] == (
                f"{value['estimate']:.3f} [{value['ci_low']:.3f}, {value['ci_high']:.3f}]"
            )
            assert entry["fit"][term] == pytest.approx(value["estimate"])
        # The simulated agent's contrary advice weighs 2.5 times the Bayesian observer's.
        assert 2.0 < fit["estimate"].to_dict()["w_opposite"] < 3.0


def test_entities_are_escaped_once(com: tuple[Path, mindshift.RunAnalysis, str]) -> None:
    _, _, report = com
    assert not re.search(r"&amp;[a-zA-Z]+;", report)
    assert "<th>shown \N{MINUS SIGN} hidden [95 % CI]</th>" in report


def _pooled_report(displays: tuple[str, ...], simulated: Callable[..., pd.DataFrame]) -> str:
    trials = simulated(n_items=6, displays=displays, accuracies=(0.7, 0.9))
    return render_report(compute_results(trials, fitted_model="tobit"), {})


def test_a_pooled_row_says_what_it_pools_and_is_left_out_when_it_pools_one_display(
    simulated: Callable[..., pd.DataFrame],
) -> None:
    both = _section(
        _pooled_report(("shown", "hidden"), simulated), "Comparison with the Bayesian observer"
    )
    assert both.count("pooled (shown+hidden)") == 2  # same, opposite
    assert "paper: probability scale, pooled shown+hidden" in both
    hidden = _section(
        _pooled_report(("hidden",), simulated), "Comparison with the Bayesian observer"
    )
    assert "pooled (" not in hidden
    assert "hidden trials alone (no other display to pool)" in hidden
    # The hidden rows stand in as the headline rows.
    assert re.search(
        r'<tr class="key"><td class="label">sim</td><td class="label">hidden</td>', hidden
    )


def test_another_protocol_is_described_by_its_own_name_and_wordings(
    ays: tuple[Path, str],
) -> None:
    _, report = ays
    design = _section(report, "Design")
    assert "Protocol <b>are-you-sure</b>: The sycophancy challenge." in design
    assert "stage 2" not in design and "advice that agrees, opposes" not in design
    examples = _section(report, "Example trials")
    for name in ("are-you-sure", "i-disagree", "think-again", "user-suggests"):
        wording = CHALLENGES[name].split("{", 1)[0]
        assert f"<b>{name}</b>" in examples
        assert html.escape(wording) in examples
    methods = report.split("<h2>Methods</h2>", 1)[1]
    assert "Overweighting =" not in methods and "answer-wrong" not in methods
    assert "clustered by question" in methods
    # Its key results are its conditions' change-of-mind rates.
    rows = _rows(_section(report, "Key results"))
    assert [row[2] for row in rows] == [
        "are-you-sure",
        "i-disagree",
        "think-again",
        "user-suggests",
    ]
    assert all(row[1] == "logprobs" for row in rows)


def test_one_example_trial_per_condition_as_calls_jsonl_holds_it(
    com: tuple[Path, mindshift.RunAnalysis, str],
) -> None:
    run_dir, analysed, report = com
    examples = _section(report, "Example trials")
    shown = re.findall(r"<summary><b>([^<]+)</b>", examples)
    conditions = list(dict.fromkeys(analysed.run.trials["condition"].astype(str)))
    assert sorted(shown) == sorted(conditions)
    records = {
        record.trial_id: record
        for record in read_call_records(run_dir / "calls.jsonl")
        if record.stage == 2
    }
    ids = re.findall(r"Trial <code>([^<]+)</code>", examples)
    assert len(ids) == len(conditions)
    for trial_id in ids[:3]:
        record = records[trial_id]
        assert record.request is not None and record.readout is not None
        for message in record.request.prompt.messages:
            assert f"<pre>{html.escape(message.content)}</pre>" in examples
        probabilities = " · ".join(
            f"{label} {value:.3f}" for label, value in (record.readout.probs or {}).items()
        )
        assert probabilities in examples


def test_the_report_links_the_trial_browser_once_view_has_written_it(
    ays: tuple[Path, str],
) -> None:
    run_dir, report = ays
    assert f"<code>mindshift view {html.escape(str(run_dir))}</code> writes" in report
    assert f'href="../{VIEWER_FILE}"' not in report
    assert main(["view", str(run_dir)]) == 0
    assert (run_dir / VIEWER_FILE).is_file()
    mindshift.analyse(run_dir, fitted_model="tobit")
    linked = (run_dir / "analysis" / "report.html").read_text(encoding="utf-8")
    href = re.search(r'<a href="([^"]+)">', linked)
    assert href is not None and href.group(1) == f"../{VIEWER_FILE}"
    assert ((run_dir / "analysis") / href.group(1)).resolve() == (run_dir / VIEWER_FILE).resolve()


def test_a_report_without_a_run_directory_has_no_examples_and_names_no_protocol(
    simulated: Callable[..., pd.DataFrame],
) -> None:
    results = compute_results(simulated(n_items=4, accuracies=(0.7,)), fitted_model="tobit")
    bare = render_report(results, {})
    assert "Example trials" not in bare and "Protocol <b>" not in bare
    named = render_report(results, {}, context=ReportContext(Protocol("x-protocol", "A `y` z.")))
    assert "Protocol <b>x-protocol</b>: A <code>y</code> z." in named


class _ReportPage(Browser):
    """The test_view browser, loading a page without a script at a given window width."""

    def load(self, path: Path, width: int) -> None:
        self._call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=True,
        )
        for address in ("about:blank", path.resolve().as_uri()):
            self.events.clear()
            self._call("Page.navigate", {"url": address}, session=True)
            self._wait_event("Page.loadEventFired")


@pytest.fixture(scope="module")
def page() -> Iterator[_ReportPage]:
    with tempfile.TemporaryDirectory(prefix="mindshift-chromium-") as profile:
        browser = _ReportPage(_chromium(), Path(profile))
        try:
            yield browser
        finally:
            browser.close()


def test_nothing_is_cut_at_1280_px_and_the_design_table_fits(
    page: _ReportPage, com: tuple[Path, mindshift.RunAnalysis, str]
) -> None:
    run_dir, _, _ = com
    page.load(run_dir / "analysis" / "report.html", 1280)
    layout: dict[str, Any] = json.loads(
        page.evaluate(
            """JSON.stringify({
              page: document.documentElement.scrollWidth,
              window: window.innerWidth,
              tables: [...document.querySelectorAll('table')].map(table => {
                const box = table.parentElement;
                return {section: table.closest('body') && [...document.querySelectorAll('h2')]
                          .filter(h => h.compareDocumentPosition(table) & 4).pop().textContent,
                        overflow: getComputedStyle(box).overflowX,
                        wide: box.scrollWidth > box.clientWidth,
                        right: box.getBoundingClientRect().right};
              })})"""
        )
    )
    assert layout["page"] <= layout["window"] == 1280
    for table in layout["tables"]:
        # A table wider than the page scrolls in its own box; the box itself fits.
        assert table["right"] <= 1280
        assert not table["wide"] or table["overflow"] == "auto", table
    design = [t for t in layout["tables"] if t["section"] in ("1. Key results", "2. Design")]
    assert len(design) == 2 and not any(t["wide"] for t in design)


def test_the_bayes_extra_install_command_follows_the_installation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    python = shlex.quote(sys.executable)
    # This checkout: its pyproject.toml declares the extra the command installs.
    checkout = extras._checkout()
    assert checkout is not None
    project = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "mindshift"
    assert "pymc" in " ".join(project["project"]["optional-dependencies"]["bayes"])

    class Installed:
        def __init__(self, direct_url: str | None) -> None:
            self.direct_url = direct_url

        def read_text(self, name: str) -> str | None:
            return self.direct_url if name == "direct_url.json" else None

    def installed(direct_url: str | None) -> None:
        monkeypatch.setattr(metadata, "distribution", lambda name: Installed(direct_url))

    source = tmp_path / "my src"
    installed(json.dumps({"url": source.as_uri(), "dir_info": {"editable": True}}))
    assert install_command("bayes") == f"{python} -m pip install -e '{source}[bayes]'"
    installed(json.dumps({"url": source.as_uri(), "dir_info": {}}))
    assert bayes_install_command() == f"{python} -m pip install '{source}[bayes]'"
    # From an index: the distribution's name; from a checkout not installed: the checkout.
    installed(None)
    monkeypatch.setattr(extras, "_checkout", lambda: None)
    assert bayes_install_command() == f"{python} -m pip install 'mindshift[bayes]'"
    monkeypatch.setattr(extras, "_checkout", lambda: checkout)

    def missing(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    assert bayes_install_command() == f"{python} -m pip install -e '{checkout}[bayes]'"
