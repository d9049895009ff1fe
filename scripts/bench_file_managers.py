"""File managers on the demo mount, under Xvfb: how many searches and summaries each visit costs.

Usage: ``.venv/bin/python scripts/bench_file_managers.py --shots DIR`` (``make bench-fm``
installs Xvfb, xdotool, ImageMagick, Thunar and PCManFM). Run as the user who mounts;
the script copies demo/ to a temporary folder, mounts it with ``--no-llm`` (the extractive
summary is what a first visit shows), saves one query, then, for each file manager found,
opens each view in a new window, waits, takes a screenshot of the screen into DIR and
closes the window. Each search and each summary the daemon makes is a line in its log;
the table counts the lines a visit added. Last, a start-up with GTK's recent files
pointing into the mount (results and summaries opened before a remount) is counted the
same way, after a remount.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEMFS = [sys.executable, "-m", "semfs"]
VIEWS = [
    "",
    "query",
    "query/budget notes",
    "query/how do I make bread",
    "query/feeding a sourdough starter",  # a prompt not asked before: one search
    "similar",
    "similar/recipes",
    "summary",
    "summary/recipes",
    "history",
    "topics",
    "topics/restic backup disk",  # (MiniLM's name for the demo's backup files; seeded, so the same each run)
]
MANAGERS = {"thunar": ["thunar"], "pcmanfm": ["pcmanfm", "--new-win"], "nautilus": ["nautilus", "--new-window"]}


def counts(log: Path) -> tuple[int, int]:
    text = log.read_text(errors="replace")
    return text.count("semfs: search "), text.count("semfs: summary of ")


def settle(log: Path, quiet: float = 2.0, longest: float = 30.0) -> None:
    """Until the log has not grown for ``quiet`` s (the index's own work done)."""
    started, size, since = time.monotonic(), -1, time.monotonic()
    while time.monotonic() - started < longest:
        now = log.stat().st_size
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)


def close(manager: str, proc: subprocess.Popen, env: dict) -> None:
    if manager == "thunar":
        subprocess.run(["thunar", "-q"], env=env, capture_output=True)
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    time.sleep(0.5)


def visit(manager: str, path: str, env: dict, log: Path, shot: Path, wait: float, keys: str = "") -> tuple[int, int]:
    """Open ``path`` in a new window of ``manager``; ``keys``: pressed (xdotool) once it shows."""
    before = counts(log)
    proc = subprocess.Popen([*MANAGERS[manager], path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(wait)
    if keys:  # no window manager: focus the window by hand first
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", manager], env=env,
                               capture_output=True, text=True).stdout.split()  # fmt: skip
        if found:
            subprocess.run(["xdotool", "windowfocus", "--sync", found[0]], env=env, capture_output=True)
            subprocess.run(["xdotool", "key", "--window", found[0], keys], env=env, capture_output=True)
        time.sleep(wait)
    subprocess.run(["import", "-window", "root", str(shot)], env=env, capture_output=True)
    close(manager, proc, env)
    after = counts(log)
    return after[0] - before[0], after[1] - before[1]


def mount(backing: Path, mnt: Path, log: Path, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*SEMFS, "mount", "--foreground", "--no-llm", str(backing), str(mnt)],
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=open(log, "ab"),
    )
    deadline = time.monotonic() + 30
    while not os.path.ismount(mnt):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("semfs mount did not come up; see " + str(log))
        time.sleep(0.1)
    return proc


def unmount(mnt: Path, proc: subprocess.Popen) -> None:
    subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    proc.wait(30)


