# channelcoder — every target is idempotent and safe to re-run.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
CLAUDE_CODE_VERSION := $(shell tr -d '[:space:]' < server/channelcoder/sandbox/image/claude-code.version)
PYTEST_ARGS ?=

.PHONY: help setup engine image demo test lint unit bench clean

help:
	@echo "make demo    run a scripted job end to end (real Claude CLI, scripted model)"
	@echo "make test    setup + engine + ruff + mypy + the whole test suite"
	@echo "make setup   .venv and the pinned Claude Code CLI ($(CLAUDE_CODE_VERSION))"
	@echo "make engine  reuse or start a Docker engine; make the base image present"
	@echo "make image   build the sandbox image from ./Dockerfile (a no-op when up to date)"
	@echo "make bench   benchmarks (printed tables + JSON under bench/results/)"

setup:
	@scripts/setup.sh

engine:
	@scripts/engine.sh

image: setup engine
	@$(PY) -m channelcoder image build -q

demo: setup engine
	@$(PY) scripts/demo.py

lint: setup
	$(VENV)/bin/ruff check server tests bench scripts
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

test: setup engine lint image
	@set +e; $(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

bench: setup engine
	$(PY) bench/run_all.py

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist
