"""Model code out of the mount's process: supervised workers that crash, hang and come back.

Real processes throughout: workers are killed with real signals, a hang
is a test hook (``SEMFS_TEST_WORKER_HOOKS``) that sleeps in the worker,
and the tests about the models load the real MiniLM and gemma-3-270m.
"""

from __future__ import annotations

import concurrent.futures
import glob
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from semfs.cli import cli
from semfs.errors import ModelUnavailable
from semfs.models.llm import LLMNotYet, LLMUnavailable
from semfs.models.remote import RemoteLLM
from semfs.models.supervisor import Supervised

from helpers import start_mount, wait_for

MODEL_LIBS = ("libtorch", "libggml", "libllama")


def worker_pids(daemon_pid: int, kind: str) -> list[int]:
    """Pids of the daemon's children running a worker of ``kind`` (read from its status)."""
    pids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != daemon_pid:
                continue
            pid = int(stat.split("/")[2])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[-3:-1] == [b"semfs.models.worker", kind.encode()]:
                    pids.append(pid)
        except (OSError, IndexError, ValueError):
            continue
    return pids


def status(mnt: Path) -> str:
    return CliRunner().invoke(cli, ["status", str(mnt)]).output


def status_line(mnt: Path, key: str) -> str:
    for line in status(mnt).splitlines():
        if line.strip().startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def wait_restarted(mnt: Path, daemon_pid: int, kind: str, old: int, timeout: float = 120) -> int:
    """The pid of the worker that replaced ``old``, once its status says it is ready."""
    new: list[int] = []

    def back() -> bool:
        new[:] = [p for p in worker_pids(daemon_pid, kind) if p != old]
        key = "llm" if kind == "llm" else "embedder"
        return bool(new) and re.match(rf"ready \(pid {new[0]}[,)]", status_line(mnt, key)) is not None

    wait_for(back, timeout=timeout, what=f"the {kind} worker to restart")
    return new[0]


def hash_worker(**kw) -> Supervised:
    w = Supervised("embedder", {"name": "hash", "concurrency": 2}, backoff=0.2, **kw)
    w.start()
    assert w.wait_ready(30), w.describe()
    return w


# -- the supervisor, on a real worker process with the hashing embedder ------------------


def test_a_killed_worker_is_restarted_and_answers_again():
    states: list[str] = []
    w = hash_worker(on_status=states.append)
    try:
        assert w.call("embed", {"texts": ["a b"]}, timeout=10).shape == (1, 64)
        first = w.pid
        w.kill(signal.SIGILL)
        wait_for(lambda: w.pid not in (None, first) and w.ready(), what="restart")
        assert w.call("embed", {"texts": ["a b"]}, timeout=10).shape == (1, 64)
        assert any("illegal instruction, SIGILL" in s for s in states), states
        assert "1 failure so far, last: illegal instruction, SIGILL" in w.describe()
    finally:
        w.stop()
    assert w.pid is None


def test_repeated_failures_leave_the_worker_off_with_the_reason(monkeypatch):
    monkeypatch.setenv("SEMFS_TEST_WORKER_HOOKS", json.dumps({"embedder": {"crash_on_load": "SIGSEGV"}}))
    w = Supervised("embedder", {"name": "hash"}, backoff=0.1)
    w.start()
    try:
        wait_for(lambda: w.state == "off", what="worker off")
        assert w.describe() == "off after 3 failures in a row (segmentation fault, SIGSEGV); remount to retry"
        with pytest.raises(ModelUnavailable, match="off after 3"):
            w.call("embed", {"texts": ["x"]}, timeout=1)
    finally:
        w.stop()


def test_a_hung_request_is_killed_at_its_deadline_and_the_next_is_served(tmp_path, monkeypatch):
    hang = tmp_path / "hang"
    monkeypatch.setenv("SEMFS_TEST_WORKER_HOOKS", json.dumps({"embedder": {"hang_file": str(hang)}}))
    w = hash_worker()
    try:
        hang.touch()
        started = time.monotonic()
        with pytest.raises(ModelUnavailable, match="overran its deadline of 1 s"):
            w.call("embed", {"texts": ["x"]}, timeout=10, deadline=1.0)
        assert time.monotonic() - started < 3
        assert w.wait_ready(30)
        assert w.call("embed", {"texts": ["x"]}, timeout=10).shape == (1, 64)
    finally:
        w.stop()


