"""Aggregates and the Markdown tables of the quality benchmark (``bench/quality_bench.py``).

Only complete cases count: a case at a budget enters the figures once every method has run on it, so a
cut-short run compares the methods on the same cases.

Runs of the same configuration split by corpus (an 8K run of five corpora takes hours on two cores) are
combined into one set of figures with ``merge``:

    .venv/bin/python bench/quality_report.py A.json B.json --out AB.json --md AB.md
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Sequence

BASELINES = ("buffer_only", "jaccard_windows", "aider_map")


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def aggregate(rows: list[dict]) -> dict:
    idents = [r["ident_em"] for r in rows if r["ident_em"] is not None]
    parses = [r["parses"] for r in rows if "parses" in r]
    return {"n": len(rows), "ident_em": _mean(idents), "n_ident": len(idents),
            "first_line_em": _mean([r["first_line_em"] for r in rows]),
            "edit_sim": _mean([r["edit_sim"] for r in rows]),
            "parses": _mean(parses), "n_parse": len(parses)}


def complete_rows(rows: list[dict], methods: Sequence[str]) -> list[dict]:
    have: dict[tuple, set] = defaultdict(set)
    for r in rows:
        have[(r["budget"], r["case"])].add(r["method"])
    return [r for r in rows if have[(r["budget"], r["case"])] >= set(methods)]


def paired(rows: list[dict], budget: str, baseline: str) -> dict:
    """The engine against one baseline case by case (identifier EM): the cases only the engine got, the
    cases only the baseline got, and the exact two-sided sign (McNemar) test's p-value on those — with a
    few dozen cases, a difference of one or two cases is within what chance gives."""
    got: dict[str, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if str(r["budget"]) == budget and r["ident_em"] is not None:
            got[r["case"]][r["method"]] = r["ident_em"]
    pairs = [(m["engine"], m[baseline]) for m in got.values() if "engine" in m and baseline in m]
    wins = sum(1 for e, b in pairs if e > b)
    losses = sum(1 for e, b in pairs if e < b)
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2 ** n if n else 1.0
    return {"baseline": baseline, "engine_only": wins, "baseline_only": losses,
            "sign_test_p": round(min(1.0, 2 * tail), 3)}


def summarize(rows: list[dict], methods: Sequence[str]) -> dict:
    rows = complete_rows(rows, methods)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        b, m = str(r["budget"]), r["method"]
        groups[("overall", b, m)].append(r)
        groups[("kind", b, r["kind"], m)].append(r)
        groups[("corpus", b, r["corpus"], r["kind"], m)].append(r)
    out: dict = {"overall": {}, "by_kind": {}, "by_corpus": {}, "acceptance": {}, "prompt_tokens": {},
                 "leaks": sum(bool(r.get("leak")) for r in rows)}
    for key, rs in groups.items():
        node = out[{"overall": "overall", "kind": "by_kind", "corpus": "by_corpus"}[key[0]]]
        for k in key[1:-1]:
            node = node.setdefault(k, {})
        node[key[-1]] = aggregate(rs)
    for b, per_method in out["overall"].items():
        eng = per_method.get("engine")
        bases = {m: per_method[m] for m in BASELINES if m in per_method}
        if eng is None or not bases or eng["ident_em"] is None:
            continue
        best = max(bases, key=lambda m: bases[m]["ident_em"] or 0.0)
        best_first = max(bases, key=lambda m: bases[m]["first_line_em"] or 0.0)
        delta = round(eng["ident_em"] - (bases[best]["ident_em"] or 0.0), 3)
        out["acceptance"][b] = {
            "engine_ident_em": eng["ident_em"], "best_baseline": best,
            "best_baseline_ident_em": bases[best]["ident_em"], "delta": delta, "ident_em_beats_by_0.10": delta >= 0.10,
            "engine_first_line_em": eng["first_line_em"], "best_first_line_baseline": best_first,
            "best_baseline_first_line_em": bases[best_first]["first_line_em"],
            "first_line_at_least_best": (eng["first_line_em"] or 0) >= (bases[best_first]["first_line_em"] or 0),
            "cases": eng["n"], "paired": paired(rows, b, best)}
    for b in out["overall"]:
        base_rows = [r for r in rows if str(r["budget"]) == b and r["method"] != "engine"]
        short = [r["target_tokens"] - r["prompt_tokens"] for r in base_rows]
        out["prompt_tokens"][b] = {
            "baseline_prompts": len(short), "exactly_engine_tokens": sum(1 for s in short if s == 0),
            "max_under": max(short, default=0), "max_over": -min(short, default=0),
            "engine_mean_tokens": _mean([r["prompt_tokens"] for r in rows
                                         if str(r["budget"]) == b and r["method"] == "engine"])}
    return out


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def _table(title: str, per_method: dict, methods: Sequence[str]) -> list[str]:
    lines = [title, "", "| method | cases | identifier EM | first-line EM | edit sim. | parses (body) |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in methods:
        a = per_method.get(m)
        if a is None:
            continue
        parse = f"{_fmt(a['parses'])} ({a['n_parse']})" if a["n_parse"] else "–"
        lines.append(f"| {m} | {a['n']} | {_fmt(a['ident_em'])} ({a['n_ident']}) | {_fmt(a['first_line_em'])} | "
                     f"{_fmt(a['edit_sim'])} | {parse} |")
    return lines + [""]


def markdown(data: dict, methods: Sequence[str]) -> str:
    cfg, s = data["config"], data["summary"]
    info = cfg.get("model_info", {})
    out = ["# Completion quality with the model in the loop (`bench/quality_bench.py`)", "",
           f"Model `{info.get('model_name', cfg['model'])}` ({info.get('architecture', '')}), greedy, "
           f"{cfg['threads']} threads, flash attention {'on' if cfg['flash_attn'] else 'off'}; seed {cfg['seed']}; "
           f"cases per corpus per cut kind {cfg['cases_per_kind']}, kinds {cfg['kinds']}; "
           f"{cfg.get('seconds', '?')} s in all. Identifier EM counts the cases whose expected text has an "
           "identifier (in brackets); parses: body cuts only.", "",
           "| corpus | language | source | files | lines | cases sampled |", "|---|---|---|---:|---:|---|"]
    for name, c in data["corpora"].items():
        out.append(f"| {name} | {c['language']} | {c['source']} | {c['files']} | {c['lines']} | "
                   f"{', '.join(f'{k} {v}' for k, v in c['cases'].items())} |")
    out.append("")
    for b, acc in s["acceptance"].items():
        out.append(f"- **{b} tokens**: engine identifier EM {_fmt(acc['engine_ident_em'])} vs best baseline "
                   f"{acc['best_baseline']} {_fmt(acc['best_baseline_ident_em'])} (Δ {acc['delta']:+.2f}; "
                   f"{'meets' if acc['ident_em_beats_by_0.10'] else 'misses'} the +0.10 bar); first-line EM "
                   f"{_fmt(acc['engine_first_line_em'])} vs {acc['best_first_line_baseline']} "
                   f"{_fmt(acc['best_baseline_first_line_em'])}; {acc['cases']} cases.")
        pair = acc.get("paired")
        if pair:
            out.append(f"  Case by case against {pair['baseline']}: {pair['engine_only']} cases only the engine "
                       f"got, {pair['baseline_only']} only the baseline got (exact sign test p = "
                       f"{pair['sign_test_p']:.3f}).")
    for b, t in s["prompt_tokens"].items():
        out.append(f"- {b}: {t['exactly_engine_tokens']}/{t['baseline_prompts']} baseline prompts have exactly the "
                   f"engine's token count (mean {t['engine_mean_tokens']}); at most {t['max_under']} under, "
                   f"{t['max_over']} over.")
    out.append(f"- Leaks (the index saw a removed symbol on its cut line): {s['leaks']}.")
    out.append("")
    for b in s["overall"]:
        out += _table(f"## {b} tokens, all corpora and cut kinds", s["overall"][b], methods)
        for kind, per_method in s["by_kind"].get(b, {}).items():
            out += _table(f"### {b} tokens, {kind} cuts", per_method, methods)
    out += ["## Per corpus (identifier EM / first-line EM / edit similarity; cases)", "",
            "| budget | corpus | kind | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for b, corpora in s["by_corpus"].items():
        for corpus, kinds in corpora.items():
            for kind, per_method in kinds.items():
                cells = []
                for m in methods:
                    a = per_method.get(m)
                    cells.append("–" if a is None else f"{_fmt(a['ident_em'])} / {_fmt(a['first_line_em'])} / "
                                 f"{_fmt(a['edit_sim'])}; {a['n']}")
                out.append(f"| {b} | {corpus} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def write(data: dict, out: str, md: str | None = None) -> None:
    """A run's JSON at ``out`` (replaced whole: a reader never sees half a file) and, with ``md``, its tables."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)
    if md:
        Path(md).write_text(markdown(data, data["config"]["methods"]))


