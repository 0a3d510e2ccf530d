"""Completion quality with the real model in the loop (CrossCodeEval / RepoBench style).

Per case (a cut in a real file; see ``quality_cases``) and budget, four prompts for the same model, greedy:

- ``engine``: coderflash itself — ``Engine.complete`` with the budget (the prompt ``coderflash complete``
  builds: the engine's context, its request shape, its post-processing). The cut buffer is the open
  document (``document_opened``: the index overlay), so nothing of the removed text leaks through the index.
- ``buffer_only``: the current buffer alone (FIM, as much prefix/suffix as fits).
- ``jaccard_windows``: Jaccard-similar 20-line windows of other files + the engine's current-file part.
- ``aider_map``: an Aider-style repository map (definition lines by personalised PageRank) + the engine's
  current-file part.

The baselines are built to exactly the engine's prompt token count for that case (the model's tokenizer;
``quality_prompts``), in the same Qwen repository layout, and go through the same request shape and the
engine's own trim (``engine/inference/postprocess.py``): only the context differs. KV reuse is only what
llama.cpp's longest-common-prefix reuse gives between consecutive prompts (methods run one after another
over a corpus's cases, so e.g. the engine's repository part, stable across files, is reused).

Metrics per corpus × cut kind × method × budget and overall: identifier exact match, first-line exact
match, edit similarity, and for body cuts whether the file parses with the completion inserted.

    .venv/bin/python bench/quality_bench.py --fetch-corpora --quick --out /tmp/q.json
    .venv/bin/python bench/quality_bench.py --budgets 2048 8192 --cases 2 --cases-at 8192=1 \\
        --kinds-at 8192=symbol --out bench/results/quality.json --md bench/results/quality.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from context_bench import AiderMap, JaccardWindows  # noqa: E402
from quality_cases import CORPORA, KINDS, all_cuts, corpus_source, install_corpus, score  # noqa: E402
from quality_prompts import buffer_only, count_pieces, engine_tail, fill_material  # noqa: E402
from quality_report import summarize, write  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.context.result import split_at_cursor  # noqa: E402
from engine.inference.postprocess import choose_shape, finish_completion  # noqa: E402
from engine.inference.runtime import completion_request  # noqa: E402
from engine.model.pypi_models import DEFAULT_PYPI_MODEL  # noqa: E402
from engine.model_host import ModelHost  # noqa: E402
from engine.service import Engine  # noqa: E402

METHODS = ("engine", "buffer_only", "jaccard_windows", "aider_map")
DEFAULT_MODEL = DEFAULT_PYPI_MODEL  # the embedded default


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def per_budget(items: list[str] | None, cast) -> dict[int, object]:
    out = {}
    for item in items or []:
        budget, value = item.split("=", 1)
        out[int(budget)] = cast(value)
    return out


class Run:
    """The results so far, written after every case (a cut-short run still leaves its JSON)."""

    def __init__(self, args: argparse.Namespace, config: dict) -> None:
        self.args = args
        self.data: dict = {"config": config, "corpora": {}, "cases": [], "rows": []}

    def save(self) -> None:
        self.data["summary"] = summarize(self.data["rows"], self.data["config"]["methods"])
        write(self.data, self.args.out, self.args.md)


def setup_corpus(args, host, config, work, name, lang, how, n_max):
    src = corpus_source(Path(args.cache), how, args.fetch_corpora)
    root = work / name
    install_corpus(src, root, lang)
    engine = Engine(config, root, host=host)
    stats = engine.reindex()
    index = engine.repo_index()
    cases, data = all_cuts(index, lang, n_max, args.seed)
    info = {"language": lang, "source": " ".join(how[:2]), "path": str(src), "files": len(data["texts"]),
            "lines": sum(len(v) for v in data["lines"].values()),
            "bytes": sum(len(t.encode()) for t in data["texts"].values()),
            "definitions": stats.get("definitions"),
            "cases": dict(Counter(c["kind"] for c in cases))}
    return {"name": name, "lang": lang, "root": root, "engine": engine, "index": index, "data": data,
            "cases": cases, "jacc": JaccardWindows(data["texts"]), "aider": AiderMap(index, data), "info": info}


def run_engine(c: dict, case: dict, budget: int) -> tuple[dict, dict]:
    engine, index = c["engine"], c["index"]
    path = c["root"] / case["file"]
    buf = case["buffer"]
    engine.document_opened(path, buf)  # the editor's open document: the index sees the cut buffer
    try:
        out = engine.complete(path, buf, case["line"], case["character"], budget=budget, use_cache=False)
        engine.runtime.scheduler.wait_idle(timeout=600)  # the snapshot job it queued, while the KV holds it
        cur_refs = Counter(r.name for r in index.references_in_range(case["file"], 0, buf.count("\n") + 1))
        leak = case["kind"] in ("symbol", "xfile") and any(  # the index must not see the removed symbol on the cut line
            r.name == case["symbol"] for r in index.references_in_range(case["file"], case["line"], case["line"]))
    finally:
        engine.document_closed(path)
    r = out.result
    state = {"target": r.prompt_tokens, "tail": engine_tail(out.context.pieces, engine.backend.prompt_format),
             "prefix": out.context.prefix, "suffix": out.context.suffix, "indent": out.context.indent,
             "syntax": out.syntax,
             "cur_refs": cur_refs}
    row = {"completion": out.completion, "raw": r.text, "prompt_tokens": r.prompt_tokens,
           "context_tokens": out.context.prompt_tokens, "reused_tokens": r.reused_tokens,
           "evaluated_tokens": r.evaluated_tokens, "generated_tokens": r.generated_tokens,
           "elapsed_ms": round(r.elapsed_ms), "finish_reason": r.finish_reason,
           "sections": Counter(s.kind for s in out.context.sections), "leak": leak}
    state["prompt"] = out.context.prompt
    return row, state


def baseline_prompt(c: dict, case: dict, method: str, state: dict, count) -> tuple[list, str, str]:
    """(pieces, prefix, suffix): the prompt, and the current file's text in it (without the cursor line's
    indentation when the engine leaves it out: ``ContextResult.indent``)."""
    engine = c["engine"]
    fmt = engine.backend.prompt_format
    target = state["target"]
    if method == "buffer_only":
        prefix, suffix = split_at_cursor(case["buffer"], case["line"], case["character"])
        return buffer_only(count, fmt, c["name"], case["file"], prefix[:len(prefix) - len(state["indent"])],
                           suffix, target)
    head = fmt.repo_header(c["name"])
    room = target - count_pieces(count, head) - count_pieces(count, state["tail"])
    if method == "jaccard_windows":
        units, spans = [], []
        for _, path, start, window in c["jacc"].ranked(case["file"], state["prefix"]):
            if any(p == path and abs(s - start) < 20 for p, s in spans):
                continue  # overlapping windows of one file would repeat lines
            spans.append((path, start))
            units.append((len(units), path, window))
    else:
        units = [(path, path, line) for path, line in c["aider"].ranked_headers(case["file"], state["cur_refs"])]
    pieces = head + fill_material(count, fmt, units, room) + state["tail"]
    return pieces, state["prefix"], state["suffix"]


def run_baseline(c: dict, case: dict, method: str, state: dict) -> dict:
    engine = c["engine"]
    pieces, prefix, suffix = baseline_prompt(c, case, method, state, engine.backend.count_tokens)
    state[f"prompt:{method}"] = engine.backend.prompt_format.render(pieces)
    return complete_like_engine(engine, pieces, prefix + state["indent"], suffix, state["syntax"], case["file"],
                                state["indent"])


def complete_like_engine(engine: Engine, pieces: list, prefix: str, suffix: str, syntax: str | None,
                         path: str, indent: str = "") -> dict:
    """Generate from ``pieces`` with the request shape and finishing the engine uses for a completion
    (``engine/inference/runtime.completion_request``, ``postprocess.finish_completion``; ``prefix``/``suffix``:
    the current file's text around the cursor as far as the prompt has it, ``prefix`` with the cursor line's
    ``indent`` even when the prompt leaves it out; ``syntax``: at the cursor)."""
    cfg = engine.config.completion
    shape = choose_shape(prefix, suffix, cfg.max_lines, syntax)
    request = completion_request(pieces, shape, cfg.max_tokens, engine.backend.prompt_format.stop_ids)
    r = engine.generate(request).result()
    completion = finish_completion(r.text, r.finish_reason, prefix, suffix, shape, path, indent)
    return {"completion": completion, "raw": r.text, "prompt_tokens": r.prompt_tokens,
            "reused_tokens": r.reused_tokens, "evaluated_tokens": r.evaluated_tokens,
            "generated_tokens": r.generated_tokens, "elapsed_ms": round(r.elapsed_ms),
            "finish_reason": r.finish_reason}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--budgets", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--cases", type=int, default=4, help="cases per corpus per cut kind")
    ap.add_argument("--cases-at", action="append", help="BUDGET=N: fewer cases at a budget (the first N)")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--kinds-at", action="append", help="BUDGET=kind,kind: cut kinds at a budget")
    ap.add_argument("--only", nargs="*", help="corpus names")
    ap.add_argument("--case-ids", nargs="+", metavar="ID",
                    help="only these cases (ids as a run with the same --seed, --cases and corpora numbers them, "
                         "e.g. rust-serde-json/xfile/15): a before/after on the cuts a change is about")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flash-attn", action="store_true",
                    help="llama.cpp flash attention (off by default: 3x slower decoding on this CPU)")
    ap.add_argument("--quick", action="store_true", help="smoke run: python-unittest, 1024 tokens, 1 case per kind")
    ap.add_argument("--fetch-corpora", action="store_true", help="download the npm/Debian corpora into --cache")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/coderflash-bench"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--md", help="also write the Markdown tables here")
    ap.add_argument("--prompts", help="write every prompt (rendered) into this directory")
    ap.add_argument("--baselines-from", metavar="RUN.json",
                    help="reuse a finished run's baseline rows where the case, budget and the engine's prompt "
                         "token count are the same (a baseline prompt depends only on those and the engine's "
                         "current-file part: only valid when a change left that part alone)")
    ap.add_argument("--baselines-tolerance", type=int, default=0, metavar="TOKENS",
                    help="with --baselines-from: also reuse a row whose engine prompt count differs by at most this "
                         "many tokens (exploration only: figures quoted as final use 0, the default)")
    args = ap.parse_args()
    if args.quick:
        args.only, args.budgets, args.cases = args.only or ["python-unittest"], [1024], 1
    cases_at = {b: per_budget(args.cases_at, int).get(b, args.cases) for b in args.budgets}
    kinds_at = {b: per_budget(args.kinds_at, lambda v: v.split(",")).get(b, args.kinds) for b in args.budgets}

    work = Path(tempfile.mkdtemp(prefix="qbench-"))
    config = Config(model=args.model, cache_dir=str(work / "cache"))
    config.llama.threads = args.threads
    config.llama.flash_attn = args.flash_attn
    config.llama.n_ctx = max(args.budgets) + config.completion.max_tokens + 64
    config.completion.timeout_ms = 600_000  # quality, not latency: never cut a generation short
    config.completion.latency_target = False  # as `coderflash complete`: the whole prompt, whatever is resident
    host = ModelHost(config, log=lambda m: None)
    run = Run(args, {"model": args.model, "budgets": args.budgets, "cases_per_kind": cases_at, "kinds": kinds_at,
                     "seed": args.seed, "threads": args.threads, "flash_attn": args.flash_attn,
                     "n_ctx": config.llama.n_ctx, "max_tokens": config.completion.max_tokens,
                     "max_lines": config.completion.max_lines, "methods": args.methods, "started": time.time()})
    run.data["config"]["model_info"] = {k: v for k, v in host.backend.info().items() if k != "cached_tokens"}
    reusable = {}
    if args.baselines_from:
        for row in json.loads(Path(args.baselines_from).read_text())["rows"]:
            if row["method"] != "engine":
                reusable[(row["case"], row["method"], row["budget"])] = row
    corpora = []
    try:
        for name, lang, how in CORPORA:
            if args.only and name not in args.only:
                continue
            c = setup_corpus(args, host, config, work, name, lang, how, max(cases_at.values()))
            corpora.append(c)
            run.data["corpora"][name] = c["info"]
            for i, case in enumerate(c["cases"]):
                case["id"] = f"{name}/{case['kind']}/{i}"
                run.data["cases"].append({k: v for k, v in case.items() if k != "buffer"})
            log(f"{name}: {json.dumps(c['info'])}")
        run.save()
        for budget in args.budgets:
            for c in corpora:
                chosen = []
                for kind in kinds_at[budget]:
                    chosen += [x for x in c["cases"] if x["kind"] == kind][:cases_at[budget]]
                if args.case_ids:
                    chosen = [x for x in chosen if x["id"] in args.case_ids]
                chosen.sort(key=lambda x: (x["file"], x["line"]))  # neighbours share prompt starts
                states = {}
                for method in args.methods:
                    for case in chosen:
                        t0 = time.time()
                        old = reusable.get((case["id"], method, budget))
                        if method == "engine":
                            row, states[case["id"]] = run_engine(c, case, budget)
                        elif old is not None and abs(old["target_tokens"] - states[case["id"]]["target"]) \
                                <= args.baselines_tolerance:
                            row = {**old, "reused_from": args.baselines_from}
                        else:
                            row = run_baseline(c, case, method, states[case["id"]])
                        row.update(score(case, row["completion"], c["lang"]))
                        st = states[case["id"]]
                        text = st["prompt"] if method == "engine" else st.get(f"prompt:{method}")
                        if args.prompts and text is not None:  # a reused row's prompt was not rebuilt
                            dump = Path(args.prompts) / f"{budget}.{case['id'].replace('/', '.')}.{method}.txt"
                            dump.parent.mkdir(parents=True, exist_ok=True)
                            dump.write_text(text)
                        row.update(corpus=c["name"], kind=case["kind"], case=case["id"], method=method,
                                   budget=budget, target_tokens=states[case["id"]]["target"],
                                   seconds=round(time.time() - t0, 1))
                        run.data["rows"].append(row)
                        run.save()
                        log(f"{budget} {case['id']} {method}: ident={row['ident_em']} first={row['first_line_em']} "
                            f"es={row['edit_sim']} tokens={row['prompt_tokens']}/{row['target_tokens']} "
                            f"eval={row['evaluated_tokens']} {row['seconds']}s {row['completion'][:60]!r} "
                            f"want {case['expected'][:40]!r}")
                shutil.rmtree(work / "cache" / "kv", ignore_errors=True)  # snapshots are never read here
        run.data["config"]["seconds"] = round(time.time() - run.data["config"]["started"])
        run.save()
    finally:
        for c in corpora:
            c["engine"].close()
        host.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(run.data["summary"]["overall"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
