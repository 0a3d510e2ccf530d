"""``coderflash bench``: run the benchmarks, one JSON and one Markdown table of their headline figures.

Each suite is one of the bench scripts, run as its own process with settings that fit the whole of
``all`` in under 20 minutes on a 2-core CPU (every script takes more cases and longer runs when run by hand;
README's benchmark table says how). Each row of the table is a figure, its target, and the baseline measured
in the same run (side by side, never against an old file), so a ratio is meaningful on a shared machine.

    coderflash bench [index|context|quality|typing|lsp|decode|all] [--json OUT]

Writes OUT (default ``bench/results/bench.json``) and the table next to it (``.md``); the suites' own JSON
files go into ``bench/results/bench-runs/``. Exits 1 when a suite failed to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def _get(data: dict, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def _index_rows(d: dict) -> list[dict]:
    t = d.get("targets", {})
    files = _get(d, "corpus", "files")
    return [
        {"figure": f"cold index of {files} files, s", "value": round(_get(d, "cold_index_s", "median", default=0), 2),
         "target": "≤ 1.0x the tree-sitter floor",
         "baseline": f"floor {round(_get(d, 'floor_parse_tags_single_process_s', 'median', default=0), 2)} s "
                     f"({_get(t, 'cold_vs_floor', 'value_median')}x), ctags -R {round(d.get('ctags_R_s') or 0, 2)} s"},
        {"figure": "warm start / cold", "value": _get(t, "warm_vs_cold", "value"), "target": "≤ 0.1", "baseline": ""},
        {"figure": "one-file re-index p95, ms", "value": _get(t, "reindex_p95_ms", "value"), "target": "≤ 15",
         "baseline": ""},
    ]


def _context_rows(d: dict) -> list[dict]:
    rows = []
    for budget, b in sorted(d.get("budgets", {}).items(), key=lambda kv: int(kv[0])):
        rows.append({"figure": f"context assembly p95 per keystroke at {budget}, ms",
                     "value": b.get("p95_ms_next_keystroke"), "target": "≤ 10",
                     "baseline": f"first in file p95 {b.get('p95_ms_first_in_file')} ms"})
        rows.append({"figure": f"prompt shared with the previous keystroke at {budget}",
                     "value": b.get("shared_prefix_ratio_min"), "target": "≥ 0.95", "baseline": ""})
    return rows


def _quality_rows(d: dict) -> list[dict]:
    rows = []
    for budget, methods in sorted(_get(d, "summary", "overall", default={}).items(), key=lambda kv: int(kv[0])):
        engine = methods.get("engine", {})
        baselines = {m: v for m, v in methods.items() if m != "engine"}
        best = max(baselines.items(), key=lambda kv: kv[1].get("ident_em", 0), default=("", {}))
        rows.append({"figure": f"identifier exact match at {budget} (n={engine.get('n')})",
                     "value": engine.get("ident_em"), "target": "best baseline + 0.10",
                     "baseline": f"{best[0]} {best[1].get('ident_em')}"})
        best_first = max((v.get("first_line_em", 0) for v in baselines.values()), default=None)
        rows.append({"figure": f"first-line exact match at {budget}", "value": engine.get("first_line_em"),
                     "target": "≥ best baseline", "baseline": best_first})
    return rows


def _typing_rows(d: dict) -> list[dict]:
    on = _get(d, "modes", "targeted", "summary", default={})
    off = _get(d, "modes", "fixed", "summary", default={})
    return [
        {"figure": "inline completion TTFT p95 while typing, ms (0.5B, 600 files)", "value": on.get("ttft_p95_ms"),
         "target": f"≤ {on.get('target_ms')}", "baseline": f"no target: {off.get('ttft_p95_ms')}"},
        {"figure": "TTFT p50 while typing, ms", "value": on.get("ttft_p50_ms"), "target": "",
         "baseline": f"no target: {off.get('ttft_p50_ms')}"},
        {"figure": "prompt tokens evaluated per keystroke (mean)", "value": on.get("evaluated_per_keystroke_mean"),
         "target": "", "baseline": f"no target: {off.get('evaluated_per_keystroke_mean')}"},
        {"figure": "keystrokes whose prompt carried repository files",
         "value": f"{on.get('keystrokes_with_repository_context')}/{on.get('keystrokes')}", "target": "all",
         "baseline": f"no target: {off.get('keystrokes_with_repository_context')}/{off.get('keystrokes')}"},
    ]


def _lsp_rows(d: dict) -> list[dict]:
    rows = []
    for kind in ("served", "computed"):
        k = _get(d, "load", kind, default={})
        rows.append({"figure": f"completion p95 under 2,000 didChange/s ({kind}), ms", "value": k.get("load_p95_ms"),
                     "target": "≤ 2x idle", "baseline": f"idle {k.get('idle_p95_ms')}"})
    if "soak" in d:
        soak = d["soak"]
        rows.append({"figure": f"soak RSS growth over the second half of {soak.get('events')} events, MB",
                     "value": soak.get("rss_growth_second_half_mb"), "target": "≤ 5",
                     "baseline": f"after warm-up {soak.get('rss_mb_after_warmup')} MB"})
    return rows


def _decode_rows(d: dict) -> list[dict]:
    s = d.get("summary", {})
    return [
        {"figure": "decode tokens/s with prompt-lookup drafts", "value": _get(s, "prompt-lookup", "decode_tokens_per_s"),
         "target": "≥ 1.5x", "baseline": f"without {_get(s, 'none', 'decode_tokens_per_s')} ({s.get('speedup')}x)"},
        {"figure": "identical greedy outputs", "value": s.get("identical_outputs"), "target": "all", "baseline": ""},
        {"figure": "batch of 8 tokens, in decode steps", "value": _get(s, "batch_cost_in_steps", "8"),
         "target": "≪ 8 for drafts to pay", "baseline": ""},
    ]


# name → (script and arguments; {out} is the suite's JSON), rows from its JSON
SUITES: dict[str, tuple[list[str], Callable[[dict], list[dict]]]] = {
    "index": (["index_bench.py", "--repeat", "1", "--edit-iterations", "20", "--skip-coverage",
               "--out", "{out}"], _index_rows),
    "context": (["context_bench.py", "speed", "--lines", "60000", "--cases", "10", "--out", "{out}"], _context_rows),
    "quality": (["quality_bench.py", "--quick", "--model", "qwen2.5-coder-0.5b", "--out", "{out}"], _quality_rows),
    "typing": (["latency_bench.py", "--keystrokes", "20", "--idle", "150", "--modes", "targeted", "fixed",
                "--out", "{out}"], _typing_rows),  # the served replay alone takes ~5 minutes more
    "lsp": (["load_bench.py", "--skip", "soak", "--out", "{out}"], _lsp_rows),
    "decode": (["decode_bench.py", "--only", "python-unittest", "--cases", "1", "--out", "{out}"], _decode_rows),
}


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        info["memory_gb"] = round(int(mem.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    try:
        import llama_cpp

        info["gpu_offload"] = bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # noqa: BLE001 - reported, not required
        info["gpu_offload"] = None
    return info


def markdown(data: dict) -> str:
    lines = [f"# coderflash bench — {time.strftime('%Y-%m-%d %H:%M', time.localtime(data['started']))}", "",
             f"Machine: {json.dumps(data['machine'])}", "",
             "| suite | figure | value | target | baseline (same run) |", "|---|---|---|---|---|"]
    for name, suite in data["suites"].items():
        if "error" in suite:
            lines.append(f"| {name} | failed: {suite['error']} | | | |")
        for row in suite.get("rows", []):
            lines.append(f"| {name} | {row['figure']} | {row['value']} | {row['target']} | {row['baseline']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="coderflash bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", nargs="?", default="all", choices=[*SUITES, "all"])
    ap.add_argument("--json", default=str(RESULTS / "bench.json"), help="where the combined JSON goes (.md beside)")
    args = ap.parse_args(argv)
    names = list(SUITES) if args.suite == "all" else [args.suite]
    out = Path(args.json)
    runs = out.parent / "bench-runs"
    runs.mkdir(parents=True, exist_ok=True)
    data: dict = {"started": time.time(), "machine": machine(), "suites": {}}
    failed = False
    for name in names:
        script, rows = SUITES[name]
        suite_out = runs / f"{name}.json"
        cmd = [sys.executable, str(BENCH / script[0]), *[a.replace("{out}", str(suite_out)) for a in script[1:]]]
        t0 = time.perf_counter()
        print(f"coderflash bench: {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        entry: dict = {"command": cmd[1:], "seconds": round(time.perf_counter() - t0, 1), "json": str(suite_out)}
        try:
            entry["rows"] = rows(json.loads(suite_out.read_text()))
            if proc.returncode not in (0, 1):  # 1: a bench ran and reports a missed target
                entry["error"] = f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"
        except (OSError, ValueError) as exc:  # no JSON: the suite failed
            entry["error"] = f"exit {proc.returncode}: {(proc.stderr.strip().splitlines() or [str(exc)])[-1]}"
        except Exception as exc:  # noqa: BLE001 - a figure the table could not read: say so, run the rest
            entry["error"] = f"reading {suite_out.name}: {type(exc).__name__}: {exc}"
        failed |= "error" in entry
        data["suites"][name] = entry
        out.write_text(json.dumps(data, indent=1) + "\n")
        out.with_suffix(".md").write_text(markdown(data))
    data["seconds"] = round(time.time() - data["started"], 1)
    out.write_text(json.dumps(data, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(data))
    print(markdown(data))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
