"""Server overhead per inline completion: LSP round trip minus the engine's own time, over stdio.

Usage: .venv/bin/python bench/server_overhead.py --out bench/results/server_overhead.json [--requests 300]

Sequential requests (each waits for its answer) at changing positions in a real file, against the real
server and the tiny synthesized model. The server records each completion's engine time (submit → result
on the inference worker); the benchmark subtracts it from the client-side round trip of the same request.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lsp"))
sys.path.insert(0, str(REPO))

from rawlsp import RawLspProcess  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench/results/server_overhead.json")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    from engine.model.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        model = synthesize(tmp_path / "tiny.gguf", "tiny")
        repo = tmp_path / "repo"
        shutil.copytree(REPO / "examples" / "sample_repo", repo)
        server = RawLspProcess(env={"CODERFLASH_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"})
        server.initialize(repo.as_uri(), {"model": str(model), "llama": {"n_ctx": 8192},
                                          "completion": {"max_tokens": 16}})
        path = repo / "main.py"
        uri = path.as_uri()
        text = path.read_text()
        server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                                "version": 1, "text": text}})
        lines = text.split("\n")
        round_trips: list[float] = []
        for i in range(args.requests + 20):
            line = (i * 7) % len(lines)
            character = (i * 3) % (len(lines[line]) + 1)
            start = time.perf_counter()
            rid = server.request("textDocument/inlineCompletion", {
                "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
                "context": {"triggerKind": 1}})
            server.response(rid, timeout=60)
            if i >= 20:  # the first requests load the model and build the index
                round_trips.append((time.perf_counter() - start) * 1000)
        rid = server.request("coderflash/status", {"timings": True})
        engine_ms = server.response(rid)["result"]["engine_ms"][-args.requests:]
        server.close()
    overhead = [rt - eng for rt, eng in zip(round_trips, engine_ms)]
    result = {
        "requests": len(overhead),
        "round_trip_ms": {"p50": percentile(round_trips, 0.5), "p95": percentile(round_trips, 0.95)},
        "engine_ms": {"p50": percentile(engine_ms, 0.5), "p95": percentile(engine_ms, 0.95)},
        "overhead_ms": {"p50": percentile(overhead, 0.5), "p95": percentile(overhead, 0.95),
                        "mean": statistics.fmean(overhead)},
        "target_overhead_p95_ms": 5.0,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
