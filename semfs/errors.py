"""Exceptions raised by the semfs library.

Each carries a one-line, user-facing message. The CLI turns them into
``click.ClickException`` and the MCP server into tool errors, both by
:func:`message`; nothing below ``semfs/fs`` knows about click.
"""

from __future__ import annotations

import sqlite3
from typing import Optional


class SemfsError(Exception):
    """Base class: something the user can act on, described in one line."""


class MountError(SemfsError):
    """A mount or unmount request that cannot be carried out."""


class FuseUnavailable(MountError):
    """The kernel device or the userspace FUSE library is missing."""


class ModelUnavailable(SemfsError):
    """A model cannot answer now: loading, restarting after a crash, off, or over its deadline."""


class InvalidRequest(SemfsError):
    """What was asked cannot be: a bad name, a bad number, a path that is not what it must be."""


class NotFound(SemfsError):
    """What was asked for is not there: no index, no history, no mount holding that path."""


class Busy(SemfsError):
    """Someone else holds it now: a daemon keeps the index, a process has the file open for writing."""


def message(e: BaseException) -> Optional[str]:
    """The one-line message of an error the user can act on; None for anything else (a bug)."""
    if isinstance(e, SemfsError):
        return str(e)
    if isinstance(e, PermissionError):
        # another user's state dir (0700), or a file this user may not read
        where = f" {e.filename}" if e.filename else ""
        return f"permission denied:{where} (a mount's state belongs to the user who mounted it)"
    if isinstance(e, (sqlite3.ProgrammingError, sqlite3.InterfaceError)):
        return None  # (a misuse of SQLite: a bug, not damage)
    if isinstance(e, sqlite3.OperationalError):
        return f"cannot use the index database: {e}"
    if isinstance(e, sqlite3.DatabaseError):  # (after OperationalError, a kind of it)
        return (
            f"the index database is damaged ({e}): a mount rebuilds it (when it starts, or when it meets the "
            "damage), and so does semfs index"
        )
    return None
