# Two commands set up a fresh machine: `make run` and `make test`.
# Both install what is missing (Debian's fuse3, a .venv with the pinned
# Python dependencies) and are safe to repeat.

SHELL := /bin/bash
PYTHON ?=
VENV ?= .venv
PY := $(VENV)/bin/python
SEMFS := $(VENV)/bin/semfs
STAMP := $(VENV)/.installed
DEMO_BACKING ?= build/demo
DEMO_MNT ?= mnt

.PHONY: run test lint install system-deps stop bench bench-posix bench-deps bench-fm clean

run: install
	@if [ ! -d "$(DEMO_BACKING)" ]; then mkdir -p "$(dir $(DEMO_BACKING))" && cp -a demo "$(DEMO_BACKING)"; fi
	@mkdir -p "$(DEMO_MNT)"
	@if $(SEMFS) status "$(DEMO_MNT)" | grep -q ': mounted$$'; then \
		echo "$(DEMO_MNT) is already mounted"; \
	else \
		$(SEMFS) mount "$(DEMO_BACKING)" "$(DEMO_MNT)"; \
	fi
	@echo
	@echo "Try:"
	@printf '  %-58s # %s\n' \
		"ls $(DEMO_MNT)" "the demo folder, through semfs" \
		"ls \"$(DEMO_MNT)/query/notes about the budget meeting last march/\"" "a prompt is a path" \
		"cat \"$(DEMO_MNT)/query/how to bake bread/.results.json\"" "scores and snippets" \
		"ls $(DEMO_MNT)/similar/recipes/sourdough.md/" "files like that one" \
		"cat $(DEMO_MNT)/summary/inbox/todo.txt" "a summary by the local LLM" \
		"echo hi > $(DEMO_MNT)/hello.txt" "lands in $(DEMO_BACKING) at once" \
		"$(SEMFS) status $(DEMO_MNT)" "index, queue, model" \
		"make stop" "unmount"
	@echo "(the first minute after mounting, the demo is still being indexed)"

stop:
	@$(SEMFS) unmount "$(DEMO_MNT)"

test: install lint
	$(PY) -m pytest -q

# The gate every change passes (CI runs it through make test): ruff's lint and format, mypy.
lint: install
	$(PY) -m ruff check semfs tests scripts
	$(PY) -m ruff format --check semfs tests scripts
	$(PY) -m mypy semfs

install: system-deps $(STAMP)

# Debian keeps ldconfig in /sbin, outside an ordinary user's PATH. Root
# installs what is missing; anyone else is told the one command and make stops.
system-deps:
	@if ! command -v fusermount3 >/dev/null || ! PATH="$$PATH:/usr/sbin:/sbin" ldconfig -p | grep -q 'libfuse3\.so\.3'; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3; \
		else \
			echo "semfs needs Debian's fuse3 package (fusermount3 and libfuse3): sudo apt-get install fuse3" >&2; exit 1; \
		fi; \
	fi

# llama.cpp compiled for a baseline every x86-64 of the last decade runs
# (AVX2/FMA/F16C/BMI2), never -march=native: a CPU (or a VM) may advertise
# instructions it does not let a process run (AMX), and the user's CPU is not
# the builder's. On other architectures, the compiler's default target.
LLAMA_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF
else
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF
endif
# pip's wheel cache is keyed by name and version, not CMAKE_ARGS: a wheel it
# kept from a native build would come back. So the wheel is built without
# pip's cache into a folder of our own, keyed by version, flags and arch.
LLAMA_KEY := $(shell printf '%s|%s|%s' "$(LLAMA_VERSION)" "$(LLAMA_CMAKE_ARGS)" "$(ARCH)" | sha256sum | cut -c1-12)
WHEELS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/semfs/wheels/llama-$(LLAMA_KEY)
LLAMA_WHEEL := $(WHEELS)/.built

# The .venv comes from a Python every user may run: the suite runs the daemon
# as an unprivileged user, and python3 on PATH may be in a private home.
MAKE_VENV = [ -x "$(PY)" ] || { p="$$(PYTHON="$(PYTHON)" sh scripts/shared_python.sh)" || { \
	echo "semfs needs Python 3.11 or newer with venv where every user can run it: sudo apt-get install python3 python3-venv" >&2; exit 1; }; \
	echo "making $(VENV) from $$p"; "$$p" -m venv "$(VENV)"; }

# torch first, as the CPU build: anything that pulls torch later finds it
# satisfied instead of fetching a CUDA build of several GB. Then our own
# llama.cpp wheel (replacing any other build of the same version), then
# the rest, which brings the wheel's dependencies too.
$(STAMP): pyproject.toml $(LLAMA_WHEEL)
	@$(MAKE_VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --force-reinstall --no-deps --no-index --find-links "$(WHEELS)" "llama-cpp-python==$(LLAMA_VERSION)"
	$(PY) -m pip install -q -e '.[team,test]'
	$(PY) -m semfs.models.smoke
	$(PY) -m semfs.models.onnx_minilm
	@touch "$(STAMP)"

$(LLAMA_WHEEL):
	@$(MAKE_VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo "building llama-cpp-python $(LLAMA_VERSION) for a portable $(ARCH) target (about 5 min)"
	@mkdir -p "$(WHEELS)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(PY) -m pip wheel -q --no-cache-dir --no-deps \
		--no-binary llama-cpp-python -w "$(WHEELS)" "llama-cpp-python==$(LLAMA_VERSION)"
	@touch "$(LLAMA_WHEEL)"

# $(call debs,COMMAND:PACKAGE ...,WHO): root installs the Debian packages whose command is
# missing; anyone else is told the one line (WHO needs ...) and make stops.
define debs
	@missing=""; for t in $(1); do \
		command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "$(2) needs Debian's$$missing: sudo apt-get install$$missing" >&2; exit 1; \
		fi; \
	fi
endef

bench-deps: install
	$(call debs,bindfs:bindfs autoreconf:autoconf automake:automake prove:perl git:git cc:gcc,the benchmark)

# File managers under a virtual screen (scripts/bench_file_managers.py); screenshots in build/fm.
bench-fm: install
	$(call debs,Xvfb:xvfb xdotool:xdotool import:imagemagick thunar:thunar pcmanfm:pcmanfm dbus-launch:dbus-x11,the file-manager benchmark)
	$(PY) scripts/bench_file_managers.py --shots build/fm

bench: bench-deps
	$(PY) scripts/bench_fs.py

bench-posix: bench-deps
	$(PY) scripts/bench_posix.py

clean:
	rm -rf build .pytest_cache
