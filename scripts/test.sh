#!/usr/bin/env bash
# Install everything the tests need, then run the whole test suite (README's test command, run by CI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
status=0
.venv/bin/python -m pytest -q -ra "$@" || status=$?
if [ -f editors/vscode/package.json ]; then
  bash editors/vscode/scripts/test.sh || status=$?
fi
exit $status
