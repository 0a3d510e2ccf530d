"""Time to first token with the real model at 2K/8K/32K: cold, warm (the next keystroke), and a restart that
restores the saved repository prefix, against a cold start, side by side in one run.

The repository is 600 files of this interpreter's standard library (cold index); the engine builds its own
prompt (``context.budget`` = each size) at a function body in ``argparse.py``; the first-token target is
off (this measures what the full prompt costs). Per size:

- cold: an empty KV cache, the whole prompt evaluated;
- warm: one character typed at the cursor, everything before it resident;
- restart: a new engine process-state (model loaded again) whose warm-up restores the repository prefix's
  snapshot written by the first engine, then the same completion — against the cold figure.

Run: ``.venv/bin/python bench/ttft_bench.py --out bench/results/ttft.json`` (about 15 minutes here for the
0.5B model; ``--model qwen2.5-coder-1.5b`` after ``coderflash model pull qwen2.5-coder-1.5b``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "lsp"))
sys.path.insert(0, str(REPO / "bench"))

from latency_bench import keystroke_buffers, typing_spot  # noqa: E402
from real_repos import copy_stdlib  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.service import Engine  # noqa: E402


def engine_for(args, repo: Path, cache: Path, budget: int) -> Engine:
    config = Config(model=args.model, cache_dir=str(cache))
    config.context.budget = budget
    config.llama.n_ctx = max(4096, budget + 1024)
    config.llama.threads = args.threads
    config.completion.latency_target = False
    config.completion.timeout_ms = 1_800_000
    config.completion.max_tokens = 16
    return Engine(config, repo)


def ttft(out) -> float:
    return round(out.result.first_token_ms or out.result.elapsed_ms, 1)


def run_size(args, repo: Path, work: Path, budget: int) -> dict:
    cache = work / f"cache-{budget}"
    path = repo / args.file
    text, line, typed = typing_spot(path.read_text(), args.line, 1)
    character = len(text.split("\n")[line])
    engine = engine_for(args, repo, cache, budget)
    engine.reindex()
    engine.document_opened(path, text)
    cold = engine.complete(path, text, line, character, use_cache=False)
    engine.runtime.scheduler.wait_idle(timeout=1800)  # the repository prefix's snapshot is written
    engine.host.backend.flush_snapshots()
    typed_text, _, typed_character = next(keystroke_buffers(text, line, typed, 1))  # one character typed
    warm = engine.complete(path, typed_text, line, typed_character, use_cache=False)
    engine.close()

    again = engine_for(args, repo, cache, budget)  # a restart: same cache directory, model loaded again
    again.reindex()
    again.document_opened(path, text)
    t0 = time.perf_counter()
    warm_up = again.warm_up(path, text, line, character).result()
    restore_s = time.perf_counter() - t0
    restarted = again.complete(path, text, line, character, use_cache=False)
    again.close()
    return {"budget": budget, "prompt_tokens": cold.result.prompt_tokens,
            "cold_ttft_ms": ttft(cold), "cold_evaluated": cold.result.evaluated_tokens,
            "warm_ttft_ms": ttft(warm), "warm_evaluated": warm.result.evaluated_tokens,
            "restart_warm_up": {k: warm_up.get(k) for k in ("source", "prefix_tokens", "evaluated_tokens")},
            "restart_restore_s": round(restore_s, 2),
            "restart_ttft_ms": ttft(restarted), "restart_evaluated": restarted.result.evaluated_tokens,
            "restart_total_ms": round(restore_s * 1000 + ttft(restarted), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--budgets", type=int, nargs="+", default=[2048, 8192, 32768])
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--file", default="argparse.py")
    ap.add_argument("--line", type=int, default=1400)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ttft-bench-"))
    repo = copy_stdlib(work / "repo", files=args.files)
    data = {"config": {k: v for k, v in vars(args).items() if k != "out"},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "sizes": []}
    for budget in args.budgets:
        data["sizes"].append(run_size(args, repo, work, budget))
        print(json.dumps(data["sizes"][-1]), file=sys.stderr, flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
