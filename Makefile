# Stable entry points: setup, deploy, teardown, test, bench (see README).
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(CURDIR)/.tools/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
INVENTORY ?= inventory/local
PYTEST_ARGS ?=

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
	@for b in bench/*.py; do echo "== $$b"; python $$b || exit 1; done

clean:
	rm -rf .venv .tools .pytest_cache .ruff_cache *.egg-info
