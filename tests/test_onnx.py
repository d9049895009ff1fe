"""The ONNX graph of MiniLM that lets a search from the shell start in under a second, for real.

Exported from the real torch model; checked against torch on real chunks; and a missing,
cut or altered graph is never used: the embedder falls back to torch with a log line and
exports the graph again.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semfs.models import onnx_minilm
from semfs.models.embedder import MiniLMEmbedder, query_embedder

DEMO = Path(__file__).parent.parent / "demo"
CRANFIELD = Path(__file__).parent.parent.parent / "shared" / "data" / "cranfield"


def real_chunks() -> list[str]:
    from semfs.core.index.chunking import chunk_text

    texts = [p.read_text() for p in sorted(DEMO.rglob("*")) if p.suffix in (".md", ".txt")]
    chunks = [c.text for t in texts for c in chunk_text(t)]
    assert len(chunks) >= 20
    return chunks + ["a", "x" * 3000]  # one token, and one cut at 256 tokens


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A graph exported by the torch embedder's first load, and that embedder."""
    directory = tmp_path_factory.mktemp("home") / "models" / "minilm-onnx-v1"
    torch_embedder = MiniLMEmbedder(threads=2, onnx_cache=directory)
    torch_embedder.embed(["load"])
    assert onnx_minilm.is_current(directory)
    return directory, torch_embedder


def test_the_graph_embeds_real_chunks_as_torch_does(exported):
    directory, torch_embedder = exported
    assert oct((directory / onnx_minilm.GRAPH).stat().st_mode & 0o777) == "0o600"
    chunks = real_chunks()
    want = torch_embedder.embed(chunks)
    got = onnx_minilm.OnnxMiniLM(directory, threads=2).embed(chunks)
    assert got.shape == want.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(got * want, axis=1)
    assert float(cosines.min()) > 0.999, cosines.min()
    one = onnx_minilm.OnnxMiniLM(directory).embed(chunks[:1])  # alone, without padding
    assert float(one[0] @ want[0]) > 0.999


def copy_of(directory: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for name in (onnx_minilm.GRAPH, onnx_minilm.RECORD):
        (to / name).write_bytes((directory / name).read_bytes())
    return to


def cut(d: Path) -> None:
    g = d / onnx_minilm.GRAPH
    g.write_bytes(g.read_bytes()[: g.stat().st_size // 2])


def altered(d: Path) -> None:
    """Same size, a valid graph, computes something else: the token embedding table in reverse."""
    import onnx

    g = d / onnx_minilm.GRAPH
    data = g.read_bytes()
    table = max(onnx.load(str(g)).graph.initializer, key=lambda t: len(t.raw_data)).raw_data
    at = data.find(table)
    assert at > 0
    reverse = np.frombuffer(table, dtype=np.float32)[::-1].tobytes()
    g.write_bytes(data[:at] + reverse + data[at + len(table) :])


def missing(d: Path) -> None:
    (d / onnx_minilm.GRAPH).unlink()


def no_record(d: Path) -> None:
    (d / onnx_minilm.RECORD).unlink()


def other_format(d: Path) -> None:
    record = json.loads((d / onnx_minilm.RECORD).read_text())
    (d / onnx_minilm.RECORD).write_text(json.dumps({**record, "format": 0}))


@pytest.mark.parametrize("damage", [cut, altered, missing, no_record, other_format])
def test_a_damaged_graph_is_never_used(exported, tmp_path, damage):
    directory = copy_of(exported[0], tmp_path / "g")
    damage(directory)
    with pytest.raises(onnx_minilm.Unusable):
        onnx_minilm.OnnxMiniLM(directory)
    assert not onnx_minilm.is_current(directory)


def test_the_installs_graph_serves_a_user_who_has_none(exported, tmp_path, monkeypatch):
    installed = copy_of(exported[0], tmp_path / "prefix" / "minilm-onnx")
    monkeypatch.setattr(onnx_minilm, "installed_dir", lambda: installed)
    home = tmp_path / "home"
    embedder = query_embedder(home, "minilm")  # nothing in home: the install's graph
    assert isinstance(embedder, onnx_minilm.OnnxMiniLM)
    altered(copy_of(exported[0], onnx_minilm.cache_dir(home)))
    assert isinstance(query_embedder(home, "minilm"), onnx_minilm.OnnxMiniLM)  # the user's is damaged: still


def test_a_search_falls_back_to_torch_with_a_log_line_and_exports_again(exported, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(onnx_minilm, "installed_dir", lambda: tmp_path / "no install graph")
    home = tmp_path / "home"
    directory = copy_of(exported[0], onnx_minilm.cache_dir(home))
    altered(directory)
    with caplog.at_level(logging.WARNING):
        embedder = query_embedder(home, "minilm")
    assert isinstance(embedder, MiniLMEmbedder)
    assert any("cosine" in r.getMessage() and "torch" in r.getMessage() for r in caplog.records), caplog.text
    vec = embedder.embed(["heat transfer in hypersonic flow"])
    assert onnx_minilm.is_current(directory)  # made again on the torch model's load
    again = query_embedder(home, "minilm")
    assert isinstance(again, onnx_minilm.OnnxMiniLM)
    assert float(again.embed(["heat transfer in hypersonic flow"])[0] @ vec[0]) > 0.999


def test_semfs_search_from_a_cold_shell_never_imports_torch(exported, tmp_path):
    """The whole command in a new process: the index built with torch, the prompt embedded by the graph."""
    home = tmp_path / "home"
    copy_of(exported[0], onnx_minilm.cache_dir(home))
    backing = tmp_path / "backing"
    backing.mkdir()
    (backing / "bread.md").write_text("# Sourdough\n\nFeed the starter, fold the dough, bake at 250 degrees.\n")
    (backing / "bikes.md").write_text("# Chains\n\nOil the bicycle chain after a wet ride.\n")
    env = {**os.environ, "SEMFS_HOME": str(home), "SEMFS_EMBEDDER": "minilm"}
    run = [sys.executable, "-m", "semfs"]
    subprocess.run([*run, "index", str(backing)], env=env, check=True, capture_output=True)
    probe = (
        "import sys; sys.argv = ['semfs', 'search', sys.argv[1], 'how do I make bread', '-k', '1'];"
        "import semfs.cli\n"
        "try:\n    semfs.cli.cli()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(backing)], env=env, check=True, capture_output=True, text=True
    )
    lines = out.stdout.splitlines()
    assert lines[0].endswith("bread.md"), out.stdout + out.stderr
    assert lines[-1] == "False False", out.stdout
    assert "torch" not in out.stderr, out.stderr
