"""Probe: does the engine lose to the buffer alone because it gives the current file too small a share?

At 2K the engine gives the current file about 36% of its prompt (prefix cap ``512 + budget/8``, suffix
cap 128) and the rest to the repository; the buffer-only baseline gives the file all of it. For every case
of a finished ``quality_bench`` run, the engine's prompt is rebuilt (the context builder, no model; the
cut buffer as the open document) and checked against the run's token count; then for each share ``s``
the same total is sent with the current file's FIM built as the buffer-only baseline builds it at
``s × tokens``, and the engine's own repository blocks in the rest (its order kept; the lowest-priority,
first blocks dropped, the gap filled with the head of the next one). Same model, request shape and trim.

    .venv/bin/python bench/quality_probe.py --run bench/results/quality.json --shares 0.5 0.8 \\
        --budgets 2048 --out bench/results/quality_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quality_bench import complete_like_engine, log, setup_corpus  # noqa: E402
from quality_cases import CORPORA, score  # noqa: E402
from quality_prompts import buffer_only, count_pieces, fill_material  # noqa: E402
from quality_report import aggregate  # noqa: E402

from engine.config import Config  # noqa: E402
from engine.context.result import split_at_cursor  # noqa: E402
from engine.inference.postprocess import syntax_at_cursor  # noqa: E402
from engine.model_host import ModelHost  # noqa: E402


def repository_units(pieces: list, sep: int) -> list[tuple[int, str, str]]:
    """The engine prompt's repository file blocks as (key, path, content), highest priority (last in the
    prompt, next to the current file) first; the current file's block is not one of them."""
    last = len(pieces) - 1 - list(reversed(pieces)).index(sep)
    units = []
    for i in range(1, last):
        if pieces[i - 1] == sep and isinstance(pieces[i], str):
            path, _, content = pieces[i].partition("\n")
            units.append((i, path, content))
    return list(reversed(units))


def with_share(count, fmt, repo_name: str, case: dict, pieces: list, target: int, share: float):
    """(pieces, prefix, suffix): the current file at ``share`` of ``target`` tokens, the engine's repository
    blocks in the rest, ``target`` tokens in all."""
    prefix, suffix = split_at_cursor(case["buffer"], case["line"], case["character"])
    current, pre, suf = buffer_only(count, fmt, repo_name, case["file"], prefix, suffix, round(share * target))
    head = fmt.repo_header(repo_name)
    room = target - count_pieces(count, current)
    material = fill_material(count, fmt, repository_units(pieces, fmt.file_sep_id), room)
    return head + material + current[len(head):], pre, suf


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="bench/results/quality.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--shares", type=float, nargs="+", default=[0.5, 0.8])
    ap.add_argument("--budgets", type=int, nargs="*", help="default: the run's")
    ap.add_argument("--cache", default=str(Path.home() / ".cache/coderflash-bench"))
    args = ap.parse_args()
    run = json.loads(Path(args.run).read_text())
    cfg = run["config"]
    budgets = args.budgets or cfg["budgets"]
    rows = {(r["case"], r["budget"], r["method"]): r for r in run["rows"]}
    work = Path(tempfile.mkdtemp(prefix="qprobe-"))
    config = Config(model=cfg["model"], cache_dir=str(work / "cache"))
    config.llama.threads, config.llama.flash_attn, config.llama.n_ctx = cfg["threads"], cfg["flash_attn"], cfg["n_ctx"]
    config.completion.timeout_ms = 600_000
    host = ModelHost(config)
    bench_args = argparse.Namespace(cache=args.cache, fetch_corpora=False, seed=cfg["seed"])
    n_max = max(int(v) for v in cfg["cases_per_kind"].values())
    out: dict = {"run": args.run, "shares": args.shares, "budgets": budgets, "rows": [], "rebuilt": {}}
    t_start = time.time()
    try:
        for name, lang, how in CORPORA:
            if name not in run["corpora"]:
                continue
            c = setup_corpus(bench_args, host, config, work, name, lang, how, n_max)
            engine = c["engine"]
            fmt, count = engine.backend.prompt_format, engine.backend.count_tokens
            for i, case in enumerate(c["cases"]):
                case["id"] = f"{name}/{case['kind']}/{i}"
            for budget in budgets:
                for case in sorted(c["cases"], key=lambda x: (x["file"], x["line"])):
                    ran = rows.get((case["id"], budget, "engine"))
                    if ran is None:
                        continue
                    path = c["root"] / case["file"]
                    engine.document_opened(path, case["buffer"])
                    try:
                        ctx = engine.build_context(path, case["buffer"], case["line"], case["character"], budget)
                    finally:
                        engine.document_closed(path)
                    total = count_pieces(count, ctx.pieces)
                    same = total == ran["prompt_tokens"]
                    out["rebuilt"][f"{budget}:{case['id']}"] = same
                    offset = len(split_at_cursor(case["buffer"], case["line"], case["character"])[0])
                    syntax = syntax_at_cursor(case["file"], case["buffer"], offset)
                    for share in args.shares:
                        pieces, pre, suf = with_share(count, fmt, name, case, list(ctx.pieces), total, share)
                        got = complete_like_engine(engine, pieces, pre, suf, syntax, case["file"])
                        got.update(score(case, got["completion"], lang))
                        got.update(case=case["id"], kind=case["kind"], corpus=name, budget=budget, share=share,
                                   target_tokens=total, rebuilt_identically=same)
                        out["rows"].append(got)
                        log(f"{budget} {case['id']} share {share}: ident={got['ident_em']} "
                            f"first={got['first_line_em']} tokens={got['prompt_tokens']}/{total} "
                            f"(engine as run: ident={ran['ident_em']}) {got['completion'][:50]!r}")
                        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
            engine.close()
    finally:
        host.close()
    out["summary"] = summary(out["rows"], rows)
    out["seconds"] = round(time.time() - t_start)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["summary"], indent=1))
    return 0


def summary(probe_rows: list[dict], run_rows: dict) -> dict:
    """Per budget and kind (and all kinds): each share vs the run's engine and buffer-only on the same cases."""
    out: dict = {}
    keys = {(r["budget"], r["share"]) for r in probe_rows}
    for budget, share in sorted(keys):
        mine = [r for r in probe_rows if r["budget"] == budget and r["share"] == share]
        for kind in ("all", "symbol", "random", "body"):
            rs = [r for r in mine if kind in ("all", r["kind"])]
            if not rs:
                continue
            node = out.setdefault(str(budget), {}).setdefault(kind, {})
            node[f"share_{share}"] = aggregate(rs)
            for method in ("engine", "buffer_only"):
                node.setdefault(method, aggregate([run_rows[(r["case"], budget, method)] for r in rs]))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
