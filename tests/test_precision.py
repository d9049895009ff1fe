"""The embedder's precision: bf16 only where the CPU runs it natively, and only if measured faster and close."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from semfs.models import precision as backend
from semfs.models.embedder import MiniLMEmbedder

DEMO = Path(__file__).parent.parent / "demo"


def no_calibration(*a, **k):
    raise AssertionError("calibrated, though it should not have been")


def test_a_cpu_without_native_bf16_never_tries_it(monkeypatch, tmp_path):
    monkeypatch.setattr(backend, "cpu_flags", lambda: {"avx2", "fma", "avx512f"})
    monkeypatch.setattr(backend, "calibrate", no_calibration)
    got = backend.choose("m", tmp_path / "backend.json")
    assert got["backend"] == "fp32" and "no native bf16" in got["why"]


def test_the_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setattr(backend, "calibrate", no_calibration)
    monkeypatch.setenv("SEMFS_EMBED_BACKEND", "fp32")
    assert backend.choose("m", tmp_path / "b.json")["backend"] == "fp32"


@pytest.mark.skipif(not backend.cpu_flags() & set(backend.NATIVE_BF16), reason="this CPU has no native bf16")
def test_real_calibration_is_measured_once_and_close_to_fp32(monkeypatch, tmp_path):
    """MiniLM for real, on the demo folder's text: bf16 is kept only if faster and within 0.9999 cosine."""
    texts = [p.read_text() for p in sorted(DEMO.rglob("*.md"))]
    cache = tmp_path / "backend.json"
    got = backend.choose(MiniLMEmbedder.name, cache, texts, 2, lambda b: MiniLMEmbedder(threads=2, backend=b))
    assert got["backend"] in ("fp32", "bf16") and got["min_cosine"] > 0.99, got
    if got["backend"] == "bf16":
        assert got["min_cosine"] >= backend.MIN_COSINE
        assert got["bf16_texts_per_s"] >= backend.MIN_GAIN * got["fp32_texts_per_s"]
    assert list(json.loads(cache.read_text()).values()) == [got]
    monkeypatch.setattr(backend, "calibrate", no_calibration)
    assert backend.choose(MiniLMEmbedder.name, cache, texts) == got  # from the cache
    fp32 = MiniLMEmbedder(threads=2).embed(texts)
    bf16 = MiniLMEmbedder(threads=2, backend="bf16").embed(texts)
    assert np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)  # normalised after the cast
    assert float(np.min(np.sum(fp32 * bf16, axis=1))) >= 0.999
