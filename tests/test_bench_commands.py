"""The benchmark commands themselves: ``bench/gpu.sh --check`` (the GPU benchmark's measuring path, on this
CPU with a scaled-down shape) and ``coderflash bench`` (one JSON and a Markdown table of every suite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "coderflash")


def test_gpu_sh_check_measures_the_same_path_on_a_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu-check.json"
    run = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh"), "--check", "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["check"] and data["shape"] == "check" and [r["kv_cache_type"] for r in data["runs"]] == ["f16", "q8_0"]
    for r in data["runs"]:
        assert set(r["prefill_tokens_per_s"]) == {"512", "2048", "4096"}
        assert all(v > 0 for v in r["prefill_tokens_per_s"].values())
        assert r["decode_tokens_per_s"] > 0 and r["peak_memory_mb"] > 0
        # a warmed prefix evaluates only the new tokens; the snapshot round-trips the whole prefix
        assert r["warm_evaluated_tokens"] <= 65 and r["warm_ttft_ms_at_max"] < r["cold_ttft_ms_at_max"]
        assert r["kv_restored_tokens"] >= 4096 and r["kv_snapshot_mb"] > 0  # the prefix (and what followed it)
    f16, q8 = data["runs"]
    assert q8["kv_snapshot_mb"] < f16["kv_snapshot_mb"]  # q8_0 KV: about half the bytes


def test_gpu_sh_without_a_gpu_says_so() -> None:
    run = subprocess.run(["bash", str(REPO / "bench" / "gpu.sh")], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2 and "nvidia-smi" in run.stderr


def test_coderflash_bench_tables_the_suites_figures(tmp_path: Path) -> None:
    """``coderflash bench decode`` end to end would take minutes of the real model; the table is built from the
    same suite runner on the committed results of two suites, and the command's interface is checked."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import run_all
    finally:
        sys.path.remove(str(REPO / "bench"))
    load = run_all.SUITES["lsp"][1](json.loads((REPO / "bench/results/load.json").read_text()))
    decode = run_all.SUITES["decode"][1](json.loads((REPO / "bench/results/decode.json").read_text()))
    assert [r["figure"] for r in load][0].startswith("completion p95 under 2,000 didChange/s")
    assert all(r["value"] is not None and r["baseline"] for r in load)
    assert decode[0]["target"] == "≥ 1.5x" and "without" in decode[0]["baseline"]
    table = run_all.markdown({"started": 0, "machine": {"cpus": 2}, "suites": {"lsp": {"rows": load},
                                                                              "decode": {"rows": decode}}})
    assert table.count("\n| lsp |") == 3 and "| decode | identical greedy outputs |" in table
    run = subprocess.run([COMMAND, "bench", "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "{index,context,quality,typing,lsp,decode,all}" in run.stdout
    run = subprocess.run([COMMAND, "bench", "nonsense"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "invalid choice" in run.stderr
