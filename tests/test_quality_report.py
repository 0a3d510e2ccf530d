"""The quality benchmark's case-by-case comparison (``bench/quality_report.paired``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import pytest  # noqa: E402

from quality_report import merge, paired, summarize  # noqa: E402


def _rows(outcomes: list[tuple[float, float]]) -> list[dict]:
    rows = []
    for i, (engine, base) in enumerate(outcomes):
        for method, em in (("engine", engine), ("jaccard_windows", base), ("buffer_only", 0.0),
                           ("aider_map", 0.0)):
            rows.append({"budget": 2048, "case": f"c/xfile/{i}", "method": method, "kind": "xfile", "corpus": "c",
                         "ident_em": em, "first_line_em": 0.0, "edit_sim": 0.5, "prompt_tokens": 10,
                         "target_tokens": 10})
    return rows


def test_paired_counts_discordant_cases_and_gives_the_exact_sign_test():
    # 6 cases only the engine got, none only the baseline got: p = 2 / 2**6
    rows = _rows([(1.0, 0.0)] * 6 + [(1.0, 1.0)] * 3 + [(0.0, 0.0)] * 4)
    assert paired(rows, "2048", "jaccard_windows") == {"baseline": "jaccard_windows", "engine_only": 6,
                                                      "baseline_only": 0, "sign_test_p": 0.031}
    # 3 against 1: well within chance
    rows = _rows([(1.0, 0.0)] * 3 + [(0.0, 1.0)] + [(0.0, 0.0)] * 19)
    assert paired(rows, "2048", "jaccard_windows")["sign_test_p"] == 0.625


def test_summary_acceptance_names_the_best_baseline_and_pairs_against_it():
    rows = _rows([(1.0, 0.0)] * 3 + [(0.0, 1.0)] + [(0.0, 0.0)] * 6)
    acc = summarize(rows, ["engine", "buffer_only", "jaccard_windows", "aider_map"])["acceptance"]["2048"]
    assert acc["best_baseline"] == "jaccard_windows" and acc["delta"] == 0.2 and acc["ident_em_beats_by_0.10"]
    assert acc["paired"]["engine_only"] == 3 and acc["paired"]["baseline_only"] == 1


def _run(corpus: str, outcomes: list[tuple[float, float]], seed: int = 14) -> dict:
    rows = [dict(r, corpus=corpus, case=r["case"].replace("c/", f"{corpus}/")) for r in _rows(outcomes)]
    return {"config": {"model": "m", "seed": seed, "threads": 2, "flash_attn": False, "max_tokens": 64,
                       "max_lines": 8, "methods": ["engine", "buffer_only", "jaccard_windows", "aider_map"],
                       "seconds": 10},
            "corpora": {corpus: {"language": "python"}}, "cases": [{"id": r["case"]} for r in rows[::4]],
            "rows": rows}


def test_merge_combines_runs_split_by_corpus_and_refuses_mismatched_ones():
    a, b = _run("a", [(1.0, 0.0)] * 2), _run("b", [(0.0, 1.0)] + [(0.0, 0.0)] * 3)
    both = merge([a, b], ["a.json", "b.json"])
    acc = both["summary"]["acceptance"]["2048"]
    assert acc["cases"] == 6 and acc["paired"]["engine_only"] == 2 and acc["paired"]["baseline_only"] == 1
    assert set(both["corpora"]) == {"a", "b"} and len(both["cases"]) == 6 and both["config"]["seconds"] == 20
    with pytest.raises(ValueError, match="seed"):
        merge([a, _run("c", [(1.0, 1.0)], seed=15)], ["a.json", "c.json"])
    with pytest.raises(ValueError, match="repeats corpus a"):
        merge([a, a], ["a.json", "a2.json"])
