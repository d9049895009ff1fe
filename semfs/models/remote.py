"""The in-process models' interfaces over supervised workers (:mod:`.supervisor`), for the daemon.

:class:`RemoteEmbedder` is the :class:`~semfs.models.embedder.Embedder`
interface. :class:`RemoteLLM` is the :class:`~semfs.models.llm.LLM` one,
with a small queue: one outstanding request per prompt; when it is full,
the oldest prompt reading waiting is dropped (the rules already answered
that prompt), and text for a person (a summary, a change note) is served
first, so listing 200 new prompt folders cannot make a summary wait
minutes.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import ModelUnavailable
from .llm import LLMNotYet, LLMUnavailable, answer_within
from .supervisor import Supervised

log = logging.getLogger(__name__)


class RemoteEmbedder:
    """The :class:`~semfs.models.embedder.Embedder` interface over a supervised worker."""

    takes_threads = True  # embed(texts, threads=N): the indexer asks for fewer while the mount is busy

    def __init__(
        self, worker: Supervised, name: str, dim: int, timeout: Optional[float] = None, prompts: bool = False
    ) -> None:
        self.worker, self.name, self.dim = worker, name, dim
        self.timeout = timeout  # None: as long as the batch may take
        # prompts: a person waits; the worker answers them first (its ONNX graph), and a prompt
        # asked while the worker is still loading waits for it, within ``timeout``
        self.prompts = prompts

    def ready(self) -> bool:
        return self.worker.ready()

    def wait_ready(self, timeout: float) -> bool:
        return self.worker.wait_ready(timeout)

    def embed(self, texts: Sequence[str], threads: Optional[int] = None) -> np.ndarray:
        """``threads``: compute this batch with that many threads (None: as the worker was started)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # generous: a loaded 2-core machine embeds several chunks a second
        deadline = 60.0 + 0.5 * len(texts)
        timeout = self.timeout or deadline
        args: dict = {"texts": list(texts), "threads": threads}
        if self.prompts:
            args["prompt"] = True
            if self.worker.state == "loading":
                started = time.monotonic()
                self.worker.wait_ready(timeout)
                timeout = max(0.05, timeout - (time.monotonic() - started))
        vecs = self.worker.call("embed", args, timeout=timeout, deadline=deadline)
        return np.ascontiguousarray(vecs, dtype=np.float32)


@dataclass
class _Job:
    method: str
    args: dict
    droppable: bool  # background work (a change note, made again later), not something a person opened
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


class RemoteLLM:
    """The :class:`~semfs.models.llm.LocalLLM` interface over a supervised worker, with a small queue."""

    ANSWERS_KEPT = 64  # answers kept for a caller that stopped waiting and asks again

    def __init__(self, worker: Supervised, model_path: Path, deadline: float = 30.0, max_waiting: int = 4) -> None:
        self.worker = worker
        self._answers: collections.OrderedDict[str, object] = collections.OrderedDict()
        self.model_path = Path(model_path)
        self.deadline = deadline
        self.max_waiting = max_waiting
        self._waiting: collections.OrderedDict[str, _Job] = collections.OrderedDict()
        self._running: Optional[tuple[str, _Job]] = None
        self._cond = threading.Condition()
        self._stopping = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._dispatch, name="semfs-llm-dispatch", daemon=True)
        self._thread.start()

    def ready(self) -> bool:
        return self.worker.ready()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            for job in self._waiting.values():
                job.future.set_exception(LLMUnavailable("the mount is stopping"))
            self._waiting.clear()
            self._cond.notify_all()
        self._thread.join(5.0)

    def _submit(self, method: str, args: dict, droppable: bool) -> concurrent.futures.Future:
        key = json.dumps([method, args], sort_keys=True)
        with self._cond:
            if self._stopping:
                raise LLMUnavailable("the mount is stopping")
            if key in self._answers:  # made after its caller stopped waiting: its next ask has it at once
                done: concurrent.futures.Future = concurrent.futures.Future()
                done.set_result(self._answers.pop(key))
                return done
            if self._running is not None and self._running[0] == key:
                return self._running[1].future
            if key in self._waiting:
                return self._waiting[key].future
            if not self.worker.ready():
                # nothing would serve it now: fail at once, the caller has a fallback
                raise LLMUnavailable(f"llm: {self.worker.describe()}")
            while len(self._waiting) >= self.max_waiting:
                victim = next((k for k, j in self._waiting.items() if j.droppable), next(iter(self._waiting)))
                old = self._waiting.pop(victim)
                self.dropped += 1
                old.future.set_exception(LLMUnavailable("dropped: newer requests were waiting for the model"))
            job = self._waiting[key] = _Job(method, args, droppable)
            self._cond.notify()
            return job.future

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                key = next((k for k, j in self._waiting.items() if not j.droppable), next(iter(self._waiting)))
                job = self._waiting.pop(key)
                self._running = (key, job)
            try:
                answer = self.worker.call(job.method, job.args, timeout=self.deadline)
                with self._cond:
                    self._answers[key] = answer
                    while len(self._answers) > self.ANSWERS_KEPT:
                        self._answers.popitem(last=False)
                job.future.set_result(answer)
            except ModelUnavailable as e:
                job.future.set_exception(LLMUnavailable(str(e)))
            except Exception as e:  # never let the queue's one thread die: its callers would wait for nothing
                log.exception("the LLM queue failed a request")
                job.future.set_exception(LLMUnavailable(f"{type(e).__name__}: {e}"))
            finally:
                with self._cond:
                    self._running = None

    def _wait(self, fut: concurrent.futures.Future, timeout: float):
        return answer_within(fut, timeout, LLMNotYet)  # (asked again, the same request gets the answer kept)

    def preload(self) -> None:
        if not self.worker.wait_ready(self.worker.load_deadline):
            raise LLMUnavailable(f"llm: {self.worker.describe()}")

    def complete_text(
        self,
        prompt: str,
        timeout: float,
        max_tokens: int = 120,
        stop: Optional[list[str]] = None,
        background: bool = False,
    ) -> str:
        """A summary someone opened is served first and dropped last; ``background`` work
        (change notes, made again on the next pass) waits behind it and is dropped first."""
        args = {"prompt": prompt, "max_tokens": max_tokens, "stop": stop}
        return self._wait(self._submit("complete_text", args, droppable=background), timeout)
