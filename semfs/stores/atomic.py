"""Files written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from .private import private_dir


@contextlib.contextmanager
def temp_output(directory: Path, prefix: str) -> Iterator[tuple[BinaryIO, str]]:
    """A temporary file in ``directory`` to write and then move into place.

    The caller fsyncs it and moves it with ``os.replace`` inside the block
    (in that order: a crash then leaves the old file or the whole new one);
    if the block fails, the temporary file is removed.
    """
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never half."""
    private_dir(path.parent)
    with temp_output(path.parent, f".{path.name}.") as (f, tmp):
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        os.replace(tmp, path)
