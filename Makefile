# Two commands set up a fresh machine: `make run` and `make test`.
# Both install what is missing (Debian's fuse3, a .venv with the pinned
# Python dependencies) and are safe to repeat.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SEMFS := $(VENV)/bin/semfs
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_BACKING ?= build/demo
DEMO_MNT ?= mnt

.PHONY: run test install system-deps stop bench bench-deps clean

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

test: install
	$(PY) -m pytest -q

install: system-deps $(STAMP)

system-deps:
	@if ! command -v fusermount3 >/dev/null || ! ldconfig -p | grep -q 'libfuse3\.so\.3'; then \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq fuse3; \
	fi

# torch first, as the CPU build: anything that pulls torch later finds it
# satisfied instead of fetching a CUDA build of several GB.
$(STAMP): pyproject.toml
	@[ -x "$(PY)" ] || $(PYTHON) -m venv "$(VENV)"
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	@touch "$(STAMP)"

bench-deps: install
	@command -v bindfs >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq bindfs; }

bench: bench-deps
	$(PY) scripts/bench_fs.py

clean:
	rm -rf build .pytest_cache
