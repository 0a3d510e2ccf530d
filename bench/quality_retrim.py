"""Re-finish a ``quality_bench`` run's stored generations with today's post-processing, without the model.

Why: greedy generation does not depend on the post-processing, so a change to what is shown of a
generation (``engine/inference/postprocess.finish_completion``) can be measured on every stored raw
generation of a run, all methods alike, in seconds: the run's own figures are the "before", this
script's the "after". The cases are rebuilt from the corpora with the run's seed (each checked against the
run's expected text); what the trim reads — the cursor's line, the text after the cursor, the syntax at
the cursor — comes from the cut buffer.

    .venv/bin/python bench/quality_retrim.py --run bench/results/quality.json --healed --out /tmp/retrim.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from context_bench import open_index  # noqa: E402
from quality_cases import CORPORA, all_cuts, corpus_source, install_corpus, score  # noqa: E402
from quality_report import aggregate  # noqa: E402

from engine.context.result import cursor_indentation, split_at_cursor  # noqa: E402
from engine.inference.postprocess import choose_shape, finish_completion, syntax_at_cursor  # noqa: E402


def rebuilt_cases(run: dict, cache: Path, work: Path) -> dict[str, dict]:
    """The run's cases with their buffers, by id (the same sampling as ``quality_bench.setup_corpus``)."""
    seed = run["config"]["seed"]
    n_max = max(int(n) for n in run["config"]["cases_per_kind"].values())
    wanted = {c["id"]: c for c in run["cases"]}
    out = {}
    for name, lang, how in CORPORA:
        if not any(i.startswith(name + "/") for i in wanted):
            continue
        root = work / name
        install_corpus(corpus_source(cache, how, False), root, lang)
        index = open_index(root, work / f"{name}.cache")
        cases, _ = all_cuts(index, lang, n_max, seed)
        for i, case in enumerate(cases):
            case_id = f"{name}/{case['kind']}/{i}"
            if case_id in wanted:
                if wanted[case_id]["expected"] != case["expected"]:
                    raise SystemExit(f"{case_id}: the rebuilt case differs from the run's")
                out[case_id] = {**case, "lang": lang}
        index.close()
    missing = set(wanted) - set(out)
    if missing:
        raise SystemExit(f"cases not rebuilt: {sorted(missing)[:5]}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a quality_bench JSON with raw generations")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/coderflash-bench"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--healed", action="store_true",
                    help="the run left the cursor line's indentation out of its prompts (ContextResult.indent; "
                         "runs after commit 524fecb): finish as the engine does then")
    args = ap.parse_args()
    run = json.loads(Path(args.run).read_text())
    max_lines = run["config"]["max_lines"]
    with tempfile.TemporaryDirectory(prefix="retrim-") as tmp:
        cases = rebuilt_cases(run, Path(args.cache), Path(tmp))
    before, after, changed = [], [], []
    for row in run["rows"]:
        case = cases[row["case"]]
        prefix, suffix = split_at_cursor(case["buffer"], case["line"], case["character"])
        shape = choose_shape(prefix, suffix, max_lines, syntax_at_cursor(case["file"], case["buffer"], len(prefix)))
        indent = cursor_indentation(prefix) if args.healed else ""
        shown = finish_completion(row["raw"], row["finish_reason"], prefix, suffix, shape, case["file"], indent)
        new = {**row, "completion": shown, **score(case, shown, case["lang"])}
        before.append(row)
        after.append(new)
        if shown != row["completion"]:
            changed.append({"case": row["case"], "method": row["method"], "budget": row["budget"],
                            "before": row["completion"], "after": shown})
    methods = run["config"]["methods"]
    summary = {}
    for budget in sorted({r["budget"] for r in before}):
        for label, rows in (("before", before), ("after", after)):
            chosen = [r for r in rows if r["budget"] == budget]
            summary[f"{budget}:{label}"] = {m: aggregate([r for r in chosen if r["method"] == m]) for m in methods}
    Path(args.out).write_text(json.dumps({"run": args.run, "summary": summary, "changed": changed}, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"{len(changed)} of {len(before)} completions changed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
