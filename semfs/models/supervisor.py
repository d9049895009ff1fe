"""Model workers, supervised by the daemon: a model that dies never takes the mount with it.

:class:`Supervised` runs one worker process (:mod:`semfs.models.worker`)
as a child of the daemon, over a pair of pipes. It starts loading the
model at once, and it watches:

- the worker's exit, by any signal (SIGILL from an instruction the CPU
  will not run, SIGKILL from the OOM killer) or status;
- the load deadline, and each request's own deadline: a worker that
  overruns one is killed, so a hung generation cannot delay the next
  request;
- failures in a row: each is followed by a restart after a back-off that
  doubles (1, 2, 4 s ...); after ``max_failures`` the worker stays off
  until the next mount, and its status says why in words.

Every call is bounded by the caller's ``timeout``. A call to a worker
that is not ready (loading, restarting, off) fails at once with
:class:`~semfs.errors.ModelUnavailable`: search then answers from BM25,
a summary from the file's first sentences, and the indexer keeps the
work for later.

:mod:`semfs.models.remote` gives the rest of semfs the interfaces of the
in-process models over it.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import ModelUnavailable
from .channel import Channel, ChannelClosed
from .worker import EXIT_LOAD_FAILED

log = logging.getLogger(__name__)

_TICK = 0.05  # how often the supervisor looks at deadlines


def exit_reason(returncode: int, load_error: Optional[str] = None) -> str:
    """A worker's end in words: 'illegal instruction, SIGILL', 'exited with status 1' ..."""
    if returncode < 0:
        sig = signal.Signals(-returncode)
        words = (signal.strsignal(sig) or sig.name).lower()
        if sig == signal.SIGKILL:
            words = "killed (out of memory, or by someone)"
        return f"{words}, {sig.name}"
    if returncode == EXIT_LOAD_FAILED:
        return f"cannot load its model: {load_error or 'see semfs.log'}"
    return f"exited with status {returncode}"


@dataclass
class _Call:
    deadline: float  # monotonic time
    seconds: float  # how long it was given
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: Optional[str] = None


