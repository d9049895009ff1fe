"""Exceptions raised by the semfs library.

Each carries a one-line, user-facing message. The CLI turns them into
``click.ClickException``; nothing below ``semfs/fs`` knows about click.
"""


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
