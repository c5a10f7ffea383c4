"""Under CI=true a test skipped for a missing dependency fails (tests/conftest.py's hooks).

Each case runs a small test file in a pytest session of its own with this repository's
conftest as a plugin, with and without CI set.
"""

from __future__ import annotations

import pytest

from tests import conftest

pytest_plugins = ("pytester",)

MISSING_MODULE = """
import pytest

def test_needs_a_package():
    pytest.importorskip("mindshift_no_such_package")
"""

MISSING_IN_FIXTURE = """
import pytest

@pytest.fixture(scope="module")
def model():
    pytest.skip("the embedded model is not installed")

def test_with_model(model):
    pass
"""

OPT_IN = """
import pytest

@pytest.mark.live_api
def test_paid_api():
    pytest.skip("OPENAI_API_KEY is not set")

def test_plain():
    pass
"""

MODULE_LEVEL = """
import pytest
pytest.importorskip("mindshift_no_such_package")

def test_never_collected():
    pass
"""

XFAIL = """
import pytest

@pytest.mark.xfail(reason="known")
def test_known():
    assert False
"""


def _run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, ci: str | None
) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_case=source)
    pytester.makeini("[pytest]\nmarkers =\n    live_api: paid\n")
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[conftest])


@pytest.mark.parametrize(
    ("source", "outcome", "reason"),
    [
        (MISSING_MODULE, {"failed": 1}, "*could not import 'mindshift_no_such_package'*"),
        # A skip in a fixture is reported at setup: an error.
        (MISSING_IN_FIXTURE, {"errors": 1}, "*the embedded model is not installed*"),
    ],
)
def test_a_dependency_skip_fails_under_ci(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    outcome: dict[str, int],
    reason: str,
) -> None:
    result = _run(pytester, monkeypatch, source, "true")
    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines([f"*skipped under CI=true: {reason}"])


@pytest.mark.parametrize("source", [MISSING_MODULE, MISSING_IN_FIXTURE])
@pytest.mark.parametrize("ci", [None, "", "false"])
def test_outside_ci_a_dependency_skip_stays_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, ci: str | None
) -> None:
    _run(pytester, monkeypatch, source, ci).assert_outcomes(skipped=1)


def test_a_module_skipped_at_import_fails_collection_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, MODULE_LEVEL, "1")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*skipped under CI=true*mindshift_no_such_package*"])
    _run(pytester, monkeypatch, MODULE_LEVEL, None).assert_outcomes(skipped=1)


def test_opt_in_service_tests_may_skip_and_xfail_is_untouched(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(pytester, monkeypatch, OPT_IN, "true").assert_outcomes(passed=1, skipped=1)
    pytester.path.joinpath("test_case.py").unlink()
    _run(pytester, monkeypatch, XFAIL, "true").assert_outcomes(xfailed=1)
