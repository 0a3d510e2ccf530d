"""Time to first token of inline completions during a typing replay, with and without the first-token target.

A real repository (600 files of this interpreter's standard library, cold index and cold KV cache), the real
Qwen2.5-Coder model, the engine as the server drives it (``Engine.complete`` per keystroke, the default
``context.budget``, ``completion.timeout_ms``). The replay: the editor opens ``argparse.py`` at a function
body, asks for a completion there (cold), the user reads for a while (the engine's idle-time warm-up runs,
up to ``--idle`` seconds), then retypes the body's next lines one character at a time, a completion after
each keystroke. Run twice in one sitting, side by side:

- ``targeted``: ``completion.latency_target = true`` (the default): the suffix and the repository part sized
  to the target from measured speeds (``engine/inference/latency.py``);
- ``fixed``: the same with it off (the full budget's prompt every time, the 512-token suffix);
- ``served``: ``targeted`` as an editor gets it: ``coderflash serve`` over stdio (its own cold cache), the
  buffer sent as ``didOpen``/``didChange``, one ``textDocument/inlineCompletion`` per keystroke. TTFT is the
  server's own figure (``coderflash/status`` → ``inference.latency.first_token_ms`` after each reply); the
  reply time the editor waits for (first token, the rest of the generation, LSP and JSON) is reported beside
  it. The read pause ends when the server's inference queue has been empty for two seconds.

Reported per mode: TTFT p50/p95 over the keystrokes (a keystroke cut by the timeout before its first token
counts as its elapsed time), prompt tokens evaluated per keystroke, repository tokens in the prompt sent,
keystrokes whose prompt carried repository files, and the measured speeds. Exits 1 when the targeted mode's
p95 misses its target or its prompts carried no repository context.

Run: ``.venv/bin/python bench/latency_bench.py --out bench/results/latency.json`` (about 15 minutes here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "lsp"))
sys.path.insert(0, str(REPO / "tests" / "realmodel"))

from rawlsp import RawLspProcess  # noqa: E402
from real_repos import copy_stdlib  # noqa: E402
from real_server import start_on  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.service import Engine  # noqa: E402

CURRENT_KINDS = ("file_header", "current_prefix", "current_suffix")
REPO_HEADER_MAX = 16  # tokens: the served figure's ``<|repo_name|>`` line, not repository context


def typing_spot(text: str, line: int, lines_typed: int) -> tuple[str, int, str]:
    """(the buffer with ``lines_typed`` lines from the first function body line at or after ``line``
    removed, the line where typing starts, the text to type)."""
    rows = text.split("\n")
    start = next(i for i in range(line, len(rows)) if rows[i].startswith("        ") and rows[i].strip()
                 and rows[i - 1].rstrip().endswith(":"))
    typed = "\n".join(rows[start:start + lines_typed])
    indent = len(typed) - len(typed.lstrip(" "))
    buffer = "\n".join(rows[:start] + [typed[:indent]] + rows[start + lines_typed:])
    return buffer, start, typed[indent:]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def keystroke_buffers(buffer: str, line: int, typed: str, keystrokes: int):
    """(text, cursor line, cursor character) after each of the first ``keystrokes`` characters of ``typed``
    is typed at the start of ``line`` (after its indentation)."""
    rows = buffer.split("\n")
    for n in range(1, min(len(typed), keystrokes) + 1):
        head = typed[:n]
        text_rows = rows[:line] + (rows[line] + head).split("\n") + rows[line + 1:]
        cursor_line = line + head.count("\n")
        yield "\n".join(text_rows), cursor_line, len(text_rows[cursor_line])


def summarize(keys: list[dict], latency: dict, cold: dict, idle_s: float, idle_done: bool, index_s: float,
              files: object) -> dict:
    ttfts = [k["ttft_ms"] for k in keys]
    target = latency.get("target_ms") or 800
    return {
        "keystrokes": len(keys), "ttft_p50_ms": round(percentile(ttfts, 0.5), 1),
        "ttft_p95_ms": round(percentile(ttfts, 0.95), 1), "target_ms": target,
        "within_target": sum(t <= target for t in ttfts),
        "reply_p50_ms": round(percentile([k["wall_ms"] for k in keys], 0.5), 1),
        "reply_p95_ms": round(percentile([k["wall_ms"] for k in keys], 0.95), 1),
        "evaluated_per_keystroke_mean": round(statistics.mean(k["evaluated"] for k in keys), 1),
        "evaluated_per_keystroke_p95": percentile([k["evaluated"] for k in keys], 0.95),
        "repository_tokens_mean": round(statistics.mean(k["repository_tokens"] for k in keys)),
        "keystrokes_with_repository_context": sum(k["repository_tokens"] > 0 for k in keys),
        "full_prompt_tokens_mean": round(statistics.mean(k["full_prompt_tokens"] for k in keys)),
        "deadline_cut": sum(k["finish"] == "deadline" for k in keys),
        "cold_first_completion": cold,
        "idle_warm_up_s": round(idle_s, 1), "idle_warm_up_finished": idle_done,
        "index_s": round(index_s, 1), "files": files, "latency_status": latency,
    }


def run_mode(name: str, targeted: bool, args, repo: Path, work: Path) -> dict:
    config = Config(model=args.model, cache_dir=str(work / f"cache-{name}"))
    config.completion.latency_target = targeted
    config.llama.threads = args.threads
    engine = Engine(config, repo)
    t0 = time.perf_counter()
    stats = engine.reindex()
    index_s = time.perf_counter() - t0
    path = repo / args.file
    buffer, line, typed = typing_spot(path.read_text(), args.line, args.lines)
    indent = len(buffer.split("\n")[line])
    engine.document_opened(path, buffer)
    cold = engine.complete(path, buffer, line, indent, use_cache=False)
    t0 = time.perf_counter()
    idle_done = engine.runtime.scheduler.wait_idle(timeout=args.idle)
    idle_s = time.perf_counter() - t0
    keys = []
    for text, cursor_line, character in keystroke_buffers(buffer, line, typed, args.keystrokes):
        engine.document_changed(path, text)
        t0 = time.perf_counter()
        out = engine.complete(path, text, cursor_line, character, use_cache=False)
        wall = (time.perf_counter() - t0) * 1000
        r = out.result
        ttft = r.first_token_ms if r.first_token_ms > 0 else r.elapsed_ms
        if targeted:  # what was sent (the runtime may have left repository files out)
            repository = int(engine.runtime.last_latency.get("repository_tokens") or 0)
        else:  # the full prompt was sent
            repository = sum(s.tokens for s in out.context.sections if s.kind not in CURRENT_KINDS)
        repository -= sum(s.tokens for s in out.context.sections if s.kind == "repo_header")
        keys.append({"ttft_ms": round(ttft, 1), "wall_ms": round(wall, 1), "evaluated": r.evaluated_tokens,
                     "prompt_tokens": r.prompt_tokens, "full_prompt_tokens": out.context.prompt_tokens,
                     "repository_tokens": max(0, repository),
                     "repository_cut": out.repository_cut, "finish": r.finish_reason,
                     "completion": out.completion[:60]})
    latency = engine.status()["inference"].get("latency", {})
    cold_out = {"ttft_ms": round(cold.result.first_token_ms or cold.result.elapsed_ms, 1),
                "evaluated": cold.result.evaluated_tokens, "finish": cold.result.finish_reason}
    summary = summarize(keys, latency, cold_out, idle_s, idle_done, index_s, stats.get("files"))
    engine.close()
    return {"summary": summary, "keystrokes": keys}


def _served_inference(server: RawLspProcess) -> dict:
    reply = server.call("coderflash/status", {}, timeout=120)
    assert "result" in reply, reply
    return reply["result"]["workspaces"][0]["inference"]


def _wait_served_idle(server: RawLspProcess, timeout: float) -> bool:
    """Until the server's inference queue has been empty (nothing queued or running) for two seconds: the
    idle-time warm-up starts one second after the last request and runs in chunks."""
    end = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < end:
        scheduler = _served_inference(server)["scheduler"]
        if scheduler["queued"] == 0 and scheduler["running"] is None:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 2.0:
                return True
        else:
            quiet_since = None
        time.sleep(0.25)
    return False


def run_served(args, repo: Path, work: Path) -> dict:
    """The ``targeted`` replay through ``coderflash serve`` over stdio, as an editor drives it."""
    options = {"model": args.model, "llama": {"threads": args.threads}, "completion": {"latency_target": True}}
    t0 = time.perf_counter()
    server, index = start_on(repo, work / "cache-served", options, 900)  # as an editor starts it; index ready
    try:
        index_s = time.perf_counter() - t0
        path = repo / args.file
        uri = path.as_uri()
        buffer, line, typed = typing_spot(path.read_text(), args.line, args.lines)
        indent = len(buffer.split("\n")[line])
        server.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": buffer}})

        def complete(cursor_line: int, character: int) -> tuple[dict, float]:
            t0 = time.perf_counter()
            reply = server.call("textDocument/inlineCompletion", {
                "textDocument": {"uri": uri}, "position": {"line": cursor_line, "character": character},
                "context": {"triggerKind": 2}}, timeout=600)
            assert "result" in reply, reply
            return reply["result"], (time.perf_counter() - t0) * 1000

        _, cold_ms = complete(line, indent)
        cold = {"reply_ms": round(cold_ms, 1), **_served_inference(server).get("latency", {})}
        t0 = time.perf_counter()
        idle_done = _wait_served_idle(server, args.idle)
        idle_s = time.perf_counter() - t0
        keys = []
        for version, (text, cursor_line, character) in enumerate(
                keystroke_buffers(buffer, line, typed, args.keystrokes), start=2):
            server.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version},
                                                     "contentChanges": [{"text": text}]})
            result, wall = complete(cursor_line, character)
            inference = _served_inference(server)
            last = inference.get("latency", {})
            ttft = last.get("first_token_ms") or wall
            items = result.get("items") or []
            keys.append({"ttft_ms": round(ttft, 1), "wall_ms": round(wall, 1),
                         "evaluated": last.get("evaluated_tokens", 0), "prompt_tokens": last.get("prompt_tokens", 0),
                         "full_prompt_tokens": last.get("budget_tokens", 0),
                         # the server's figure includes the ``<|repo_name|>`` line (a few tokens)
                         "repository_tokens": max(0, int(last.get("repository_tokens") or 0) - REPO_HEADER_MAX),
                         "finish": "", "completion": items[0]["insertText"][:60] if items else ""})
        latency = _served_inference(server).get("latency", {})
        summary = summarize(keys, latency, cold, idle_s, idle_done, index_s, index.get("files"))
        summary["server_exit_code"] = server.close(timeout=60)
        return {"summary": summary, "keystrokes": keys}
    finally:
        server.proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="a model setting (default: the embedded model)")
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--file", default="argparse.py")
    ap.add_argument("--line", type=int, default=1400, help="typing starts at the first function body line after it")
    ap.add_argument("--lines", type=int, default=2, help="lines removed and typed again")
    ap.add_argument("--keystrokes", type=int, default=40)
    ap.add_argument("--idle", type=float, default=300.0, help="seconds the user reads before typing (warm-up)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--modes", nargs="+", default=["targeted", "fixed", "served"],
                    choices=["targeted", "fixed", "served"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="latency-bench-"))
    repo = copy_stdlib(work / "repo", files=args.files)
    data: dict = {"config": {k: v for k, v in vars(args).items() if k != "out"},
                  "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "modes": {}}
    for mode in args.modes:
        data["modes"][mode] = run_served(args, repo, work) if mode == "served" else \
            run_mode(mode, mode == "targeted", args, repo, work)
        print(json.dumps({mode: data["modes"][mode]["summary"]}, indent=1), file=sys.stderr)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(data, indent=1))
    met = {}
    for mode in ("targeted", "served"):
        summary = data["modes"].get(mode, {}).get("summary")
        if summary:
            met |= {f"{mode}_p95_within_target": summary["ttft_p95_ms"] <= summary["target_ms"],
                    f"{mode}_carries_repository_context":
                        summary["keystrokes_with_repository_context"] >= 0.95 * summary["keystrokes"]}
    data["targets_met"] = met
    Path(args.out).write_text(json.dumps(data, indent=1))
    print(json.dumps({m: d["summary"] for m, d in data["modes"].items()} | {"targets_met": met}, indent=1))
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
