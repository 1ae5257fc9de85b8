#!/usr/bin/env bash
# Static checks run by `make test`: every one must be clean.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PWD/.tools/bin:$PATH"
echo "== ruff"; ruff check jupiter tests bench filter_plugins library action_plugins
echo "== yamllint"; yamllint -s .
echo "== ansible-playbook --syntax-check"
for p in deploy.yml teardown.yml playbooks/*.yml; do
  ansible-playbook --syntax-check -i inventory/local "$p" >/dev/null
  echo "ok $p"
done
echo "== ansible-lint (production profile)"; ansible-lint --profile production -q
if [ -d charts ]; then
  echo "== helm lint --strict"
  for c in charts/*/; do helm lint --strict "$c"; done
fi
if compgen -G "images/*Dockerfile*" >/dev/null || compgen -G "images/*/Dockerfile" >/dev/null; then
  echo "== hadolint"; find images -name Dockerfile -print0 | xargs -0 hadolint
fi
