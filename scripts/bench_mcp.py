#!/usr/bin/env python3
"""MCP search latency against semfs search, for the same prompts (issue 25, item 4).

On a collection indexed as ``bench_retrieval.py`` leaves it (``--work``),
the first ``--n`` questions are searched three ways, and each one's time is
taken where its caller sees it:

- ``semfs mcp``: one session of the SDK's client over stdio (started once,
  as an agent's client does), ``call_tool("search")`` per prompt, k=10;
- ``semfs search --queries FILE --json -k 10``: one process for all of them
  (its wall time over the prompts);
- ``semfs search PROMPT --json -k 10``: one process per prompt (what an
  agent that shells out pays).

    .venv/bin/python scripts/bench_mcp.py --work /tmp/semfs-ret [--collection cranfield] [--n 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cranfield"))
    ap.add_argument("--collection", default="cranfield")
    ap.add_argument("--work", required=True)
    ap.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    import bench_retrieval as br

    work = Path(args.work)
    ((name, backing, qs),) = br._collections([args.collection], work, Path(args.data))
    home = work / name / "home"
    br._index(backing, home)
    env = dict(os.environ, SEMFS_HOME=str(home))
    env.pop("SEMFS_EMBEDDER", None)
    prompts = [" ".join(q.split()) for _, q, _ in qs[: args.n]]
    semfs = [sys.executable, "-m", "semfs"]

    async def session() -> tuple[float, list[float]]:
        t0 = time.perf_counter()
        server = StdioServerParameters(command=sys.executable, args=["-m", "semfs", "mcp", str(backing)], env=env)
        async with Client(server) as c:
            await c.call_tool("search", {"prompt": "warm up", "k": 10})
            start = time.perf_counter() - t0
            times = []
            for p in prompts:
                t = time.perf_counter()
                r = await c.call_tool("search", {"prompt": p, "k": 10})
                assert not r.is_error, r.content
                times.append(time.perf_counter() - t)
        return start, times

    start, mcp_times = asyncio.run(session())
    qfile = work / "bench_mcp_prompts.txt"
    qfile.write_text("\n".join(prompts) + "\n")
    t = time.perf_counter()
    subprocess.run([*semfs, "search", str(backing), "--queries", str(qfile), "--json", "-k", "10"], env=env,
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    batch = (time.perf_counter() - t) / len(prompts)
    each = []
    for p in prompts[:10]:
        t = time.perf_counter()
        subprocess.run([*semfs, "search", str(backing), p, "--json", "-k", "10"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        each.append(time.perf_counter() - t)
    ms = 1000
    print(f"{name}: {len(prompts)} prompts; the MCP session started (and answered its first search) in {start:.2f} s\n")
    print("| how | ms per prompt, p50 | p95 | mean |\n|---|---:|---:|---:|")
    q = statistics.quantiles(mcp_times, n=20)
    print(f"| semfs mcp, one session, call_tool search | {statistics.median(mcp_times) * ms:.0f} | {q[18] * ms:.0f} "
          f"| {statistics.mean(mcp_times) * ms:.0f} |")  # fmt: skip
    print(f"| semfs search --queries (one process, wall time / prompts) | | | {batch * ms:.0f} |")
    print(f"| semfs search PROMPT (a process per prompt, first 10) | {statistics.median(each) * ms:.0f} | "
          f"| {statistics.mean(each) * ms:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
