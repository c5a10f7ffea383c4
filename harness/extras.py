"""The command that adds one of mindshift's optional extras (`local`: torch and transformers;
`bayes`: PyMC; `anthropic`) to this environment, for the one-line errors that name it.

mindshift is not published on PyPI, so `pip install 'mindshift[bayes]'` works only where pip
finds the installed distribution to extend, and only with the pip of the environment that
runs mindshift. The command is therefore built from how this copy was installed (its
`direct_url.json`, PEP 610) and names this interpreter's pip:

- installed from a directory (a checkout, `pip install .` or `-e .`): that directory with the
  extra, editable again when it was (`python -m pip install -e '/src/mindshift[bayes]'`);
- otherwise, running from a source checkout (on PYTHONPATH, or beside its own build
  metadata): the checkout, editable;
- otherwise (installed from an index or an archive): `python -m pip install 'mindshift[bayes]'`.
"""

from __future__ import annotations

import json
import shlex
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

DISTRIBUTION = "mindshift"


def _checkout() -> Path | None:
    """The source checkout this module runs from (the folder of mindshift's pyproject.toml)."""
    for folder in Path(__file__).resolve().parents:
        project = folder / "pyproject.toml"
        if project.is_file() and f'name = "{DISTRIBUTION}"' in project.read_text("utf-8"):
            return folder
    return None


def _installed_from() -> tuple[Path, bool] | None:
    """(source directory, editable) when the installed distribution came from a local
    directory; None when it came from an index or an archive, or is not installed."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        origin = json.loads(text)
    except ValueError:
        return None
    url = urlparse(str(origin.get("url", "")))
    dir_info = origin.get("dir_info")
    if url.scheme != "file" or not isinstance(dir_info, dict):
        return None
    return Path(unquote(url.path)), bool(dir_info.get("editable", False))


def install_command(extra: str) -> str:
    """The shell command that installs mindshift's optional `extra` into the environment of
    the running interpreter (see the module docstring)."""
    pip = f"{shlex.quote(sys.executable)} -m pip install"
    source = _installed_from()
    if source is not None:
        folder, editable = source
        return f"{pip} {'-e ' if editable else ''}{shlex.quote(f'{folder}[{extra}]')}"
    checkout = _checkout()
    if checkout is not None:
        return f"{pip} -e {shlex.quote(f'{checkout}[{extra}]')}"
    return f"{pip} {shlex.quote(f'{DISTRIBUTION}[{extra}]')}"
