"""``python -m semfs.models.smoke``: does the installed llama.cpp run on this CPU?

``make install`` ends with it. A child process loads the bundled model
and generates a few tokens; a build that uses an instruction this CPU
(or its virtual machine) will not run dies there by SIGILL, not in the
user's mount. The parent prints one line and exits non-zero if the
child failed, with what to do about it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def child() -> int:
    import json
    import os

    from ..home import semfs_home
    from .llm import LlamaModel, ensure_default_model

    hook = json.loads(os.environ.get("SEMFS_TEST_WORKER_HOOKS") or "{}").get("llm", {}).get("crash_on_load")
    if hook:  # tests: die as a build for another CPU would
        os.kill(os.getpid(), getattr(signal, hook))

    model = LlamaModel(ensure_default_model(semfs_home()), n_ctx=256)
    text = model.complete_text("The capital of France is", max_tokens=4)
    print(f"llama.cpp smoke check: generated {text!r}")
    return 0


REBUILD = "rebuild it for this CPU with: make install LLAMA_CMAKE_ARGS=-DGGML_NATIVE=OFF (or mount with --llm off)"


def main() -> int:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "semfs.models.smoke", "--child"], capture_output=True, text=True)
    took = time.monotonic() - started
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode)
        what = (signal.strsignal(sig) or sig.name).lower()
        print(
            f"semfs: llama.cpp died with {sig.name} ({what}) loading or running the model: "
            f"it was built for instructions this CPU does not run; {REBUILD}",
            file=sys.stderr,
        )
        return 1
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"semfs: the llama.cpp smoke check failed: {last}", file=sys.stderr)
        return 1
    print(f"{proc.stdout.strip()} ({took:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(child() if sys.argv[1:] == ["--child"] else main())