def test_the_worker_ends_with_its_daemon(tmp_path):
    """A daemon killed by SIGKILL leaves no worker behind: the worker ends at the end of its input."""
    code = (
        "import sys, time\n"
        "from semfs.models.supervisor import Supervised\n"
        "w = Supervised('embedder', {'name': 'hash'}); w.start(); w.wait_ready(30)\n"
        "print(w.pid, flush=True); time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    wait_for(
        lambda: not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z",
        what="the orphaned worker to end",
    )


# -- the LLM's queue, with a stand-in worker (no process needed to count requests) -------


class SlowWorker:
    load_deadline = 1.0

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = threading.Event()

    def ready(self) -> bool:
        return True

    def describe(self) -> str:
        return "ready"

    def call(self, method, args, timeout, deadline=None):
        self.calls.append(args["prompt"])
        self.release.wait(10)
        return f"answer to {args['prompt']}"


def test_llm_queue_one_request_per_prompt_oldest_dropped():
    worker = SlowWorker()
    llm = RemoteLLM(worker, Path("m.gguf"), max_waiting=2)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            first = pool.submit(llm.complete_text, "p0", 10)
            wait_for(lambda: worker.calls == ["p0"], what="first request running")
            same = [pool.submit(llm.complete_text, "p0", 10) for _ in range(3)]  # joins the running one
            waiting = []
            for i in (1, 2, 3):
                waiting.append(pool.submit(llm.complete_text, f"p{i}", 10))
                time.sleep(0.1)  # in this order
            worker.release.set()
            assert first.result() == "answer to p0"
            assert [f.result() for f in same] == ["answer to p0"] * 3
            with pytest.raises(LLMUnavailable, match="dropped"):
                waiting[0].result()  # the oldest waiting
            assert [f.result() for f in waiting[1:]] == ["answer to p2", "answer to p3"]
        assert worker.calls == ["p0", "p2", "p3"]
    finally:
        llm.stop()


def test_llm_queue_drops_background_notes_first_and_serves_summaries_first():
    worker = SlowWorker()
    llm = RemoteLLM(worker, Path("m.gguf"), max_waiting=2)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            running = pool.submit(llm.complete_text, "t0", 10)
            wait_for(lambda: worker.calls == ["t0"], what="first request running")
            notes = []
            for i in (1, 2):
                notes.append(pool.submit(llm.complete_text, f"n{i}", 10, background=True))
                time.sleep(0.1)
            summary = pool.submit(llm.complete_text, "t1", 10)  # a summary someone opened
            time.sleep(0.1)
            worker.release.set()
            running.result()
            assert summary.result() == "answer to t1"
            with pytest.raises(LLMUnavailable, match="dropped"):
                notes[0].result()
            notes[1].result()
        assert worker.calls == ["t0", "t1", "n2"]
    finally:
        llm.stop()


def test_llm_queue_keeps_an_answer_its_caller_stopped_waiting_for():
    """A summary not ready within the read's wait: the next read of it gets the answer at once."""
    worker = SlowWorker()
    llm = RemoteLLM(worker, Path("m.gguf"))
    try:
        with pytest.raises(LLMNotYet):
            llm.complete_text("p", 0.2)
        worker.release.set()
        wait_for(lambda: llm._running is None, what="the request to finish")
        assert llm.complete_text("p", 0.01) == "answer to p"
        assert worker.calls == ["p"]  # made once
    finally:
        llm.stop()


# -- through a real mount ----------------------------------------------------------------


