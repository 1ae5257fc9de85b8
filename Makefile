# Stable entry points: setup, deploy, teardown, test, bench (see README).
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(CURDIR)/.tools/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
INVENTORY ?= inventory/local
PYTEST_ARGS ?=
BENCH_KEPT ?= .jupiter/bench-kept

.PHONY: setup deploy teardown test lint unit bench clean

setup:  ## idempotent install: .venv + pinned packages + helm
	@bash hack/setup.sh

deploy: setup  ## set up, then run deploy.yml on the default (emulated) inventory
	ansible-playbook -i $(INVENTORY) deploy.yml $(ANSIBLE_ARGS)

teardown: setup
	ansible-playbook -i $(INVENTORY) teardown.yml $(ANSIBLE_ARGS)

lint: setup  ## ruff, yamllint, ansible-lint, syntax-check, helm lint
	bash hack/lint.sh

test: setup lint  ## every test
	pytest $(PYTEST_ARGS)

bench: setup  ## the benchmarks (print figures with machine + baseline)
	@rm -rf $(BENCH_KEPT)
	@for b in $(filter-out bench/calibrate.py bench/mapping.py,$(wildcard bench/*.py)); do \
	  echo "== $$b"; python $$b || exit 1; done
	@echo "== bench/mapping.py"; python bench/mapping.py --keep $(BENCH_KEPT)
	@echo "== bench/calibrate.py (on the deployments bench/mapping.py kept)"; \
	  python bench/calibrate.py $(BENCH_KEPT)

clean:
	rm -rf .venv .tools .pytest_cache .ruff_cache *.egg-info
