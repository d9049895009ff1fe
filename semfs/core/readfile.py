"""Reading users' files without leaving a trace on them."""

from __future__ import annotations

import os
from typing import BinaryIO


def open_noatime(path) -> BinaryIO:
    """Open ``path`` for reading without updating its access time.

    semfs reads files to index and version them; the user did not, so the
    backing folder's atimes must not change. O_NOATIME is allowed to the
    file's owner (and root); for others the open falls back to a plain one.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME | os.O_CLOEXEC)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    return os.fdopen(fd, "rb")
