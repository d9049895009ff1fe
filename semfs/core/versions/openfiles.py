"""Which processes hold a file open for writing, read from /proc (as ``fuser`` does).

Caveat: without root, other users' processes cannot be looked into, so
they are not reported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def writers(paths: Iterable[Path]) -> dict[int, str]:
    """pid -> command name of every other process holding one of ``paths`` open for writing."""
    targets = {str(p) for p in paths}
    found: dict[int, str] = {}
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        fd_dir = f"/proc/{entry.name}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to look into
        for fd in fds:
            try:
                if os.readlink(f"{fd_dir}/{fd}") not in targets:
                    continue
                with open(f"/proc/{entry.name}/fdinfo/{fd}") as f:
                    flags = int(next(line for line in f if line.startswith("flags:")).split()[1], 8)
            except (OSError, StopIteration, ValueError):
                continue
            if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                try:
                    with open(f"/proc/{entry.name}/comm") as f:
                        found[int(entry.name)] = f.read().strip()
                except OSError:
                    found[int(entry.name)] = "?"
                break
    return found
