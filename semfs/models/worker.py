"""A model worker: the child process that runs one model for the daemon.

``python -m semfs.models.worker`` reads its configuration as the first
message on stdin, loads the model, answers ``{"ready": info}`` (or
``{"failed": reason}`` and exits 3), then serves requests
``(id, method, args)`` with ``(id, "ok", value)`` or
``(id, "error", text)``. See :mod:`semfs.models.supervisor` for the
daemon's side.

- The pipe is the only channel: the real stdout is kept for it and fd 1
  points at stderr (the daemon's log), so a library that prints cannot
  corrupt a message.
- A thread reads requests; the end of stdin (the daemon exited, however
  it died) ends the process at once, so no worker outlives its daemon.
- The LLM is loaded and run on the main thread only (llama-cpp-python
  hangs when a model loaded on one thread runs on another); the embedder
  serves up to ``concurrency`` requests at once, so a query's embedding
  need not wait behind an indexing batch.

Test hooks (``SEMFS_TEST_WORKER_HOOKS``, JSON by kind, read only when set):
``{"llm": {"hang_file": PATH}}`` makes the next request sleep for ever if
PATH exists (PATH is removed first, so it happens once), or for
``hang_for`` seconds if given;
``{"embedder": {"crash_on_load": "SIGILL"}}`` kills the worker by that
signal while it loads; ``{"embedder": {"load_delay": 3}}`` slows loading.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import queue
import signal
import sys
import threading
import time

from ..heap import give_back
from .channel import Channel, ChannelClosed

log = logging.getLogger("semfs.worker")

EXIT_LOAD_FAILED = 3
TORCH_AFTER_IDLE = 1.0  # s without a request before torch loads beside the ONNX graph
TORCH_WAITS_AT_MOST = 5.0


def _hooks(kind: str) -> dict:
    raw = os.environ.get("SEMFS_TEST_WORKER_HOOKS")
    return json.loads(raw).get(kind, {}) if raw else {}


def _hang_if_asked(hooks: dict) -> None:
    path = hooks.get("hang_file")
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        log.warning("test hook: hanging")
        if hooks.get("hang_for"):
            time.sleep(float(hooks["hang_for"]))  # a slow request, not a dead one
            return
        while True:
            time.sleep(3600)


def _load(cfg: dict):
    """The function that serves one request, (method, args) -> value, and what to say of the model."""
    if cfg["kind"] == "embedder":
        return _minilm(cfg) if cfg["name"] == "minilm" else _in_process(cfg)
    if cfg["kind"] == "llm":
        from pathlib import Path

        from .llm import LlamaModel, ensure_default_model

        if cfg.get("assemble_default"):
            ensure_default_model(Path(cfg["data_dir"]))
        llm = LlamaModel(Path(cfg["model_path"]), threads=cfg.get("threads"))
        llm.load()

        def serve(method, args):
            if method == "complete_text":
                return llm.complete_text(args["prompt"], args["max_tokens"], args.get("stop"))
            raise ValueError(f"unknown method {method!r}")

        return serve, {}
    raise ValueError(f"unknown worker kind {cfg.get('kind')!r}")


def _in_process(cfg: dict):
    from .embedder import make_embedder

    model = make_embedder(cfg["name"])

    def serve(method, args):
        if method != "embed":
            raise ValueError(f"unknown method {method!r}")
        return model.embed(args["texts"])

    return serve, {}


def _minilm(cfg: dict):
    """MiniLM: prompts through the ONNX graph from the first second where one loads, batches
    through torch in the backend the calibration chose once torch is loaded (in the
    background, from the first batch on; meanwhile batches use the graph too); without a
    graph, torch from the start."""
    from pathlib import Path

    from .embedder import MiniLMEmbedder, make_embedder
    from .onnx_minilm import Unusable, load_graph
    from .precision import choose

    home = Path(cfg["home"]) if cfg.get("home") else None
    graph = None
    if home is not None:
        try:
            graph = load_graph(home, threads=cfg.get("threads"))
        except Unusable as e:
            log.info("prompts wait for torch: %s", e)
    threads = [cfg.get("threads")]
    batches: list = []  # the torch model, once loaded

    def load_torch() -> dict:
        cache = Path(cfg["backend_cache"]) if cfg.get("backend_cache") else None
        n = cfg.get("threads")
        info = choose(MiniLMEmbedder.name, cache, cfg.get("samples"), n, lambda b: MiniLMEmbedder(threads=n, backend=b))
        log.info("embedder backend: %s (%s)", info["backend"], info["why"])
        # torch even in fp32, where the graph is as fast: it can take a thread count per batch
        # (one while someone writes through the mount), an ONNX session only at its creation
        model = make_embedder(
            "minilm",
            threads=cfg.get("threads"),
            backend=info["backend"],
            onnx_cache=Path(cfg["onnx_cache"]) if cfg.get("onnx_cache") else None,
        )
        model.embed(["warm up"])  # loads the weights now, not on the first request
        batches.append(model)
        return info

    last_request = [time.monotonic()]

    def in_background() -> None:
        # Importing torch takes a core for seconds: not while the graph embeds a mount's first
        # files (on two cores that halves their speed), unless they keep it busy for long.
        started = time.monotonic()
        while time.monotonic() - started < TORCH_WAITS_AT_MOST:
            if time.monotonic() - last_request[0] >= TORCH_AFTER_IDLE:
                break
            time.sleep(0.1)
        try:
            load_torch()
            if batches:
                log.info("embedder: batches now run on torch")
        except Exception as e:  # the graph keeps serving everything
            log.warning("embedder: torch did not load (%s); the ONNX graph serves batches too", e)

    loader: list = []  # the thread that loads torch: started by the first batch, not at start
    loader_lock = threading.Lock()

    def serve(method, args):
        if method != "embed":
            raise ValueError(f"unknown method {method!r}")
        if not batches or (args.get("prompt") and graph is not None):
            assert graph is not None
            last_request[0] = time.monotonic()
            if not args.get("prompt"):
                with loader_lock:
                    if not loader:
                        # torch costs some 440 MB more resident (622 against 184 in a 1M mount): a mount
                        # whose files all have their vectors only answers prompts, and never loads it
                        loader.append(threading.Thread(target=in_background, name="worker-torch", daemon=True))
                        loader[0].start()
            return graph.embed(args["texts"])
        want = args.get("threads") or cfg.get("threads")
        if want and want != threads[0]:
            import torch

            torch.set_num_threads(want)  # fewer while the mount is busy: its callers come first
            threads[0] = want
        try:
            return batches[0].embed(args["texts"])
        finally:
            give_back()  # a batch's freed tensors stay in the heap: 1,289 MB after 3,000 chunks, 579 with this

    if graph is None:
        info = load_torch()
        return serve, {"backend": info["backend"]}
    return serve, {"backend": "ONNX graph, then torch once batches come"}


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() and C libraries writing to stdout land in the log
    sys.stdout = sys.stderr
    chan = Channel(os.fdopen(0, "rb", buffering=0), out)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = chan.recv()
    except ChannelClosed:
        return 0
    kind = cfg["kind"]
    hooks = _hooks(kind)
    try:
        os.nice(cfg.get("nice", 0))  # indexing yields the CPU to whoever uses the mount
    except OSError:
        pass
    try:
        time.sleep(float(hooks.get("load_delay", 0)))
        if hooks.get("crash_on_load"):
            os.kill(os.getpid(), getattr(signal, hooks["crash_on_load"]))
        serve, about = _load(cfg)
    except Exception as e:
        log.error("%s worker cannot load its model: %s", kind, e)
        try:
            chan.send({"failed": f"{type(e).__name__}: {e}"})
        except ChannelClosed:
            pass
        return EXIT_LOAD_FAILED
    try:
        chan.send({"ready": {"pid": os.getpid(), **about}})
    except ChannelClosed:
        return 0  # the daemon went away while we loaded: end quietly

    requests: queue.Queue = queue.Queue()

    def read() -> None:
        while True:
            try:
                requests.put(chan.recv())
            except ChannelClosed:
                os._exit(0)  # the daemon is gone: so are we, mid-request or not

    threading.Thread(target=read, name="worker-read", daemon=True).start()

    def answer(req) -> None:
        rid, method, args = req
        try:
            _hang_if_asked(hooks)
            chan.send((rid, "ok", serve(method, args)))
        except ChannelClosed:
            os._exit(0)
        except Exception as e:
            try:
                chan.send((rid, "error", f"{type(e).__name__}: {e}"))
            except ChannelClosed:
                os._exit(0)

    concurrency = int(cfg.get("concurrency", 1))
    if concurrency <= 1:
        while True:
            answer(requests.get())
    with concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="worker") as pool:
        while True:
            pool.submit(answer, requests.get())


if __name__ == "__main__":
    sys.exit(main())
