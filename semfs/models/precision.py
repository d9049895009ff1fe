"""Which precision the embedder runs in on this CPU: chosen once by measuring, then cached.

bfloat16 autocast halves the work of all-MiniLM-L6-v2's matrix products
on a CPU that runs bf16 natively (``avx512_bf16`` or ``amx_bf16`` in
``/proc/cpuinfo``), and gives vectors within 0.9999 cosine of float32. On
a CPU without them, PyTorch emulates bf16 and is slower than float32, so
it is never tried there. Where it could pay, a short calibration embeds a
few real chunks both ways and keeps bf16 only if it is both faster (by
``MIN_GAIN``) and close (every cosine at least ``MIN_COSINE``). The
result is cached per CPU, torch version and model in
``$SEMFS_HOME/backend.json``; ``SEMFS_EMBED_BACKEND=fp32|bf16`` overrides.

Caveat: the calibration takes a few seconds on first use, in the
embedder's worker while it loads.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..stores.atomic import write_atomic

log = logging.getLogger(__name__)

MIN_COSINE = 0.9999
MIN_GAIN = 1.2
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")

# Used when no real chunks are at hand: sentences of the lengths and kinds files hold.
SAMPLES = [
    "Minutes of the budget review: Q1 spend is 8% over plan, mostly cloud hosting after the January traffic spike.",
    "Levain the night before: 50 g starter, 50 g flour, 50 g water. Bake at 250 C in a Dutch oven.",
    "def load_rates(path): return {row['currency']: float(row['per_eur']) for row in csv.DictReader(f)}",
    "The boundary layer separates from the wing surface at high angles of attack, and lift falls sharply. " * 6,
    "Renew passport; book dentist; reply to the landlord about the lease renewal; fix the bike's rear brake.",
    "Experimental investigation of the aerodynamics of a wing in a slipstream, with measurements of pressure "
    "distribution and of the flow behind the propeller, compared with a simple theory of the interference. " * 3,
    "Goal: 20 minutes a day, podcasts on the commute, one conversation class a week.",
    "Stuck FUSE mount (Transport endpoint is not connected): fusermount3 -uz /path, then mount again.",
] * 4


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def choose(
    model_name: str,
    cache: Optional[Path],
    samples: Optional[Sequence[str]] = None,
    threads=None,
    make: Optional[Callable[[str], Any]] = None,
) -> dict:
    """{"backend": "fp32"|"bf16", "why": ..., and what was measured}, from the cache or measured
    now with ``make(backend)``, the model in that precision (given by whoever holds the model's
    class: this module knows no model)."""
    forced = os.environ.get("SEMFS_EMBED_BACKEND", "auto")
    if forced in ("fp32", "bf16"):
        return {"backend": forced, "why": "SEMFS_EMBED_BACKEND"}
    flags = cpu_flags()
    if not flags & set(NATIVE_BF16):
        return {"backend": "fp32", "why": "this CPU has no native bf16 (avx512_bf16, amx_bf16)"}
    import torch

    key = f"{_cpu_model()} | torch {torch.__version__} | {model_name}"
    known = _read(cache).get(key) if cache else None
    if known:
        return known
    if make is None:
        return {"backend": "fp32", "why": "not measured (no model to measure was given)"}
    result = calibrate(samples or SAMPLES, make)
    if cache:
        table = _read(cache)
        table[key] = result
        try:
            write_atomic(cache, (json.dumps(table, indent=1) + "\n").encode())
        except OSError as e:
            log.warning("could not cache the embedder's backend in %s: %s", cache, e)
    return result


def calibrate(samples: Sequence[str], make: Callable[[str], Any]) -> dict:
    """Embed ``samples`` in fp32 and bf16 (each warmed up, best of 2) and pick."""
    runs = {}
    vecs = {}
    for backend in ("fp32", "bf16"):
        e = make(backend)
        e.embed(samples[:4])  # load and warm up outside the timing
        best = float("inf")
        for _ in range(2):
            t0 = time.perf_counter()
            vecs[backend] = e.embed(samples)
            best = min(best, time.perf_counter() - t0)
        runs[backend] = best
    cos = float(np.min(np.sum(vecs["fp32"] * vecs["bf16"], axis=1)))
    gain = runs["fp32"] / runs["bf16"]
    ok = cos >= MIN_COSINE and gain >= MIN_GAIN
    why = (
        f"bf16 {gain:.2f}x fp32's speed, cosine >= {cos:.5f}"
        if ok
        else f"bf16 not kept: {gain:.2f}x fp32's speed, cosine >= {cos:.5f} (needs {MIN_GAIN}x and {MIN_COSINE})"
    )
    return {
        "backend": "bf16" if ok else "fp32",
        "why": why,
        "fp32_texts_per_s": round(len(samples) / runs["fp32"], 1),
        "bf16_texts_per_s": round(len(samples) / runs["bf16"], 1),
        "min_cosine": round(cos, 6),
    }


def _read(cache: Optional[Path]) -> dict:
    try:
        return json.loads(Path(cache).read_text()) if cache else {}
    except (OSError, ValueError):
        return {}