def test_a_model_that_crashes_on_load_leaves_the_mount_working(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMFS_TEST_WORKER_HOOKS", json.dumps({"embedder": {"crash_on_load": "SIGILL"}}))
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    (backing / "wing.md").write_text("The swept wing stalls at high angles of attack.")
    m = start_mount(backing, mnt)
    try:
        wait_for(lambda: "off after" in status_line(mnt, "embedder"), timeout=30, what="the embedder to give up")
        line = status_line(mnt, "embedder")
        assert line == "off after 3 failures in a row (illegal instruction, SIGILL); remount to retry"
        (mnt / "new.txt").write_text("nozzle flow")
        assert (mnt / "new.txt").read_text() == "nozzle flow"
        d = mnt / "query" / "swept wing"
        wait_for(lambda: sorted(os.listdir(d)) == [".matches", ".results.json", "01-wing.md"], what="a keyword listing")
        res = json.loads((d / ".results.json").read_text())["results"]
        assert res[0]["retrieval"].startswith("bm25 only (embedder: off after 3 failures")
        wait_for(lambda: "01-new.txt" in os.listdir(mnt / "query" / "nozzle"), what="a new file found by its words")
    finally:
        m.unmount()


def _daemon_maps(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGILL])
def test_real_embedder_killed_mid_indexing_and_mid_listing(tmp_path, monkeypatch, sig):
    """MiniLM for real: 500 files written through the mount, the worker killed while it embeds
    them and while a query folder is listed; the mount stays up and nothing is lost."""
    monkeypatch.setenv("SEMFS_EMBEDDER", "minilm")
    backing, mnt = tmp_path / "b", tmp_path / "m"
    m = start_mount(backing, mnt)
    try:
        pid = m.proc.pid
        wait_for(lambda: status_line(mnt, "embedder").startswith("ready"), timeout=120, what="the embedder to load")
        topics = ["boundary layer", "shock wave", "heat transfer", "nozzle flow", "wing flutter"]
        texts = {}
        for i in range(500):
            name = f"d{i % 5}/note{i:03d}.txt"
            (mnt / name).parent.mkdir(exist_ok=True)
            texts[name] = f"Note {i} on {topics[i % 5]}: measurement {i * 7} of run x{i}q in the tunnel. " * 3
            (mnt / name).write_text(texts[name])
        wait_for(lambda: "queued" in status(mnt) and "0 files indexed" not in status(mnt), timeout=60, what="indexing")
        (victim,) = worker_pids(pid, "embedder")
        os.kill(victim, sig)
        # listing while the worker is down or loading: keywords answer, at once
        started = time.monotonic()
        listed = os.listdir(mnt / "query" / "shock wave measurement")
        assert time.monotonic() - started < 5
        assert listed and all(n.startswith(tuple("0123456789")) for n in listed if not n.startswith("."))
        victim2 = wait_restarted(mnt, pid, "embedder", victim)
        os.kill(victim2, sig)  # and once more, while a listing may be embedding its prompt
        os.listdir(mnt / "query" / "heat transfer run")
        assert m.proc.poll() is None and os.path.ismount(mnt)
        for name, text in texts.items():
            assert (mnt / name).read_text() == text
        wait_restarted(mnt, pid, "embedder", victim2)
        line = status_line(mnt, "embedder")
        word = "illegal instruction, SIGILL" if sig == signal.SIGILL else "SIGKILL"
        assert "2 failures so far" in line and word in line, line

        # every file searchable once the worker is back: by a word only it holds, and by meaning
        def found(i: int) -> bool:
            return any(n.endswith(f"note{i:03d}.txt") for n in os.listdir(mnt / "query" / f"x{i}q"))

        wait_for(lambda: "500 files indexed, 0 queued" in status(mnt), timeout=300, what="all 500 indexed")
        assert all(found(i) for i in range(0, 500, 7))
        d = mnt / "query" / "supersonic shock"
        wait_for(
            lambda: (
                json.loads((d / ".results.json").read_text() or '{"results": []}')["results"][:1]
                and json.loads((d / ".results.json").read_text())["results"][0]["retrieval"] == "hybrid"
            ),
            timeout=120,
            what="hybrid results once the worker is back",
        )
        maps = _daemon_maps(pid)
        assert not [lib for lib in MODEL_LIBS if lib in maps]
    finally:
        m.unmount()


