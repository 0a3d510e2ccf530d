"""Load and soak: ``coderflash serve`` over stdio under an editor's worst traffic.

Load: 20 open documents of a real repository (standard-library copies); ``--rate`` didChange per second
(2,000 by default) for ``--seconds`` (10), spread over 19 of them, while inline completions are requested
in the 20th (the largest), twice: ``served`` (one spot, asked every 100 ms, answered from the completion
cache: the server's message path) and ``computed`` (a different line each time, asked as soon as the last
is answered: the engine's work under the storm). Reported for each: completion latency p50/p95 at idle
(the same kind of request before the storm) and under load, their ratio (target ≤ 2); didChange messages
actually sent per second, the server's RSS (server and workers) before/peak/after, and the backlog: how
long a status request and a completion take once the storms stop.

Soak: ``--events`` (100,000) editor events replayed as fast as the server takes them — typing
(didChange), completion requests (one in ten), cursor jumps, documents closed and reopened, status polls,
saves, and agent chat turns (one in 1,000: read the open file, grep the repository, answer — each step fixed
by a grammar, so the tiny model calls the tools; the tools run on chat's threads while completions are
built on the inference worker) — as a day of editing compressed. RSS and open file descriptors are sampled every tenth of the run;
reported: their values after warm-up (the first tenth), at half-time and at the end, and the growth between;
each sample also has the server's own ``memory`` (``coderflash/status``: resident, malloc's memory in use and
held free, SQLite's), which says whether a rise is live memory or the allocator's.

``targets_met`` in the JSON says which of the issue's targets hold; the command exits 1 when one is missed.

    .venv/bin/python bench/load_bench.py --out bench/results/load.json
    .venv/bin/python bench/load_bench.py --model ~/.cache/coderflash/models/qwen2.5-coder-0.5b.gguf ...

The tiny synthesized model is the default: the benchmark measures the server (message handling, the
scheduler, the index, memory), not the model's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "lsp"))

from chat_grammars import call_text, gbnf_literal  # noqa: E402
from rawlsp import RawLspProcess  # noqa: E402
from real_repos import copy_stdlib, descendants  # noqa: E402
from soak_tracing import SoakTracing  # noqa: E402


def rss_kb(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def tree_rss_kb(pid: int) -> int:
    return rss_kb({pid} | descendants(pid))


def rss_by_mapping_kb(pid: int) -> dict[str, int]:
    """The server's resident memory by kind of mapping (``/proc/PID/smaps``), in KB: ``heap`` (glibc's main
    arena), ``anon`` (unnamed maps: malloc's other arenas and large blocks, Python's object arenas, thread
    stacks, llama.cpp buffers), ``stack``, and each file holding 1 MB or more by its name (the rest as
    ``other files``). Why: a creeping RSS that is not in malloc's own counts has to be found by where it is."""
    by_kind: dict[str, int] = {}
    kind = "anon"
    try:
        with open(f"/proc/{pid}/smaps") as smaps:
            for line in smaps:
                fields = line.split()
                if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                    path = fields[5] if len(fields) > 5 else ""
                    kind = ("anon" if not path else path.strip("[]") if path.startswith("[")
                            else os.path.basename(path))
                elif fields and fields[0] == "Rss:":
                    by_kind[kind] = by_kind.get(kind, 0) + int(fields[1])
    except OSError:
        return {}
    out: dict[str, int] = {}
    for kind, kb in by_kind.items():
        name = kind if kind in ("anon", "heap", "stack") or kb >= 1024 else "other files"
        out[name] = out.get(name, 0) + kb
    return dict(sorted(out.items(), key=lambda item: -item[1]))


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Session:
    """A server on ``repo`` with documents open, and the client's view of them."""

    def __init__(self, repo: Path, model: Path, cache: Path, docs: list[Path], env: dict | None = None) -> None:
        self.server = RawLspProcess(argv=[sys.executable, "-m", "lsp_server", "serve"],
                                    env={"CODERFLASH_CACHE_DIR": str(cache), **(env or {})}, answer_requests=True)
        self.server.initialize(repo.as_uri(), {"model": str(model), "llama": {"n_ctx": 8192},
                                               "completion": {"max_tokens": 8}})
        try:
            index = self.server.wait_for_index(timeout=300)
        except AssertionError as exc:
            raise SystemExit(f"index never became ready: {exc}") from None
        if index["state"] != "ready":
            raise SystemExit(f"indexing failed: {index}")
        self.repo = repo
        self.texts: dict[str, list[str]] = {}
        self.versions: dict[str, int] = {}
        for doc in docs:
            self.open(doc.as_uri(), doc.read_text())

    def status(self) -> dict:
        return self.server.call("coderflash/status", {}, timeout=120)["result"]

    def open(self, uri: str, text: str) -> None:
        self.texts[uri] = text.split("\n")
        self.versions[uri] = 1
        self.server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                                                                     "version": 1, "text": text}})

    def close(self, uri: str) -> None:
        self.server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    def type_char(self, uri: str, line: int, char: str) -> tuple[int, int]:
        """Append ``char`` to ``line`` (an incremental change); returns the cursor after it."""
        lines = self.texts[uri]
        line = min(line, len(lines) - 1)
        col = len(lines[line])
        lines[line] += char
        self.versions[uri] += 1
        self.server.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": self.versions[uri]},
            "contentChanges": [{"range": {"start": {"line": line, "character": col},
                                          "end": {"line": line, "character": col}}, "text": char}]})
        return line, col + 1

    def request_completion(self, uri: str, line: int, character: int) -> int:
        return self.server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 1}})

    def request_agent_turn(self, uri: str) -> int:
        """An agent chat turn about ``uri``: read it, grep the repository, answer (each step a grammar's literal)."""
        rel = Path(uri[len("file://"):]).relative_to(self.repo).as_posix()
        steps = [call_text("read_file", path=rel, start_line="1", end_line="80"),
                 call_text("grep", pattern=r"def __\w+__\(self"), "Done."]
        return self.server.request("coderflash/chat", {
            "message": "What does this file do?", "mode": "agent", "textDocument": {"uri": uri},
            "grammars": [gbnf_literal(step) for step in steps], "maxSteps": 3, "maxTokens": 400})

    def completion_ms(self, uri: str, line: int, character: int) -> tuple[float, str]:
        t0 = time.perf_counter()
        reply = self.server.response(self.request_completion(uri, line, character), timeout=300)
        kind = "result" if "result" in reply else str(reply["error"]["code"])
        return (time.perf_counter() - t0) * 1000, kind