SAME_CONFIG = ("model", "seed", "threads", "flash_attn", "max_tokens", "max_lines", "methods")


def merge(runs: list[dict], names: list[str]) -> dict:
    """One run of ``runs`` (their corpora, cases and rows; a case id names its corpus, so none collide),
    with the summary recomputed. Raises ValueError when the runs differ in what the figures depend on
    (model, seed, methods, decoding) or share a corpus."""
    first = runs[0]["config"]
    for run, name in zip(runs[1:], names[1:]):
        differ = [k for k in SAME_CONFIG if run["config"].get(k) != first.get(k)]
        if differ:
            raise ValueError(f"{name} differs from {names[0]} in {', '.join(differ)}")
    config = dict(first, merged_from=names, seconds=sum(r["config"].get("seconds") or 0 for r in runs))
    out: dict = {"config": config, "corpora": {}, "cases": [], "rows": []}
    for run, name in zip(runs, names):
        shared = set(out["corpora"]) & set(run["corpora"])
        if shared:
            raise ValueError(f"{name} repeats corpus {', '.join(sorted(shared))}")
        out["corpora"].update(run["corpora"])
        out["cases"] += run["cases"]
        out["rows"] += run["rows"]
    out["summary"] = summarize(out["rows"], config["methods"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="Combine quality_bench runs split by corpus into one.")
    ap.add_argument("runs", nargs="+", help="quality_bench JSON files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--md", help="also write the Markdown tables here")
    args = ap.parse_args()
    data = merge([json.loads(Path(p).read_text()) for p in args.runs], args.runs)
    write(data, args.out, args.md)
    print(json.dumps(data["summary"]["acceptance"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