def test_real_llm_in_its_worker_hang_and_crash(tmp_path, monkeypatch):
    """gemma-3-270m for real in the mount's LLM worker: a summary, a hang killed at its
    deadline, a SIGILL; summaries fall back meanwhile and come back after; the daemon's
    memory map never holds a model library."""
    hang = tmp_path / "hang"
    monkeypatch.setenv("SEMFS_LLM", "default")
    monkeypatch.setenv("SEMFS_LLM_DEADLINE", "4")
    monkeypatch.setenv("SEMFS_TEST_WORKER_HOOKS", json.dumps({"llm": {"hang_file": str(hang)}}))
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    (backing / "call.txt").write_text("Call with the plumber: the boiler leaks and will be replaced next Tuesday.")
    (backing / "list.txt").write_text("Shopping list: flour, eggs, milk, and coffee beans for the week.")
    m = start_mount(backing, mnt)
    try:
        pid = m.proc.pid
        wait_for(lambda: status_line(mnt, "llm").startswith("ready"), timeout=120, what="the LLM to load")
        wait_for(lambda: "2 files indexed, 0 queued" in status(mnt), what="indexed")
        f = mnt / "summary" / "call.txt"
        started = time.monotonic()
        now = f.read_text()  # the file's own lines at once; the gist, if not ready in 2 s, with a later read
        assert time.monotonic() - started < 5 and "Tuesday" in now, now
        wait_for(lambda: f.read_text().startswith("Meeting notes, about "), timeout=30, what="the model's gist")
        first = f.read_text()
        assert first.startswith("Meeting notes, about ") and "Tuesday" in first, first  # the model's gist
        # cached now: stat and ls -lL give its true size (past the kernel's 1 s attribute cache)
        wait_for(lambda: os.stat(f).st_size == len(first.encode()), what="the cached summary's size")
        ls = subprocess.run(["ls", "-lL", str(mnt / "summary")], capture_output=True, text=True).stdout
        assert f" {len(first.encode())} " in next(ln for ln in ls.splitlines() if ln.endswith("call.txt")), ls
        (hung_pid,) = worker_pids(pid, "llm")
        hang.touch()
        started = time.monotonic()
        hung = (mnt / "summary" / "list.txt").read_text()
        assert "- Shopping list: flour" in hung and "not ready yet" in hung, hung  # the file's own lines
        assert time.monotonic() - started < 5
        wait_restarted(mnt, pid, "llm", hung_pid, timeout=60)
        assert "overran its deadline of 4 s" in status_line(mnt, "llm")
        wait_for(
            lambda: "not ready" not in (t := (mnt / "summary" / "list.txt").read_text()) and "no model" not in t,
            timeout=30,
            what="the next request served",
        )
        (victim,) = worker_pids(pid, "llm")
        os.kill(victim, signal.SIGILL)
        wait_for(lambda: "illegal instruction, SIGILL" in status_line(mnt, "llm"), what="the crash reported")
        assert os.listdir(mnt / "query" / "boiler plumber")  # listings do not need the LLM
        wait_restarted(mnt, pid, "llm", victim, timeout=60)
        assert (mnt / "summary" / "call.txt").read_text() == first  # cached per content
        maps = _daemon_maps(pid)
        assert not [lib for lib in MODEL_LIBS if lib in maps]
        assert "libggml" in _daemon_maps(worker_pids(pid, "llm")[0])  # the worker is where the model is
    finally:
        m.unmount()


def test_the_installed_llama_cpp_has_no_amx_instructions():
    """The Makefile's portable build: no AMX (tileloadd ...) in libggml-cpu, whatever CPU built it."""
    import llama_cpp

    if os.uname().machine != "x86_64":
        pytest.skip("AMX is an x86-64 extension")
    libs = glob.glob(os.path.join(os.path.dirname(llama_cpp.__file__), "**", "libggml-cpu*.so*"), recursive=True)
    assert libs, "libggml-cpu not found in the llama_cpp package"
    for lib in libs:
        out = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", lib], capture_output=True, text=True, check=True
        ).stdout
        assert out.count("\n") > 1000  # really disassembled
        assert "tileload" not in out and "tdpbf16ps" not in out, lib
        assert "zmm" not in out, f"{lib} uses AVX-512 registers"


