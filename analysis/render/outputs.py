"""Writing an analysis to disk: summary.json, summary.md, tables/*.csv, figures, report.html.

The analysis directory is replaced as a whole, never file by file: everything is rendered in
memory, written into a fresh sibling directory (`.NAME.tmp-XXXX`, beside `NAME`), flushed to
disk, and then swapped in. On Linux the swap is one `renameat2(RENAME_EXCHANGE)`, so the name
`NAME` always points at a complete analysis, old or new; elsewhere (or on a file system that
cannot exchange) the old directory is renamed aside (`.NAME.old-XXXX`) and the new one renamed
in, and a kill between the two renames leaves the old analysis aside, which the next write puts
back. Either way a kill, a full disk or one unwritable file leaves the old analysis or the new
one — never a mix, never a `.partial` file — plus at most a leftover temporary directory that
the next write removes.

A reader who opens `NAME/summary.json` and later `NAME/report.html` by path may straddle a
swap (the first from the old analysis, the second from the new); a reader that needs one
consistent analysis opens the directory once and reads the files relative to it (`dir_fd`):
the open directory stays the analysis it was.

Writers are serialised by `output_lock`: an exclusive `flock` on `.NAME.lock` beside the
directory (in the run directory for `mindshift analyse`), released when the process ends,
however it ends. A second analysis of the same directory waits for the first.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd

from mindshift.analysis.errors import AnalysisInputError
from mindshift.analysis.measures.results import Results
from mindshift.analysis.render.context import ReportContext
from mindshift.analysis.render.figures import render_figures
from mindshift.analysis.render.report import render_report
from mindshift.analysis.render.summary import summary_document
from mindshift.analysis.render.summary_md import summary_markdown
from mindshift.analysis.render.tables import measure_tables

SUMMARY_FILE: Final = "summary.json"
REPORT_FILE: Final = "report.html"
MARKDOWN_FILE: Final = "summary.md"
TABLES_DIR: Final = "tables"
"""One CSV per measure (every model in each), beside the report."""
_OWN_FILES: Final = frozenset({SUMMARY_FILE, REPORT_FILE, MARKDOWN_FILE})
_OLD_PARTIAL: Final = ".partial"
"""The suffix of the per-file temporary files earlier versions could leave behind."""


def _csv(table: pd.DataFrame) -> bytes:
    return table.to_csv(index=False, float_format="%.6g").encode("utf-8")


def _tmp_prefix(out: Path) -> str:
    return f".{out.name}.tmp-"


def _old_prefix(out: Path) -> str:
    return f".{out.name}.old-"


def lock_path(out: Path) -> Path:
    """The lock file that serialises writers of the analysis directory `out`."""
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def output_lock(out: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock on writing `out` for the duration of the block.

    When another process holds it, `on_wait` (if given) is called once with a sentence
    saying so, and the call blocks until that process finishes (the lock is an `flock`: the
    kernel releases it when its holder exits, even after a kill, so a stale lock file never
    blocks anyone). Raises `AnalysisInputError` when the lock file cannot be created.
    """
    path = lock_path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise AnalysisInputError(_write_error(out, error)) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                holder = os.pread(handle, 32, 0).decode("ascii", "replace").strip()
                by = f" (process {holder})" if holder.isdigit() else ""
                on_wait(f"another analysis is writing {out}{by}; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        # The holder's pid, for the message above; informative only (the flock is the lock).
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(handle)  # releases the flock


def _write_error(out: Path, error: OSError) -> str:
    cause = error.strerror or str(error)
    where = f" ({error.filename})" if error.filename else ""
    return f"cannot write the analysis into {out}: {cause}{where}"


def _replaceable(out: Path, names: set[str]) -> None:
    """Refuse to replace `out` unless it is absent or holds nothing but an analysis.

    Replacing the directory as a whole deletes what it holds, so a directory with a file
    this code does not write (the user's own, or `--out` pointed at the wrong place) is
    refused, untouched.
    """
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise AnalysisInputError(f"cannot write the analysis into {out}: it is not a directory")

    def ours(entry: Path, top: bool) -> bool:
        name = entry.name.removesuffix(_OLD_PARTIAL)
        if not entry.is_file() or entry.is_symlink():
            return False
        if top:
            return name in names or name in _OWN_FILES or name.endswith(".png")
        return name.endswith(".csv")

    for entry in out.iterdir():
        if entry.name == TABLES_DIR and entry.is_dir() and not entry.is_symlink():
            foreign = next((e for e in entry.iterdir() if not ours(e, top=False)), None)
        else:
            foreign = None if ours(entry, top=True) else entry
        if foreign is not None:
            raise AnalysisInputError(
                f"{out} holds {foreign.name}, which is not part of an analysis: the analysis "
                "replaces the whole directory, so move that file or choose another directory"
            )


def _recover(out: Path) -> None:
    """Undo what a killed write left: put an old analysis moved aside back, drop temporaries.

    Runs under the lock, so no other writer's temporary directory is in flight.
    """
    parent = out.parent
    aside = sorted(parent.glob(_old_prefix(out) + "*"), key=lambda p: p.stat().st_mtime)
    if aside and not out.exists() and not out.is_symlink():
        # Killed between the fallback's two renames: the old analysis is complete, aside.
        aside.pop().rename(out)
    for leftover in [*aside, *parent.glob(_tmp_prefix(out) + "*")]:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty directory `parent/prefix<random>` (mode from the umask, unlike mkdtemp)."""
    while True:
        path = parent / (prefix + secrets.token_hex(4))
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path


def _fsync_dir(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    dirs = {root}
    for name, data in files.items():
        path = root / name
        if path.parent not in dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            dirs.add(path.parent)
        with path.open("wb") as handle:
            handle.write(data)
            handle.flush()
            # Durable before the swap makes it the analysis: a power cut must not leave a
            # complete-looking directory of empty files.
            os.fsync(handle.fileno())
    for directory in dirs:
        _fsync_dir(directory)


_AT_FDCWD: Final = -100
_RENAME_EXCHANGE: Final = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the directories `a` and `b` (Linux renameat2); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # the kernel or the file system cannot exchange: two renames instead
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(new: Path, out: Path) -> None:
    """Make the complete directory `new` the analysis `out`, and remove the old one."""
    if not out.exists():
        new.rename(out)
    elif _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # now the old analysis
    else:
        aside = _fresh_dir(out.parent, _old_prefix(out))
        # Renaming a directory onto an empty one replaces it (POSIX rename).
        out.rename(aside)
        try:
            new.rename(out)
        except BaseException:
            aside.rename(out)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    _fsync_dir(out.parent)


def replace_directory(out: Path, files: Mapping[str, bytes]) -> None:
    """Make `out` hold exactly `files` (relative name -> bytes), swapped in as a whole.

    Call under `output_lock(out)`. Raises `AnalysisInputError` (with `out` as it was) when
    `out` holds foreign files or cannot be written.
    """
    _replaceable(out, set(files))
    new: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _recover(out)
        new = _fresh_dir(out.parent, _tmp_prefix(out))
        _write_tree(new, files)
        _swap_in(new, out)
    except OSError as error:
        raise AnalysisInputError(_write_error(out, error)) from None
    finally:
        # On any failure (or an interrupt) the half-written directory goes; after a
        # successful swap it no longer exists under this name (or holds the old analysis,
        # already removed).
        if new is not None and new.exists():
            shutil.rmtree(new, ignore_errors=True)


def render_outputs(
    results: Results,
    *,
    title: str,
    facts: Mapping[str, str],
    extra: Mapping[str, pd.DataFrame] | None = None,
    context: ReportContext | None = None,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The summary and every output file's bytes (relative name -> bytes), in memory."""
    summary = summary_document(results)
    figures = render_figures(results)
    report = render_report(results, figures, title=title, facts=facts, context=context)
    outputs: dict[str, bytes] = {
        SUMMARY_FILE: (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode("utf-8"),
        MARKDOWN_FILE: summary_markdown(results, title).encode("utf-8"),
        **figures,
        **{name: _csv(table) for name, table in (extra or {}).items()},
        **{
            f"{TABLES_DIR}/{stem}.csv": _csv(table)
            for stem, table in measure_tables(results).items()
        },
        REPORT_FILE: report.encode("utf-8"),
    }
    return summary, outputs


def write_outputs(
    results: Results,
    out: Path,
    *,
    title: str,
    facts: Mapping[str, str],
    extra: Mapping[str, pd.DataFrame] | None = None,
    context: ReportContext | None = None,
) -> dict[str, Any]:
    """Write the analysis of `results` as the directory `out`; returns the summary.

    `extra` tables are written as CSV next to the report (file name -> table). The
    directory is replaced as a whole (see the module docstring); call under
    `output_lock(out)` when another process may write it too. Raises `AnalysisInputError`
    when `out` cannot be written (a read-only or full disk is the user's to fix: one line,
    not a traceback) or holds files that are not an analysis.
    """
    summary, outputs = render_outputs(
        results, title=title, facts=facts, extra=extra, context=context
    )
    replace_directory(out, outputs)
    return summary
