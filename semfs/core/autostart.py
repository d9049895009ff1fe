"""Mounted at login: a systemd user unit per mountpoint, as rclone and sshfs users do it.

``semfs enable BACKING MNT [mount options]`` writes
``~/.config/systemd/user/semfs-<hash of MNT>.service``, which runs
``semfs mount --foreground`` with those options, and enables and starts it
with ``systemctl --user``. systemd stops the service with SIGTERM when the
user's session manager stops (logout, unless lingering is on), and libfuse
unmounts cleanly on SIGTERM; ``Restart=on-failure`` starts a daemon that
died again, and ``semfs mount`` clears the dead mount it left first.
``semfs disable MNT`` stops, disables and removes the unit.

Nothing is written when ``systemctl --user`` cannot reach a user manager
(a container, an ssh session without one): the error says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from ..errors import InvalidRequest, NotFound, SemfsError


class AutostartError(SemfsError):
    """systemd's user manager is not there, or refused."""


def unit_dir() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "systemd" / "user"


def unit_name(mountpoint: Path) -> str:
    return f"semfs-{hashlib.sha256(str(mountpoint).encode()).hexdigest()[:12]}.service"


def _quote(arg: str) -> str:
    # systemd's own quoting: double quotes, backslash escapes; % and $ are specifiers/variables
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$") + '"'


def unit_text(python: str, backing: Path, mountpoint: Path, options: Sequence[str]) -> str:
    args = [python, "-m", "semfs", "mount", "--foreground", *options, str(backing), str(mountpoint)]
    return f"""\
# Written by `semfs enable`; removed by `semfs disable {mountpoint}`.
[Unit]
Description=semfs: {backing} at {mountpoint}

[Service]
Type=simple
ExecStart={" ".join(_quote(a) for a in args)}
Restart=on-failure
RestartSec=2
# SIGTERM: libfuse unmounts before the daemon exits
KillSignal=SIGTERM
TimeoutStopSec=30

[Install]
WantedBy=default.target
"""


def _systemctl(*args: str) -> str:
    exe = shutil.which("systemctl")
    if exe is None:
        raise AutostartError("semfs enable needs systemd: systemctl is not installed")
    res = subprocess.run([exe, "--user", *args], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        why = (res.stderr.strip() or res.stdout.strip() or f"exit {res.returncode}").splitlines()[0]
        raise AutostartError(f"systemctl --user {' '.join(args)}: {why}")
    return res.stdout


def enable(backing: Path, mountpoint: Path, options: Sequence[str]) -> Path:
    """Write, enable and start the unit that mounts ``backing`` at ``mountpoint``; its path."""
    backing, mountpoint = Path(backing).resolve(), Path(mountpoint).absolute()
    if not backing.is_dir():
        raise InvalidRequest(f"{backing} is not a folder")
    if not mountpoint.is_dir():
        raise InvalidRequest(f"{mountpoint} is not a folder (make it first)")
    if "--foreground" in options or "-f" in options:
        raise InvalidRequest("--foreground is the unit's own: leave it out")
    _systemctl("show-environment")  # a user manager to talk to, before anything is written
    path = unit_dir() / unit_name(mountpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(unit_text(sys.executable, backing, mountpoint, options))
    os.replace(tmp, path)
    _systemctl("daemon-reload")
    _systemctl("enable", "--now", path.name)
    return path


def disable(mountpoint: Path) -> Path:
    """Stop, disable and remove the unit of ``mountpoint``; its (former) path."""
    path = unit_dir() / unit_name(Path(mountpoint).absolute())
    if not path.exists():
        raise NotFound(f"no semfs unit for {Path(mountpoint).absolute()} in {path.parent}")
    _systemctl("disable", "--now", path.name)
    path.unlink()
    _systemctl("daemon-reload")
    return path
