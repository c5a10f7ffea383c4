"""The one error of importing and exporting: bad input the user fixes (exit 2, one line)."""

from __future__ import annotations

from mindshift.harness.errors import UserError


class TransferError(UserError):
    """A file that cannot be imported, or a run directory that cannot be exported or written:
    its message is one line naming the file and, for a bad cell, the row and the column."""
