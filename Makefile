# `make demo` and `make test` each set up a fresh machine by themselves, then run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.prefrl-installed
# On a CPU-only machine the CPU build of torch is installed first (a bare `torch` pulls a multi-GB CUDA build).
TORCH_CPU ?= torch==2.13.0

export SDL_VIDEODRIVER ?= dummy
export SDL_AUDIODRIVER ?= dummy
export MUJOCO_GL ?= egl

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if ! $(BIN)/python -c "import torch" 2>/dev/null; then \
	  if command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q torch; \
	  else $(BIN)/pip install -q "$(TORCH_CPU)"; fi; fi
	$(BIN)/pip install -q -e '.[dev,atari,llm,web,ray,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/prefrl demo --out runs/demo-$$(date +%Y%m%d-%H%M%S)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy prefrl envs ui scripts

test: lint
	$(BIN)/python -m pytest -q --durations=12

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
