"""The server on a real repository: cold time to first completion, memory of the server's process tree,
and how fast a branch switch reaches the index.

Usage: .venv/bin/python bench/real_repo_bench.py --out bench/results/real_repo.json [--files 600] [--model GGUF]

1. ``coderflash serve`` over stdio (the console script, as an editor starts it), cold cache, on a copy of
   ``--files`` standard-library source files; the first inline completion is requested right after
   didOpen, while the index is still being built. Reported: initialize, first completion and index
   times; peak RSS of the server plus every descendant (parser processes), sampled every 20 ms.
2. The same engine the server runs (index built in the background, the disk watched): a branch switch
   rewriting 300 files (100 deleted, 100 changed, 50 rewritten identical, 50 created) plus one provider
   and its consumer; reported: seconds from the last write until a context for the consumer shows the
   provider's new definition, and files parsed (must equal the files whose content changed).
Without ``--model`` the tiny synthesized model is used (the index and server costs do not depend on it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lsp"))
sys.path.insert(0, str(REPO))

from rawlsp import RawLspProcess  # noqa: E402
from real_repos import COMMAND, copy_stdlib, descendants  # noqa: E402


def rss_mb(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cold_server(repo: Path, model: Path, cache: Path) -> dict:
    server = RawLspProcess(argv=[COMMAND, "serve"], env={"CODERFLASH_CACHE_DIR": str(cache)}, answer_requests=True)
    peak = {"rss_mb": 0.0, "processes": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            tree = {server.proc.pid} | descendants(server.proc.pid)
            peak["rss_mb"] = max(peak["rss_mb"], rss_mb(tree))
            peak["processes"] = max(peak["processes"], len(tree))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        t0 = time.monotonic()
        server.call("initialize", {"processId": os.getpid(), "rootUri": repo.as_uri(),
                                   "capabilities": {"window": {"workDoneProgress": True}},
                                   "initializationOptions": {"model": str(model)}}, timeout=60)
        server.notify("initialized", {})
        initialize_s = time.monotonic() - t0
        target = repo / "asyncio" / "tasks.py"
        server.notify("textDocument/didOpen", {"textDocument": {"uri": target.as_uri(), "languageId": "python",
                                                                "version": 1, "text": target.read_text()}})
        rid = server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": target.as_uri()}, "position": {"line": 30, "character": 0},
            "context": {"triggerKind": 2}})
        reply = server.response(rid, timeout=300)
        first_completion_s = time.monotonic() - t0
        while True:
            index = server.call("coderflash/status", {})["result"]["workspaces"][0]["index"]
            if index["state"] in ("ready", "error"):
                break
            time.sleep(0.05)
        index_ready_s = time.monotonic() - t0
        status = server.call("coderflash/status", {})["result"]
        server.close()
    finally:
        stop.set()
        if server.proc.poll() is None:
            server.proc.kill()
    return {"initialize_s": round(initialize_s, 3), "first_completion_s": round(first_completion_s, 3),
            "first_completion_answered": "result" in reply,
            "first_completion_text": [i["insertText"] for i in (reply.get("result") or {}).get("items", [])][:1],
            "index_ready_s": round(index_ready_s, 3),
            "index": index, "peak_rss_mb_server_tree": round(peak["rss_mb"], 1),
            "peak_processes_in_tree": peak["processes"], "model_loads": status["counters"]["model_loads"]}


def branch_switch(repo: Path, model: Path, cache: Path) -> dict:
    from engine.config import Config, LlamaConfig
    from engine.service import Engine

    (repo / "shop").mkdir()
    (repo / "shop" / "pricing.py").write_text("def compute_total(items):\n    return sum(items)\n")
    consumer = repo / "shop" / "checkout.py"
    consumer.write_text("from shop.pricing import compute_total\n\n\ndef pay(items):\n    amount = compute_total(items)\n")
    config = Config(model=str(model), cache_dir=str(cache))
    config.llama = LlamaConfig(n_ctx=8192)
    engine = Engine(config, repo, background_index=True)
    engine.reindex()
    mode = engine.start_watching()
    index = engine.repo_index()
    files = sorted(p for p in repo.rglob("*.py") if p.parent != repo / "shop")

    def replace(path: Path, text: str) -> None:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text)
        os.replace(temporary, path)

    before = index.parsed_total
    started = time.monotonic()
    for path in files[:100]:
        path.unlink()
    for path in files[100:200]:
        replace(path, path.read_text() + "\n# other branch\n")
    for path in files[200:250]:
        replace(path, path.read_text())
    (repo / "newpkg").mkdir()
    for i in range(50):
        (repo / "newpkg" / f"mod_{i}.py").write_text(f"def generated_{i}(x):\n    return x + {i}\n")
    replace(repo / "shop" / "pricing.py", "def compute_grand_total(items, tax_rate):\n    return sum(items)\n")
    new_consumer = "from shop.pricing import compute_grand_total\n\n\ndef pay(items):\n    amount = compute_grand_total(items, 0.2)\n"
    replace(consumer, new_consumer)
    settled = time.monotonic()
    expected = 100 + 50 + 2
    while time.monotonic() - settled < 60:
        prompt = engine.build_context(consumer, new_consumer, 4, len("    amount = ")).prompt
        if "def compute_grand_total(items, tax_rate)" in prompt and index.parsed_total - before >= expected:
            break
        time.sleep(0.01)
    reflected_s = time.monotonic() - settled
    time.sleep(1.0)
    parsed = index.parsed_total - before
    engine.close()
    return {"watch_mode": mode, "files_touched": 302, "write_s": round(settled - started, 3),
            "reflected_after_settle_s": round(reflected_s, 3), "files_parsed": parsed,
            "files_with_new_content": expected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench/results/real_repo.json")
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--model", default="")
    args = parser.parse_args()
    from engine.model.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = Path(args.model) if args.model else synthesize(root / "tiny.gguf", "tiny", seed=0)
        result = {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "files": args.files, "model": str(model if args.model else "tiny synthesized"),
            "cold_server": cold_server(copy_stdlib(root / "a", args.files), model, root / "cache-a"),
            "branch_switch": branch_switch(copy_stdlib(root / "b", args.files), model, root / "cache-b"),
        }
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