def test_real_llm_a_summary_does_not_wait_behind_200_new_prompt_folders(tmp_path, monkeypatch):
    """200 new prompt folders listed at once (they once each asked the LLM for a reading; now the
    rules read them); a summary opened meanwhile is served at once, and the mount answers throughout."""
    monkeypatch.setenv("SEMFS_LLM", "default")
    backing, mnt = tmp_path / "b", tmp_path / "m"
    backing.mkdir()
    (backing / "call.txt").write_text("Call with the plumber: the boiler leaks and will be replaced next Tuesday.")
    m = start_mount(backing, mnt)
    try:
        wait_for(lambda: status_line(mnt, "llm").startswith("ready"), timeout=120, what="the LLM to load")
        stop = threading.Event()

        def list_prompts(offset: int) -> int:
            n = 0
            for i in range(offset, 200, 16):
                if stop.is_set():
                    break
                os.listdir(mnt / "query" / f"reports about topic {i} from last week")
                n += 1
            return n

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            listers = [pool.submit(list_prompts, k) for k in range(16)]
            time.sleep(3.0)  # the LLM's queue is full by now
            started = time.monotonic()
            text = (mnt / "summary" / "call.txt").read_text()
            while not text.startswith("Meeting notes, about ") and time.monotonic() - started < 10:
                text = (mnt / "summary" / "call.txt").read_text()  # (the gist comes with a later read)
            took = time.monotonic() - started
            stop.set()
            listed = sum(f.result() for f in listers)
        assert text.startswith("Meeting notes, about ") and "no model now" not in text, text
        assert took < 10, f"the summary waited {took:.1f} s"
        assert listed >= 16
    finally:
        m.unmount()


def test_install_smoke_check_runs_the_model_and_names_a_crash_in_one_line(monkeypatch):
    ok = subprocess.run([sys.executable, "-m", "semfs.models.smoke"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("llama.cpp smoke check: generated"), ok.stdout + ok.stderr
    env = dict(os.environ, SEMFS_TEST_WORKER_HOOKS=json.dumps({"llm": {"crash_on_load": "SIGILL"}}))
    bad = subprocess.run([sys.executable, "-m", "semfs.models.smoke"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("semfs: llama.cpp died with SIGILL (illegal instruction)")
    assert "make install LLAMA_CMAKE_ARGS=-DGGML_NATIVE=OFF" in bad.stderr


def test_a_file_is_found_by_its_words_while_its_embedding_is_held_back(tmp_path, monkeypatch):
    """Issue 13: words first. The embedder's next request takes 8 s (a test hook); a file written
    meanwhile is in its query folder within about a second of its close, marked as not embedded yet,
    and so is the next one (the indexer does not wait on the embedder)."""
    hang = tmp_path / "hang"
    monkeypatch.setenv("SEMFS_TEST_WORKER_HOOKS", json.dumps({"embedder": {"hang_file": str(hang), "hang_for": 8}}))
    backing, mnt = tmp_path / "b", tmp_path / "m"
    m = start_mount(backing, mnt)
    try:
        wait_for(lambda: status_line(mnt, "embedder").startswith("ready"), timeout=60, what="the embedder")
        hang.touch()
        (mnt / "a.txt").write_text("Readings of the zq7x probe in the nozzle.")
        wait_for(lambda: not hang.exists(), what="the embedder held back")  # its request for a.txt hangs
        for name, word in (("a.txt", "zq7x"), ("b.txt", "qv4y")):
            if name == "b.txt":
                (mnt / name).write_text("Readings of the qv4y gauge.")
            closed = time.monotonic()
            d = mnt / "query" / word
            want = [".matches", ".results.json", f"01-{name}"]
            wait_for(lambda: sorted(os.listdir(d)) == want, timeout=5, what=f"{name} by its words")
            assert time.monotonic() - closed < 2.5
            rows = json.loads((d / ".results.json").read_text())["results"]
            assert rows[0]["retrieval"] == "bm25 only (this file's meaning is not computed yet)", rows
        assert "meaning:" in status(mnt)
        wait_for(lambda: "2 of 2 files embedded" in status(mnt), timeout=30, what="the meaning filled in")
    finally:
        m.unmount()
