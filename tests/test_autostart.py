"""`semfs enable` / `semfs disable`: a systemd user unit that mounts at login (issue 21, item 5).

The unit's text, and what the commands ask of systemctl (a stand-in on the PATH that records its
arguments), run everywhere; the real user manager only where one answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from semfs.cli import cli
from semfs.core import autostart

from helpers import wait_for

FAKE = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$2" = show-environment ] && [ -n "{fail}" ]; then
    echo "Failed to connect to bus: No medium found" >&2
    exit 1
fi
exit 0
"""


@pytest.fixture
def fake_systemctl(tmp_path, monkeypatch):
    """(calls log, config dir) with a systemctl stand-in first on the PATH."""

    def make(fail: bool = False) -> Path:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        log = tmp_path / "calls.log"
        exe = bin_dir / "systemctl"
        exe.write_text(FAKE.format(log=log, fail="yes" if fail else ""))
        exe.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        return log

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return make


def test_the_unit_mounts_in_the_foreground_and_restarts_a_dead_daemon(tmp_path):
    text = autostart.unit_text("/usr/bin/python3", Path("/data/my notes"), Path("/mnt/100% notes"), ["--no-llm"])
    exec_start = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    assert exec_start == (
        'ExecStart="/usr/bin/python3" "-m" "semfs" "mount" "--foreground" "--no-llm" '
        '"/data/my notes" "/mnt/100%% notes"'
    )
    assert "Restart=on-failure" in text and "WantedBy=default.target" in text and "KillSignal=SIGTERM" in text


def test_enable_writes_starts_and_disable_removes(tmp_path, fake_systemctl):
    log = fake_systemctl()
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    mnt.mkdir()
    r = CliRunner().invoke(cli, ["enable", str(backing), str(mnt), "--no-llm", "--state-dir", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    unit = tmp_path / "config" / "systemd" / "user" / autostart.unit_name(mnt.absolute())
    text = unit.read_text()
    assert f'"--no-llm" "--state-dir" "{tmp_path / "s"}" "{backing}" "{mnt}"' in text
    assert f'"{sys.executable}" "-m" "semfs" "mount" "--foreground"' in text
    name = unit.name
    assert log.read_text().splitlines() == [
        "--user show-environment",
        "--user daemon-reload",
        f"--user enable --now {name}",
    ]
    r = CliRunner().invoke(cli, ["disable", str(mnt)])
    assert r.exit_code == 0, r.output
    assert not unit.exists()
    assert log.read_text().splitlines()[3:] == [f"--user disable --now {name}", "--user daemon-reload"]
    r = CliRunner().invoke(cli, ["disable", str(mnt)])
    assert r.exit_code == 1 and "no semfs unit for" in r.output


def test_enable_without_a_user_manager_writes_nothing(tmp_path, fake_systemctl):
    fake_systemctl(fail=True)
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    mnt.mkdir()
    r = CliRunner().invoke(cli, ["enable", str(backing), str(mnt)])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        "Error: systemctl --user show-environment: Failed to connect to bus: No medium found"
    ]
    assert not (tmp_path / "config").exists()


def test_enable_checks_the_mount_options_first(tmp_path, fake_systemctl):
    log = fake_systemctl()
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    mnt.mkdir()
    for opts, needle in ((["--no-such-option"], "No such option"), (["--foreground"], "--foreground is the unit's")):
        r = CliRunner().invoke(cli, ["enable", str(backing), str(mnt), *opts])
        assert r.exit_code in (1, 2) and needle in r.output, r.output
    r = CliRunner().invoke(cli, ["enable", str(tmp_path / "nope"), str(mnt)])
    assert r.exit_code == 1 and "is not a folder" in r.output
    assert not log.exists() and not (tmp_path / "config").exists()


def _user_manager() -> str:
    exe = shutil.which("systemctl")
    if exe is None:
        return "systemctl is not installed"
    res = subprocess.run([exe, "--user", "show-environment"], capture_output=True, text=True)
    return "" if res.returncode == 0 else (res.stderr.strip() or f"exit {res.returncode}")


def test_real_user_manager_mounts_and_unmounts(tmp_path):
    why = _user_manager()
    if why:
        pytest.skip(f"no systemd user manager here ({why}): the unit's text and calls are tested above")
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    mnt.mkdir()
    (backing / "a.txt").write_text("mounted at login")
    r = CliRunner().invoke(cli, ["enable", str(backing), str(mnt), "--no-llm", "--no-index"])
    assert r.exit_code == 0, r.output
    try:
        wait_for(lambda: os.path.ismount(mnt), timeout=60, what="the unit's mount")
        assert (mnt / "a.txt").read_text() == "mounted at login"
    finally:
        r = CliRunner().invoke(cli, ["disable", str(mnt)])
    assert r.exit_code == 0, r.output
    wait_for(lambda: not os.path.ismount(mnt), timeout=60, what="the unmount on stop")
