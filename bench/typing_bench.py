"""Typing replay: what KV reuse, cancellation and prefix snapshots buy, measured in one run.

A ≥1,000-line real file (the Python standard library's ``argparse.py``) is "typed" again one character at
a time at a point inside it; every keystroke asks ``Engine.complete`` for an inline completion with
≥32K tokens of repository context in front (stdlib files in Qwen's ``<|file_sep|>`` layout; the context
engine's own repository builder can replace it once it is committed). Compared in the same run:

- incremental: the engine as shipped (one KV sequence, only tokens after the common prefix evaluated);
- scratch: the same prompts re-evaluated from an empty KV cache (sampled keystrokes, mean per keystroke);
- cancellation: a long generation superseded by a newer keystroke — time until it has stopped;
- restart: a new engine restoring the saved repository-prefix snapshot vs a cold one, time to the first
  completion.

Run: ``.venv/bin/python bench/typing_bench.py --out /tmp/typing.json`` (tiny synthesized model by default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import Config, LlamaConfig  # noqa: E402
from engine.context.result import ContextResult, Section, split_at_cursor  # noqa: E402
from engine.service import Engine  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
REPO_FILES = ["json/decoder.py", "json/encoder.py", "json/__init__.py", "csv.py", "shlex.py", "textwrap.py",
              "string.py", "fnmatch.py", "glob.py", "copy.py", "heapq.py", "bisect.py", "queue.py",
              "sched.py", "contextlib.py", "functools.py", "dataclasses.py", "enum.py", "pathlib.py",
              "tempfile.py", "shutil.py", "subprocess.py", "logging/__init__.py"]


class BenchContext:
    """Prompt = repository files (stable) + current file window anchored at a line (moves in big steps)."""

    def __init__(self, engine: Engine, repo_tokens: int, window_tokens: int, suffix_tokens: int) -> None:
        backend = engine.backend
        self.backend = backend
        self.fmt = backend.prompt_format
        self.repo: list[Any] = self.fmt.repo_header("cpython-lib")
        self.files: list[str] = []
        used = 0
        for rel in REPO_FILES:
            text = (STDLIB / rel).read_text(encoding="utf-8")
            block = self.fmt.file_block("Lib/" + rel, text)
            self.repo += block
            self.files.append(rel)
            used += len(backend.pieces_to_ids(block))
            if used >= repo_tokens:
                break
        self.repo_tokens = len(backend.pieces_to_ids(self.repo))
        self.window_tokens = window_tokens
        self.suffix_tokens = suffix_tokens
        self.anchor: int | None = None

    def build(self, path: str, text: str, line: int, character: int, budget: int | None = None) -> ContextResult:
        prefix, suffix = split_at_cursor(text, line, character)
        lines = prefix.split("\n")
        if self.anchor is None or self.anchor > len(lines) - 1:
            self.anchor = max(0, (len(lines) - 200) // 100 * 100)  # deterministic: same across restarts
        window = "\n".join(lines[self.anchor:])
        while len(self.backend.tokenize(window)) > self.window_tokens:  # move the anchor in big steps
            self.anchor += 100
            window = "\n".join(lines[self.anchor:])
        tail = "".join(suffix.splitlines(keepends=True)[:40])
        while len(self.backend.tokenize(tail)) > self.suffix_tokens:
            tail = tail[: len(tail) // 2]
        pieces = self.repo + self.fmt.current_file_header(path) + self.fmt.infill(window, tail)
        return ContextResult(pieces, "", 0, budget or 0, "bench", self.repo_tokens,
                             [Section("repository", "", "", self.repo_tokens)], 0.0, window, tail)


def make_engine(model: Path, cache: Path, root: Path, n_ctx: int, max_tokens: int) -> Engine:
    cfg = Config(model=str(model), cache_dir=str(cache))
    cfg.llama = LlamaConfig(n_ctx=n_ctx)
    cfg.completion.max_tokens = max_tokens
    cfg.completion.timeout_ms = 120_000
    cfg.completion.latency_target = False  # this measures reuse of the whole prompt, not the first-token target
    return Engine(cfg, root)


def attach_context(engine: Engine, args: argparse.Namespace) -> BenchContext:
    ctx = BenchContext(engine, args.repo_tokens, args.window_tokens, args.suffix_tokens)
    engine.build_context = ctx.build  # type: ignore[method-assign]
    return ctx


def typing_script(source: str, keystrokes: int, start_line: int) -> tuple[str, int, str]:
    """(text before the typed span, its offset, the span that is typed again)."""
    lines = source.splitlines(keepends=True)
    offset = sum(len(x) for x in lines[:start_line])
    span = source[offset:offset + keystrokes]
    return source[:offset] + source[offset + keystrokes:], offset, span


def empty_block_line(source: str, start_line: int) -> tuple[str, int, int]:
    """The file with a blank, indented line inserted after the first block opener at/after ``start_line``:
    the cursor there asks for a multi-line completion (an empty block body)."""
    lines = source.split("\n")
    for i in range(start_line, len(lines) - 1):
        if lines[i].rstrip().endswith(":") and lines[i].lstrip().startswith(("def ", "if ", "for ")):
            nxt = lines[i + 1]
            indent = nxt[: len(nxt) - len(nxt.lstrip())]
            text = "\n".join(lines[: i + 1] + [indent] + lines[i + 1:])
            return text, i + 1, len(indent)
    raise ValueError("no block opener found")


def line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n"), offset - (before.rfind("\n") + 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="typing-bench-"))
    model = Path(args.model) if args.model else None
    if model is None:
        from engine.model.synth import synthesize

        model = synthesize(work / "tiny.gguf", "tiny", seed=0)
    root = work / "repo"
    root.mkdir()
    source = (STDLIB / args.file).read_text(encoding="utf-8")
    base, offset, span = typing_script(source, args.keystrokes, args.line)
    path = root / Path(args.file).name
    report: dict[str, Any] = {"model": str(model), "file": args.file, "file_lines": source.count("\n"),
                              "keystrokes": len(span), "n_ctx": args.n_ctx, "cpu_count": os.cpu_count(),
                              "loadavg_start": os.getloadavg()}

    # -- incremental typing through the engine ------------------------------------------------------------
    engine = make_engine(model, work / "cache", root, args.n_ctx, args.max_tokens)
    ctx = attach_context(engine, args)
    report["repo_files"] = ctx.files
    report["repo_tokens"] = ctx.repo_tokens
    rows = []
    prompts = []
    t_all = time.perf_counter()
    for i in range(len(span) + 1):
        text = base[:offset] + span[:i] + base[offset:]
        line, col = line_col(text, offset + i)
        t0 = time.perf_counter()
        out = engine.complete(path, text, line, col)
        wall = (time.perf_counter() - t0) * 1000
        r = out.result
        rows.append({"prompt": r.prompt_tokens, "reused": r.reused_tokens, "evaluated": r.evaluated_tokens,
                     "generated": r.generated_tokens, "wall_ms": wall, "cached": out.cached,
                     "llama_evaluated": getattr(engine.backend, "last_llama_evaluated", None)})
        prompts.append((text, line, col))
    total_incremental = time.perf_counter() - t_all
    steady = rows[1:]  # the first keystroke is the cold prefill (reported separately)
    model_rows = [r for r in steady if not r["cached"]]
    report["incremental"] = {
        "first_keystroke": rows[0],
        "total_s": round(total_incremental, 3),
        "mean_wall_ms": round(statistics.mean(r["wall_ms"] for r in steady), 3),
        "p95_wall_ms": round(sorted(r["wall_ms"] for r in steady)[int(0.95 * len(steady))], 3),
        "mean_prompt_tokens": round(statistics.mean(r["prompt"] for r in steady), 1),
        "mean_evaluated_tokens": round(statistics.mean(r["evaluated"] for r in steady), 2),
        "max_evaluated_tokens": max(r["evaluated"] for r in steady),
        "mean_generated_tokens": round(statistics.mean(r["generated"] for r in steady), 2),
        "evaluated_over_prompt": round(sum(r["evaluated"] for r in steady) / sum(r["prompt"] for r in steady), 5),
        "cache_served": len(steady) - len(model_rows),
        "counters": engine.counters.to_json(),
    }

    # -- the same prompts from scratch (empty KV each time), sampled --------------------------------------
    backend = engine.backend
    sample = prompts[1:: max(1, len(prompts) // args.scratch_samples)][: args.scratch_samples]
    scratch = []
    for text, line, col in sample:
        backend.clear_kv()  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        out = engine.complete(path, text, line, col, use_cache=False)
        scratch.append({"wall_ms": (time.perf_counter() - t0) * 1000, "evaluated": out.result.evaluated_tokens,
                        "prompt": out.result.prompt_tokens, "generated": out.result.generated_tokens})
    mean_scratch = statistics.mean(r["wall_ms"] for r in scratch)
    report["scratch"] = {"samples": len(scratch), "mean_wall_ms": round(mean_scratch, 3),
                         "mean_evaluated_tokens": round(statistics.mean(r["evaluated"] for r in scratch), 1),
                         "estimated_total_s": round(mean_scratch * len(steady) / 1000, 3)}
    report["speedup_wall"] = round(mean_scratch / report["incremental"]["mean_wall_ms"], 2)

    # -- cancellation: a long generation superseded by the next keystroke ---------------------------------
    engine.config.completion.max_tokens = 4000
    long_text, long_line, long_col = empty_block_line(source, args.line)
    stops = []
    for k in range(args.cancel_trials):
        first = engine.submit_complete(path, long_text, long_line, long_col)
        time.sleep(0.3)  # it is generating (a multi-line completion of up to 4000 tokens)
        t0 = time.perf_counter()
        second = engine.submit_complete(path, long_text[:-1] + "x" * (k + 1) + "\n", long_line, long_col + k + 1)
        out1 = first.result(60)
        stops.append({"stop_ms": round((time.perf_counter() - t0) * 1000, 3),
                      "finish": out1.result.finish_reason, "generated_before_cancel": out1.result.generated_tokens,
                      "multiline": out1.multiline})
        engine.cancel_document(path)
        try:
            second.result(120)
        except Exception:  # noqa: BLE001 - cancelled on purpose
            pass
    report["cancel"] = {"trials": stops, "max_stop_ms": max(s["stop_ms"] for s in stops),
                        "mean_stop_ms": round(statistics.mean(s["stop_ms"] for s in stops), 3)}
    engine.config.completion.max_tokens = args.max_tokens

    # -- restart: saved snapshot vs cold prefill -------------------------------------------------------
    # The editor closes at a keystroke (Engine.close snapshots the KV: repository prefix + current file);
    # a new engine restores it. "prefix_only" is a store that holds the repository prefix alone (a file
    # opened for the first time after restart): its current-file window must still be evaluated.
    text, line, col = prompts[len(prompts) // 2]
    engine.complete(path, text, line, col, use_cache=False)
    engine.close()
    prefix_store = work / "prefix-only-cache"
    seeder = make_engine(model, prefix_store, root, args.n_ctx, args.max_tokens)
    attach_context(seeder, args)
    seeded = seeder.warm_up(path, text, line, col).result(600)
    seeder.close()
    restart: dict[str, Any] = {"prefix_only_seeded": seeded}
    for label, cache in (("cold", work / "empty-cache"), ("snapshot", work / "cache"),
                         ("prefix_only", prefix_store)):
        t0 = time.perf_counter()
        fresh = make_engine(model, cache, root, args.n_ctx, args.max_tokens)
        attach_context(fresh, args)
        t_ctx = time.perf_counter()
        info = fresh.warm_up(path, text, line, col).result(600) if label != "cold" else {}
        out = fresh.complete(path, text, line, col, use_cache=False)
        total = (time.perf_counter() - t0) * 1000
        restart[label] = {"first_completion_ms": round(total, 3),
                          "excluding_bench_context_setup_ms": round(total - (t_ctx - t0) * 1000, 3),
                          "evaluated_tokens": out.result.evaluated_tokens, "prompt_tokens": out.result.prompt_tokens,
                          "warm_up": info}
        fresh.close()
    restart["speedup"] = round(restart["cold"]["excluding_bench_context_setup_ms"]
                               / restart["snapshot"]["excluding_bench_context_setup_ms"], 2)
    restart["speedup_prefix_only"] = round(restart["cold"]["excluding_bench_context_setup_ms"]
                                           / restart["prefix_only"]["excluding_bench_context_setup_ms"], 2)
    report["restart"] = restart
    report["loadavg_end"] = os.getloadavg()
    report["targets"] = {
        "mean_evaluated_le_5pct_of_prompt": report["incremental"]["evaluated_over_prompt"] <= 0.05,
        "wall_10x_less_than_scratch": report["speedup_wall"] >= 10,
        "cancel_within_50ms": report["cancel"]["max_stop_ms"] <= 50,
        "restart_10x_faster_than_cold": restart["speedup"] >= 10,
        "repo_context_ge_32k_tokens": report["repo_tokens"] >= 32_768,
        "file_ge_1000_lines": report["file_lines"] >= 1000,
        "keystrokes_ge_200": report["keystrokes"] >= 200,
    }
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSON report path")
    parser.add_argument("--model", help="GGUF (default: synthesize the tiny test model)")
    parser.add_argument("--file", default="argparse.py", help="stdlib file typed again (≥1,000 lines)")
    parser.add_argument("--line", type=int, default=1400, help="line where typing starts")
    parser.add_argument("--keystrokes", type=int, default=220)
    parser.add_argument("--repo-tokens", type=int, default=33_000)
    parser.add_argument("--window-tokens", type=int, default=6000, help="current-file prefix window")
    parser.add_argument("--suffix-tokens", type=int, default=128, help="suffix after the cursor (PSM: "
                        "re-evaluated on every keystroke, so it bounds the evaluated tokens)")
    parser.add_argument("--n-ctx", type=int, default=65_536)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--scratch-samples", type=int, default=4)
    parser.add_argument("--cancel-trials", type=int, default=5)
    args = parser.parse_args()
    report = run(args)
    Path(args.out).write_text(json.dumps(report, indent=2))
    summary = {k: report[k] for k in ("repo_tokens", "keystrokes", "speedup_wall", "targets")}
    summary["evaluated_over_prompt"] = report["incremental"]["evaluated_over_prompt"]
    summary["cancel_max_ms"] = report["cancel"]["max_stop_ms"]
    summary["restart_speedup"] = report["restart"]["speedup"]
    summary["restart_speedup_prefix_only"] = report["restart"]["speedup_prefix_only"]
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
