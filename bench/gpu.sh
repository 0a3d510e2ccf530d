#!/usr/bin/env bash
# GPU benchmark of the Qwen3-Coder-30B-A3B shape (bench/gpu_bench.py) on a bare NVIDIA machine with CUDA.
#
#   bench/gpu.sh --prepare DIR   on a machine with network: put llama-cpp-python's sdist (pinned) and the
#                                wheels it needs into DIR, to carry to the GPU machine
#   bench/gpu.sh [--wheels DIR] [--out FILE]
#                                on the GPU machine, no network: build llama-cpp-python with -DGGML_CUDA=on
#                                from DIR (default: shared/gpu-wheels) into a virtual environment, synthesize
#                                the model with the real Qwen3 vocabulary (from the sdist), measure, write
#                                FILE (default: bench/results/gpu.json). One run fits in 10 minutes.
#   bench/gpu.sh --check [--out FILE]
#                                the same measuring path on a CPU with a scaled-down shape, in the
#                                project's environment (under 2 minutes; the test suite runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_PYTHON="llama-cpp-python==$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml | head -1)"
mode=run
wheels=shared/gpu-wheels
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --check) mode=check ;;
    --prepare) mode=prepare; wheels="$2"; shift ;;
    --wheels) wheels="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

python_bin() {
  if [ -x .venv/bin/python ]; then echo .venv/bin/python; else command -v python3; fi
}

case "$mode" in
  check)
    exec "$(python_bin)" bench/gpu_bench.py --check --out "${out:-bench/results/gpu-check.json}"
    ;;
  prepare)
    mkdir -p "$wheels"
    py="$(python_bin)"
    "$py" -m pip download --no-deps --no-binary :all: -d "$wheels" "$LLAMA_CPP_PYTHON"
    "$py" -m pip download -d "$wheels" numpy jinja2 diskcache typing-extensions gguf platformdirs \
      scikit-build-core cmake ninja pathspec packaging
    echo "gpu.sh: carry $wheels to the GPU machine (bench/gpu.sh --wheels $wheels)"
    ;;
  run)
    command -v nvidia-smi >/dev/null || { echo "gpu.sh: no nvidia-smi: not an NVIDIA machine (try --check)" >&2; exit 2; }
    command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "gpu.sh: no nvcc (CUDA toolkit)" >&2; exit 2; }
    export PATH="/usr/local/cuda/bin:$PATH"
    sdist="$(ls "$wheels"/llama_cpp_python-*.tar.gz 2>/dev/null | head -1)"
    [ -n "$sdist" ] || { echo "gpu.sh: no llama-cpp-python sdist in $wheels (bench/gpu.sh --prepare $wheels on a machine with network)" >&2; exit 2; }
    venv="${GPU_VENV:-/tmp/coderflash-gpu-venv}"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 1)" 2>/dev/null; then
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q --no-index --find-links "$wheels" numpy jinja2 diskcache typing-extensions gguf platformdirs
      CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=native" FORCE_CMAKE=1 \
        "$venv/bin/pip" install -q --no-index --find-links "$wheels" --no-build-isolation "$sdist" \
        || CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=native" FORCE_CMAKE=1 \
           "$venv/bin/pip" install -q --no-index --find-links "$wheels" "$sdist"
    fi
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    work="$(mktemp -d /tmp/gpu-bench-XXXXXX)"
    # the real Qwen3 vocabulary comes out of the same sdist (engine/model/synth.py reads it from there)
    mkdir -p "$work/vocab"
    tar -xzf "$sdist" -C "$work" --wildcards '*/vendor/llama.cpp/models/ggml-vocab-qwen2.gguf'
    export CODERFLASH_QWEN3_VOCAB="$(find "$work" -name ggml-vocab-qwen2.gguf | head -1)"
    "$venv/bin/python" bench/gpu_bench.py --work "$work" --out "${out:-bench/results/gpu.json}"
    rm -rf "$work"
    ;;
esac
