"""Decode speed with and without drafts (prompt lookup; a draft model with ``--draft-model``), on the quality
benchmark's cases, same greedy outputs?

For each case (the quality bench's corpora and seeded cuts, ``coderflash complete``'s prompt at ``--budget``)
the engine's completion runs once, which leaves its prompt in the KV cache; then the same generation
request runs with ``llama.draft = "none"``, ``"prompt-lookup"`` and (with ``--draft-model``) ``"model"``, each
on the cached prompt (one token re-evaluated; the draft model holds it too), so they differ only in decoding. Reported: decode tokens/s (generated tokens after the
first / time after the first token), drafted and accepted tokens, whether the texts are identical, and
the cost of verifying a batch of n tokens relative to one decode step on this machine (what decides
whether drafts can pay: a batch of n must cost well under n steps).

Run: ``.venv/bin/python bench/decode_bench.py --out bench/results/decode.json`` (about 10 minutes here);
speculative decoding: ``--model qwen2.5-coder-1.5b --draft-model qwen2.5-coder-0.5b`` (both pulled).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quality_bench import setup_corpus  # noqa: E402
from quality_cases import CORPORA  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.inference.postprocess import choose_shape, syntax_at_cursor  # noqa: E402
from engine.inference.runtime import completion_request  # noqa: E402
from engine.model_host import ModelHost  # noqa: E402
from engine.text_position import offset_at  # noqa: E402

DRAFTING = ("prompt-lookup", "model")


def batch_costs(backend, sizes=(1, 2, 4, 8, 11), repeats: int = 5) -> dict[int, float]:
    """Median ms to decode a batch of n tokens (logits for each) after the cached prompt, per size."""
    llm = backend.llm
    base = llm.n_tokens
    tokens = list(llm.input_ids[max(0, base - 64): base])[:max(sizes)]
    out = {}
    for n in sizes:
        times = []
        for _ in range(repeats):
            llm._ctx.kv_cache_seq_rm(-1, base, -1)
            llm.n_tokens = base
            t0 = time.perf_counter()
            llm._batch.set_batch(batch=tokens[:n], n_past=base, logits_all=True)
            llm._ctx.decode(llm._batch)
            times.append((time.perf_counter() - t0) * 1000)
        out[n] = round(statistics.median(times), 1)
    llm._ctx.kv_cache_seq_rm(-1, base, -1)
    llm.n_tokens = base
    return out


def run_case(engine, backend, c: dict, case: dict, budget: int, modes: tuple[str, ...]) -> dict:
    path = c["root"] / case["file"]
    buf = case["buffer"]
    engine.document_opened(path, buf)
    try:
        out = engine.complete(path, buf, case["line"], case["character"], budget=budget, use_cache=False)
    finally:
        engine.document_closed(path)
    ctx = out.context
    syntax = syntax_at_cursor(case["file"], buf, offset_at(buf, case["line"], case["character"]))
    shape = choose_shape(ctx.prefix + ctx.indent, ctx.suffix, engine.config.completion.max_lines, syntax)
    request = completion_request(ctx.pieces, shape, engine.config.completion.max_tokens,
                                 backend.prompt_format.stop_ids)
    row = {"case": case["id"], "kind": case["kind"], "prompt_tokens": out.result.prompt_tokens}
    if backend.draft_model is not None:  # the draft model holds the prompt, as after an idle warm-up (under
        backend.warm_prefix(request.pieces, save=False)  # the backend's lock: the engine's own warm-up may run)
    for mode in modes:
        backend.config = dataclasses.replace(backend.config, draft=mode)
        r = backend.generate(request)
        decode_ms = max(1e-6, r.elapsed_ms - r.first_token_ms)
        row[mode] = {"text": r.text, "generated": r.generated_tokens, "decode_ms": round(decode_ms, 1),
                     "evaluated": r.evaluated_tokens, "draft_tokens": r.draft_tokens,
                     "accepted_draft_tokens": r.accepted_draft_tokens}
    row["identical"] = row["none"]["text"] == row["prompt-lookup"]["text"]
    if "model" in modes:
        row["identical_model"] = row["none"]["text"] == row["model"]["text"]
    return row


def summarize(rows: list[dict], modes: tuple[str, ...]) -> dict:
    """Per mode: decode tokens/s, drafted and accepted tokens. ``speedup``/``accepted_ratio``/
    ``identical_outputs``: prompt lookup's; the same with ``_model``: the draft model's."""
    out: dict = {}
    for mode in modes:
        gen = sum(max(0, r[mode]["generated"] - 1) for r in rows)
        ms = sum(r[mode]["decode_ms"] for r in rows)
        out[mode] = {"decode_tokens_per_s": round(gen / ms * 1000, 2) if ms else None, "tokens": gen,
                     "draft_tokens": sum(r[mode]["draft_tokens"] for r in rows),
                     "accepted_draft_tokens": sum(r[mode]["accepted_draft_tokens"] for r in rows)}
    base = out["none"]["decode_tokens_per_s"]
    for mode in (m for m in DRAFTING if m in modes):
        tag = "" if mode == "prompt-lookup" else "_model"
        drafted = out[mode]["draft_tokens"]
        out["accepted_ratio" + tag] = round(out[mode]["accepted_draft_tokens"] / drafted, 3) if drafted else None
        out["speedup" + tag] = round(out[mode]["decode_tokens_per_s"] / base, 3) if base else None
        out["identical_outputs" + tag] = f"{sum(r['identical' + tag] for r in rows)}/{len(rows)}"
    out["target_speedup"] = 1.5
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b", help="a model setting (default: the embedded model)")
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--cases", type=int, default=2, help="cases per corpus per cut kind")
    ap.add_argument("--kinds", nargs="+", default=["body", "random"])
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0: the engine's default)")
    ap.add_argument("--draft-tokens", type=int, default=10)
    ap.add_argument("--draft-model", default="", help="a model setting: also measure it as the draft model")
    ap.add_argument("--only", nargs="*", help="corpus names")
    ap.add_argument("--fetch-corpora", action="store_true")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/coderflash-bench"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dbench-"))
    config = Config(model=args.model, cache_dir=str(work / "cache"))
    config.llama.threads = args.threads
    config.llama.n_ctx = args.budget + config.completion.max_tokens + 64
    config.llama.draft_tokens = args.draft_tokens
    modes = ("none", "prompt-lookup") + (("model",) if args.draft_model else ())
    if args.draft_model:
        config.llama.draft_model, config.llama.draft = args.draft_model, "model"
    config.completion.timeout_ms = 600_000
    config.completion.latency_target = False  # as `coderflash complete`: the whole prompt, whatever is resident
    host = ModelHost(config, log=lambda m: None)
    backend = host.backend
    if args.draft_model and backend.draft_model is None:
        sys.exit(f"no draft model: {backend.draft_error}")
    rows: list[dict] = []
    costs = None
    for name, lang, how in CORPORA:
        if args.only and name not in args.only:
            continue
        c = setup_corpus(args, host, config, work, name, lang, how, args.cases)
        engine = c["engine"]
        for kind in args.kinds:
            for i, case in enumerate([x for x in c["cases"] if x["kind"] == kind][:args.cases]):
                case["id"] = f"{name}/{kind}/{i}"
                row = run_case(engine, backend, c, case, args.budget, modes)
                rows.append(row)
                if costs is None:
                    costs = batch_costs(backend)
                print(json.dumps({k: v for k, v in row.items() if k not in modes} | {
                    m: {k: v for k, v in row[m].items() if k != "text"} for m in modes}), file=sys.stderr)
    summary = summarize(rows, modes)
    summary["batch_ms"] = costs
    summary["batch_cost_in_steps"] = {n: round(ms / costs[1], 2) for n, ms in costs.items()} if costs else None
    info = backend.info()
    data = {"summary": summary, "config": {"model": args.model, "budget": args.budget, "seed": args.seed,
                                           "kinds": args.kinds, "cases_per_kind": args.cases,
                                           "draft_tokens": args.draft_tokens, "threads": args.threads,
                                           "draft_model": args.draft_model or None,
                                           "flash_attn": config.llama.flash_attn,
                                           "gpu_offload": info.get("gpu_offload")},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(data, indent=1))
    print(json.dumps(summary, indent=1))
    host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