def recent_files(home: Path, paths: list[Path]) -> None:
    """GTK's recently-used.xbel, with ``paths`` as opened lately."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    items = "".join(
        f'<bookmark href="{p.as_uri()}" added="{stamp}" modified="{stamp}" visited="{stamp}">'
        '<info><metadata owner="http://freedesktop.org"><mime:mime-type type="text/plain"/>'
        '<bookmark:applications><bookmark:application name="mousepad" exec="&apos;mousepad %u&apos;" '
        f'modified="{stamp}" count="1"/></bookmark:applications></metadata></info></bookmark>'
        for p in paths
    )
    xbel = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<xbel version="1.0" '
        'xmlns:bookmark="http://www.freedesktop.org/standards/desktop-bookmarks" '
        f'xmlns:mime="http://www.freedesktop.org/standards/shared-mime-info">{items}</xbel>\n'
    )
    (home / ".local" / "share").mkdir(parents=True, exist_ok=True)
    (home / ".local" / "share" / "recently-used.xbel").write_text(xbel)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=Path, required=True, help="folder for the screenshots")
    ap.add_argument("--wait", type=float, default=4.0, help="seconds a window stays open")
    args = ap.parse_args()
    managers = [m for m in MANAGERS if shutil.which(m)]
    if not managers or not shutil.which("Xvfb"):
        print("needs Xvfb and Thunar, PCManFM or Nautilus: make bench-fm installs them", file=sys.stderr)
        return 1
    args.shots.mkdir(parents=True, exist_ok=True)
    top = Path(tempfile.mkdtemp(prefix="semfs-fm-"))
    home, backing, mnt, log = top / "home", top / "demo", top / "mnt", top / "mount.log"
    home.mkdir()
    mnt.mkdir()
    shutil.copytree(ROOT / "demo", backing)
    env = {k: v for k, v in os.environ.items() if k not in ("SEMFS_EMBEDDER", "SEMFS_LLM")}
    env.update(HOME=str(home), SEMFS_HOME=str(home / "semfs"), DISPLAY=":57", XDG_CONFIG_HOME=str(home / ".config"))
    xvfb = subprocess.Popen(
        ["Xvfb", ":57", "-screen", "0", "1280x800x24", "-nolisten", "tcp"], stderr=subprocess.DEVNULL
    )
    bus = subprocess.run(["dbus-launch", "--sh-syntax"], env=env, capture_output=True, text=True).stdout
    bus_pid = None
    for line in bus.splitlines():
        if line.startswith("DBUS_SESSION_BUS_ADDRESS="):
            env["DBUS_SESSION_BUS_ADDRESS"] = line.split("=", 1)[1].rstrip(";").strip("'")
        if line.startswith("DBUS_SESSION_BUS_PID="):
            bus_pid = int(line.split("=", 1)[1].rstrip(";"))
    time.sleep(1)
    daemon = mount(backing, mnt, log, env)
    rows = []
    try:
        for _ in range(300):
            out = subprocess.run([*SEMFS, "status", str(mnt)], env=env, capture_output=True, text=True).stdout
            if "31 of 31 files embedded" in out:
                break
            time.sleep(0.2)
        for _ in range(100):  # the topics thread groups the files once their meaning is in
            if len(os.listdir(mnt / "topics")) > 1:
                break
            time.sleep(0.2)
        os.mkdir(mnt / "query" / "budget notes")
        os.listdir(mnt / "query" / "how do I make bread")
        bread = mnt / "query" / "how do I make bread"
        opened = [bread / next(n for n in sorted(os.listdir(bread)) if not n.startswith("."))]  # a result, not .matches
        opened.append(mnt / "summary" / "recipes" / "sourdough.md")
        settle(log)
        for manager in managers:
            for view in VIEWS:
                shot = args.shots / f"{manager}-{view.replace('/', '_') or 'root'}.png"
                s, m = visit(manager, str(mnt / view), env, log, shot, args.wait)
                rows.append((manager, view or "(mount root)", s, m, shot.name))
            # Properties of the mount root, with its deep count of every folder below
            shot = args.shots / f"{manager}-properties-root.png"
            s, m = visit(manager, str(mnt), env, log, shot, args.wait, keys="alt+Return")
            rows.append((manager, "Properties of the mount root (Alt+Enter)", s, m, shot.name))
        unmount(mnt, daemon)
        recent_files(home, opened)
        daemon = mount(backing, mnt, log, env)
        settle(log)
        for manager in managers:
            shot = args.shots / f"{manager}-startup-recent.png"
            where = "recent:///" if manager in ("thunar", "nautilus") else str(home)  # PCManFM has no recent view
            s, m = visit(manager, where, env, log, shot, args.wait)
            rows.append((manager, "start-up, recent files in the mount", s, m, shot.name))
    finally:
        unmount(mnt, daemon)
        if bus_pid:
            os.kill(bus_pid, 15)
        xvfb.terminate()
        xvfb.wait()
    print("| file manager | view | searches | summaries | screenshot |")
    print("|---|---|---:|---:|---|")
    for manager, view, s, m, shot in rows:
        print(f"| {manager} | {view} | {s} | {m} | {shot} |")
    shutil.copy(log, args.shots / "mount.log")  # which searches, for a count that surprises
    shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
