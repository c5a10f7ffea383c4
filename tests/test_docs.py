"""Docs equal code: the README's `sim:bayes` table is the parameter model's, and every design
note the code cites lives in the repository (docs/), never outside it."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest

from paradigms.agent.sim_bayes import SimBayesParams

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
