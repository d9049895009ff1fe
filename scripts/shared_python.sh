#!/bin/sh
# Prints the first Python >= 3.11 with venv that every user may run: the
# .venv is made from it, because the test suite runs the daemon as an
# unprivileged user and python3 on PATH may live in a private home (pyenv
# under /root). Prints nothing, and exits 1, if there is none.
for c in ${PYTHON:-} python3 /usr/bin/python3 /usr/local/bin/python3; do
	p=$(command -v "$c" 2>/dev/null) || continue
	"$p" - <<'PY' 2>/dev/null && exit 0
import os, stat, sys
import ensurepip, venv  # Debian splits these out (python3-venv)
assert sys.version_info >= (3, 11)
exe = os.path.realpath(sys.executable)
path = exe
while True:
    need = stat.S_IXOTH | (0 if os.path.isdir(path) else stat.S_IROTH)
    assert os.stat(path).st_mode & need == need
    if path == "/":
        break
    path = os.path.dirname(path)
print(exe)
PY
done
exit 1
