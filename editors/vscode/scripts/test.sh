#!/usr/bin/env bash
# VS Code extension checks for CI (called by scripts/test.sh): npm install, tsc, unit tests (node --test),
# .vsix packaging, then the code-server end-to-end test when its prerequisites install (skipped with the
# reason printed otherwise; CODERFLASH_E2E=0 skips it, CODERFLASH_E2E=1 makes a failed setup an error).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(cd ../.. && pwd)"
start=$SECONDS

if ! command -v npm >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  command -v npm >/dev/null || { echo "vscode: node/npm are missing and could not be installed" >&2; exit 1; }
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || { echo "vscode: Node $node_major is too old (need 20+)" >&2; exit 1; }

echo "== vscode: npm ci"
npm ci --no-audit --no-fund --loglevel=error
echo "== vscode: tsc"
npx tsc -p .
echo "== vscode: unit tests"
node --test out/test/
echo "== vscode: package"
npx vsce package --allow-missing-repository --skip-license -o coderflash.vsix >/dev/null
ls -l coderflash.vsix

if [ "${CODERFLASH_E2E:-auto}" = 0 ]; then
  echo "== vscode: e2e SKIPPED (CODERFLASH_E2E=0)"
  exit 0
fi
echo "== vscode: e2e setup"
if ! reason=$(bash scripts/e2e-setup.sh 2>&1 >/dev/null | tail -1) || [ ! -f .e2e/node24.path ]; then
  if [ "${CODERFLASH_E2E:-auto}" = 1 ]; then
    echo "vscode: e2e setup failed: $reason" >&2; exit 1
  fi
  echo "== vscode: e2e SKIPPED: $reason"
  exit 0
fi
server="$REPO/.venv/bin/coderflash"
[ -x "$server" ] || server="$(command -v coderflash || true)"
[ -n "$server" ] || { echo "vscode: no coderflash executable for the e2e test" >&2; exit 1; }
model="$(mktemp -d)/tiny.gguf"
"$server" model synth "$model" --shape tiny >/dev/null
echo "== vscode: e2e (code-server + chromium)"
timeout 600 node e2e/run.js --vsix coderflash.vsix --server "$server" --model "$model" ${CODERFLASH_SCREENSHOTS:+--screenshots "$CODERFLASH_SCREENSHOTS"}
echo "== vscode: done in $((SECONDS - start)) s"