def _docs(repo: Path, n: int) -> list[Path]:
    files = sorted(p for p in repo.rglob("*.py") if 2_000 < p.stat().st_size < 60_000)
    return files[:: max(1, len(files) // n)][:n]


def _storm(session: Session, busy: list[str], rate: int, seconds: float,
           next_completion: "Callable[[], tuple[int, int] | None]", target: str, every_s: float) -> dict:
    """``rate`` didChange a second over ``busy`` for ``seconds`` while completions in ``target`` are
    requested every ``every_s`` at the spots ``next_completion`` gives, one in flight at a time (an editor
    does not ask again before the answer, except by typing, which these documents do not see). Answers are
    timestamped by a collector thread as they arrive, not when the sending loop looks."""
    server_pid = session.server.proc.pid
    rng = random.Random(5)
    sent = 0
    sent_at: dict[int, float] = {}
    answers: dict[int, tuple[float, str]] = {}
    collecting = threading.Event()

    def collect() -> None:
        while collecting.is_set() or len(answers) < len(sent_at):
            try:
                message = session.server.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            if "method" not in message and message.get("id") in sent_at:
                kind = "result" if "result" in message else str(message["error"]["code"])
                answers[message["id"]] = (time.perf_counter(), kind)

    collecting.set()
    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    rss_peak = tree_rss_kb(server_pid)
    start = time.perf_counter()
    due_completion = start
    lines = {uri: rng.randrange(len(session.texts[uri])) for uri in busy}
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * rate)
        while sent < due:
            uri = busy[sent % len(busy)]
            session.type_char(uri, lines[uri], rng.choice("abcxyz_ (.)"))
            sent += 1
        if now >= due_completion and len(answers) == len(sent_at):
            where = next_completion()
            if where is not None:
                msg_id = session.server._next_id + 1
                sent_at[msg_id] = time.perf_counter()
                session.request_completion(target, *where)
            due_completion = now + every_s
        if sent % 2000 == 0:
            rss_peak = max(rss_peak, tree_rss_kb(server_pid))
        time.sleep(0.0005)
    storm_s = time.perf_counter() - start
    collecting.clear()
    collector.join(timeout=300)
    latencies = [(answers[i][0] - t) * 1000 for i, t in sent_at.items() if i in answers]
    outcomes: dict[str, int] = {}
    for _, kind in answers.values():
        outcomes[kind] = outcomes.get(kind, 0) + 1
    return {"latencies": latencies, "outcomes": outcomes, "sent": sent, "seconds": storm_s, "rss_peak": rss_peak}


def _latency_figures(idle: list[float], storm: dict) -> dict:
    latencies = storm["latencies"]
    return {
        "completions": len(latencies), "outcomes": storm["outcomes"],
        "idle_p50_ms": round(statistics.median(idle), 1), "idle_p95_ms": round(percentile(idle, 95), 1),
        "load_p50_ms": round(statistics.median(latencies), 1), "load_p95_ms": round(percentile(latencies, 95), 1),
        "p95_ratio_load_over_idle": round(percentile(latencies, 95) / max(1e-6, percentile(idle, 95)), 2),
    }


def run_load(session: Session, docs: list[Path], rate: int, seconds: float) -> dict:
    """Two storms. ``served``: completions at one spot of the largest document, asked again every 100 ms
    (after the first, the engine answers from its cache): the latency is the server's message path, where a
    backlog of didChange shows first. ``computed``: each completion at the end of a different line (never
    a cache hit), the next asked as soon as the previous is answered: the engine's work competes with the
    storm for the CPU. Idle figures are the same requests (other lines for ``computed``) before the storm."""
    server_pid = session.server.proc.pid
    target = max((d.as_uri() for d in docs), key=lambda uri: len(session.texts[uri]))
    busy = [d.as_uri() for d in docs if d.as_uri() != target]
    target_lines = session.texts[target]
    spots = [n for n, text in enumerate(target_lines) if text.strip()]
    random.Random(7).shuffle(spots)

    def end_of(n: int) -> tuple[int, int]:
        return n, len(target_lines[n])

    fixed = end_of(spots[0])
    rss_before = tree_rss_kb(server_pid)

    session.completion_ms(target, *fixed)  # computed once; every later request there is served from the cache
    idle_served = [session.completion_ms(target, *fixed)[0] for _ in range(30)]
    served = _storm(session, busy, rate, seconds, lambda: fixed, target, 0.1)

    idle_spots, load_spots = iter(spots[1:21]), iter(spots[21:])
    idle_computed = [session.completion_ms(target, *end_of(n))[0] for n in idle_spots]

    def next_spot() -> tuple[int, int] | None:
        n = next(load_spots, None)
        return None if n is None else end_of(n)

    computed = _storm(session, busy, rate, seconds, next_spot, target, 0.0)
    t0 = time.perf_counter()
    session.status()
    status_after_ms = (time.perf_counter() - t0) * 1000
    after_ms, _ = session.completion_ms(target, *fixed)
    storms = (served, computed)
    return {
        "documents": len(docs), "did_change_target_per_s": rate,
        "did_change_sent": sum(st["sent"] for st in storms),
        "did_change_per_s": round(sum(st["sent"] for st in storms) / sum(st["seconds"] for st in storms)),
        "seconds_per_storm": round(seconds, 1), "target_p95_ratio": 2.0,
        "served": _latency_figures(idle_served, served),
        "computed": _latency_figures(idle_computed, computed),
        "status_after_storm_ms": round(status_after_ms, 1), "completion_after_storm_ms": round(after_ms, 1),
        "rss_mb_before": round(rss_before / 1024, 1),
        "rss_mb_peak": round(max(st["rss_peak"] for st in storms) / 1024, 1),
        "rss_mb_after": round(tree_rss_kb(server_pid) / 1024, 1),
    }


def run_soak(session: Session, docs: list[Path], events: int, tracing: SoakTracing | None = None) -> dict:
    server_pid = session.server.proc.pid
    rng = random.Random(11)
    uris = [d.as_uri() for d in docs]
    texts = {d.as_uri(): d.read_text() for d in docs}
    cursor = {uri: rng.randrange(len(session.texts[uri])) for uri in uris}
    samples: list[dict] = []
    kinds: dict[str, int] = {}
    started = time.perf_counter()
    outstanding: list[int] = []
    chats: set[int] = set()
    chat_outcomes: dict[str, int] = {}

    def settle() -> None:
        """Wait for every request in flight; a chat turn's outcome is counted (tools called, or why not)."""
        for msg_id in outstanding:
            reply = session.server.response(msg_id, timeout=300)
            if msg_id in chats:
                chats.discard(msg_id)
                result = reply.get("result") or {}
                calls = len(result.get("toolCalls", []))
                outcome = (f"{result.get('finishReason')}, {calls} tool calls" if "result" in reply
                           else f"error: {reply.get('error', {}).get('message', '')[:160]}")
                chat_outcomes[outcome] = chat_outcomes.get(outcome, 0) + 1
        outstanding.clear()

    for i in range(events):
        uri = rng.choice(uris)
        roll = rng.random()
        if roll < 0.70:
            kind = "type"
            session.type_char(uri, cursor[uri], rng.choice("abcdefxyz_ (.)=,"))
        elif roll < 0.80:
            kind = "complete"
            line = min(cursor[uri], len(session.texts[uri]) - 1)
            outstanding.append(session.request_completion(uri, line, len(session.texts[uri][line])))
        elif roll < 0.95:
            kind = "move"
            cursor[uri] = rng.randrange(len(session.texts[uri]))
        elif roll < 0.98:
            kind = "reopen"  # closed and opened again with the saved text (the edits are discarded)
            session.close(uri)
            session.open(uri, texts[uri])
        elif roll < 0.99:
            kind = "save"
            session.server.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        elif roll < 0.999:
            kind = "status"
            outstanding.append(session.server.request("coderflash/status", {}))
        else:
            kind = "chat"
            outstanding.append(session.request_agent_turn(uri))
            chats.add(outstanding[-1])
        kinds[kind] = kinds.get(kind, 0) + 1
        if len(outstanding) >= 32:  # an editor has a few requests in flight, not thousands
            settle()
        if (i + 1) % max(1, events // 10) == 0:
            settle()
            status = session.status()
            workspace = status["workspaces"][0]
            work = {k: status["counters"][k] for k in ("requests", "evaluated_tokens", "generated_tokens",
                                                         "cancelled", "cache_hits")}
            samples.append({"events": i + 1, "seconds": round(time.perf_counter() - started, 1),
                            "rss_mb": round(tree_rss_kb(server_pid) / 1024, 1), "fds": open_fds(server_pid),
                            **work, "plan": workspace.get("inference", {}).get("latency"),
                            "context_cache": workspace.get("context_cache"),
                            "memory": status.get("memory"), "rss_by_mapping_kb": rss_by_mapping_kb(server_pid)})
            print(json.dumps(samples[-1]), file=sys.stderr)
            if tracing is not None:
                tracing.sample(server_pid)
        session.server.incoming.clear()
    warm, half, end = samples[0], samples[len(samples) // 2 - 1], samples[-1]
    return {"events": events, "kinds": kinds, "chat_outcomes": chat_outcomes, "seconds": end["seconds"],
            "samples": samples,
            "rss_mb_after_warmup": warm["rss_mb"], "rss_mb_end": end["rss_mb"],
            "rss_growth_mb": round(end["rss_mb"] - warm["rss_mb"], 1),
            "rss_growth_second_half_mb": round(end["rss_mb"] - half["rss_mb"], 1),
            "handlers_in_flight_end": session.status()["handlers_in_flight"],
            "fds_after_warmup": warm["fds"], "fds_end": end["fds"], "fds_growth": end["fds"] - warm["fds"],
            **({"python_allocations": tracing.report()} if tracing is not None else {})}


SOAK_FLAT_MB = 5.0  # RSS "flat" over the soak's second half: within 5 MB (0.1 KB per event) of its half-time value


def targets(out: dict) -> dict[str, bool]:
    """The issue's targets, each a yes/no (the command exits 1 when one is missed): completion p95 under the
    storm within 2x of idle for both kinds, no backlog once it stops, and over the soak no growth in open
    file descriptors, RSS flat over the second half, nothing left in flight, every chat turn answered with
    its tools called."""
    met: dict[str, bool] = {}
    if "load" in out:
        load = out["load"]
        for kind in ("served", "computed"):
            met[f"load_{kind}_p95_within_2x_idle"] = load[kind]["p95_ratio_load_over_idle"] <= load["target_p95_ratio"]
        met["load_no_backlog"] = load["status_after_storm_ms"] < 100
    if "soak" in out:
        soak = out["soak"]
        met["soak_fds_flat"] = soak["fds_growth"] <= 0
        met["soak_rss_flat_second_half"] = soak["rss_growth_second_half_mb"] <= SOAK_FLAT_MB
        met["soak_nothing_in_flight"] = soak["handlers_in_flight_end"] <= 2
        # the soak keeps up to 32 completions in flight over 20 documents, more than the inference queue's 16:
        # a chat step refused or shed for them waits for room (engine/chat/session.py) and still answers
        met["soak_chats_answered_with_tools"] = set(soak.get("chat_outcomes", {})) <= {"stop, 2 tool calls"}
    return met


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--model", help="GGUF (default: the tiny synthesized model)")
    ap.add_argument("--files", type=int, default=300, help="standard-library files in the repository")
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--skip", choices=("load", "soak"))
    ap.add_argument("--trace-python", type=int, metavar="FRAMES",
                    help="soak with tracemalloc in the server (FRAMES deep): which source lines' allocations "
                         "grew (bench/soak_tracing.py); its RSS figures then include the tracing")
    ap.add_argument("--pymalloc-stats", action="store_true",
                    help="soak recording pymalloc's arenas, live and free bytes at every sample (no tracing): "
                         "whether Python's object allocator fragments (bench/soak_tracing.py)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cf-load-"))
    try:
        model = Path(args.model) if args.model else None
        if model is None:
            from engine.model.synth import synthesize

            model = synthesize(work / "tiny.gguf", "tiny", seed=0)
        repo = copy_stdlib(work / "repo", files=args.files)
        docs = _docs(repo, 20)
        out: dict = {"repository_files": args.files, "model": model.name, "cpus": os.cpu_count()}
        if args.skip != "load":
            session = Session(repo, model, work / "cache", docs)
            out["load"] = run_load(session, docs, args.rate, args.seconds)
            print(json.dumps(out["load"], indent=2), file=sys.stderr)
            session.server.close()
        if args.skip != "soak":
            frames = args.trace_python or 0
            tracing = SoakTracing(work, frames) if frames or args.pymalloc_stats else None
            session = Session(repo, model, work / "cache", docs, tracing.env() if tracing else None)
            out["soak"] = run_soak(session, docs, args.events, tracing)
            session.server.close()
        out["targets_met"] = targets(out)
        text = json.dumps(out, indent=2)
        print(text)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(text + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    missed = [name for name, ok in out["targets_met"].items() if not ok]
    if missed:
        print("targets missed: " + ", ".join(missed), file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