class Supervised:
    """One model worker process: loading at once, restarted when it fails, off after repeated failures."""

    def __init__(
        self,
        kind: str,
        config: dict,
        on_status: Callable[[str], None] = lambda text: None,
        load_deadline: float = 180.0,
        max_failures: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.kind = kind
        self._config = dict(config, kind=kind)
        self._on_status = on_status
        self.load_deadline = load_deadline
        self.max_failures = max_failures
        self.backoff = backoff
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._state = "starting"
        self._proc: Optional[subprocess.Popen] = None
        self._chan: Optional[Channel] = None
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._thread: Optional[threading.Thread] = None
        self.failures_in_a_row = 0
        self.about: dict = {}  # what the worker said of its model when ready (the embedder: its backend)
        self.failures: list[str] = []  # the last failures' reasons, oldest first
        self.failure_count = 0
        self.starts = 0

    # -- the caller's side ---------------------------------------------------

    @property
    def pid(self) -> Optional[int]:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def state(self) -> str:
        return self._state

    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def call(self, method: str, args: dict, timeout: float, deadline: Optional[float] = None) -> Any:
        """The worker's answer; waits at most ``timeout`` s.

        A request still running ``deadline`` s after it was sent (default:
        ``timeout``) gets its worker killed and restarted.
        """
        with self._lock:
            if not self._ready.is_set() or self._chan is None:
                raise ModelUnavailable(f"{self.kind}: {self.describe()}")
            rid = next(self._ids)
            given = deadline or timeout
            call = self._calls[rid] = _Call(time.monotonic() + given, given)
            chan = self._chan
        try:
            chan.send((rid, method, args))
        except ChannelClosed:
            with self._lock:
                self._calls.pop(rid, None)
            raise ModelUnavailable(f"{self.kind}: the worker went away") from None
        if not call.done.wait(timeout):
            raise ModelUnavailable(f"{self.kind}: no answer within {timeout:.1f} s")
        if call.error is not None:
            raise ModelUnavailable(f"{self.kind}: {call.error}")
        return call.value

    def describe(self) -> str:
        """The worker's state in words, for ``semfs status`` and error messages."""
        n = self.failure_count
        history = ""
        if n and self._state != "off":
            history = f"; {n} failure{'s' if n > 1 else ''} so far, last: {self.failures[-1]}"
        if self._state == "ready":
            extra = "".join(f", {v}" for v in self.about.values())
            return f"ready (pid {self.pid}{extra}){history}"
        if self._state == "loading":
            return f"loading (pid {self.pid}){history}"
        if self._state == "restarting":
            n, most = self.failures_in_a_row, self.max_failures
            return f"restarting after {self.failures[-1]} ({n} of {most} failures in a row)"
        if self._state == "off":
            return f"off after {self.failures_in_a_row} failures in a row ({self.failures[-1]}); remount to retry"
        return self._state

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name=f"semfs-{self.kind}-supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._ready.clear()
        proc, chan = self._proc, self._chan
        if chan is not None:
            chan.close()  # the worker ends itself at the end of its input
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout)
        self._set_state("stopped")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the worker (tests, and the deadline watch)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, sig)

    # -- the supervisor thread -------------------------------------------------

    def _set_state(self, state: str) -> None:
        self._state = state
        try:
            self._on_status(self.describe())
        except Exception:
            log.exception("could not record the %s worker's state", self.kind)

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            reason = self._run_once()
            if self._stopping.is_set():
                break
            self.failures_in_a_row += 1
            self.failures.append(reason)
            del self.failures[:-20]  # (the count and the last ones are what status shows)
            self.failure_count += 1
            log.warning("%s worker failed: %s", self.kind, reason)
            if self.failures_in_a_row >= self.max_failures:
                self._set_state("off")
                log.error("%s worker: %s", self.kind, self.describe())
                return
            self._set_state("restarting")
            self._stopping.wait(self.backoff * 2 ** (self.failures_in_a_row - 1))

    def _spawn(self) -> subprocess.Popen:
        # A fresh interpreter, not a fork: the daemon holds FUSE threads and locks.
        return subprocess.Popen(
            [sys.executable, "-m", "semfs.models.worker", self.kind],  # (the kind is for ps; the config says it)
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the daemon's log
            close_fds=True,
        )

    def _run_once(self) -> str:
        """Run one worker process until it ends; returns why it ended."""
        self.starts += 1
        try:
            proc = self._spawn()
        except OSError as e:
            return f"cannot start: {e.strerror}"
        assert proc.stdout is not None and proc.stdin is not None
        chan = Channel(proc.stdout, proc.stdin)  # type: ignore[arg-type]  # (binary pipes: no text= given)
        with self._lock:
            self._proc, self._chan = proc, chan
        self._set_state("loading")
        killed_for: list[str] = []
        load_error: list[str] = []
        reader = threading.Thread(
            target=self._read, args=(chan, load_error), name=f"semfs-{self.kind}-read", daemon=True
        )
        try:
            chan.send(self._config)
        except ChannelClosed:
            pass
        reader.start()
        started = time.monotonic()
        while proc.poll() is None:
            if self._stopping.wait(_TICK):
                killed_for.append("stopped")  # stop() closed its input; it ends, or stop() kills it
                break
            now = time.monotonic()
            if not self._ready.is_set() and not load_error and now - started > self.load_deadline:
                killed_for.append(f"killed: did not load within {self.load_deadline:.0f} s")
            with self._lock:
                late = [c for c in self._calls.values() if c.deadline < now]
            if late and not killed_for:
                killed_for.append(f"killed: a request overran its deadline of {late[0].seconds:.0f} s")
            if killed_for:
                proc.kill()
                proc.wait()
                break
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5.0)
        with self._lock:
            self._ready.clear()
            self._chan = None
            calls, self._calls = self._calls, {}
        chan.close()
        reason = killed_for[0] if killed_for else exit_reason(proc.returncode, load_error[0] if load_error else None)
        for c in calls.values():
            c.error = reason
            c.done.set()
        return reason

    def _read(self, chan: Channel, load_error: list[str]) -> None:
        try:
            first = chan.recv()
            if "failed" in first:
                load_error.append(first["failed"])
                return
            self.about = {k: v for k, v in first["ready"].items() if k != "pid"}
            with self._lock:
                self._ready.set()
            self._set_state("ready")
            log.info("%s worker ready (pid %s) %s", self.kind, first["ready"].get("pid"), self.about or "")
            while True:
                rid, status, value = chan.recv()
                with self._lock:
                    call = self._calls.pop(rid, None)
                self.failures_in_a_row = 0  # it answered: alive and well
                if call is None:
                    continue  # its caller gave up waiting; the answer is dropped
                if status == "ok":
                    call.value = value
                else:
                    call.error = value
                call.done.set()
        except ChannelClosed:
            return
