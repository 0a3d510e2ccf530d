"""Indexer benchmark: cold / floor / ctags / warm / one-file re-index / RSS / coverage / synthetic scale.

Run:  .venv/bin/python bench/index_bench.py --out bench/results/index.json
      [--corpus DIR] [--lines 200000] [--repeat 3] [--fetch-corpora] [--synthetic-files 100000]

Without --corpus, real code is copied from the Python standard library (tests excluded) until
--lines lines.  Every timed phase that starts a process runs in a fresh child interpreter so RSS
and caches are honest; cold index and the floor are interleaved --repeat times (the machine is
shared, so medians and minimums are both reported).

The floor: a single-process loop that reads every indexed file, parses it with tree-sitter and
runs the grammar's own tags.scm query (captures) - the least work any tree-sitter indexer does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CORPUS_CACHE = Path(os.environ.get("CODERFLASH_INDEX_BENCH_CACHE", Path.home() / ".cache" / "coderflash-index-bench"))


# ----------------------------------------------------------------------------- children
def _timed_build(corpus: str, cache: str) -> tuple[Any, float]:
    """Open the index of ``corpus`` and build it (cold or warm, whatever the cache holds): (stats, seconds)."""
    from indexer import Index

    t0 = time.perf_counter()
    idx = Index.open(corpus, cache)
    stats = idx.build()
    elapsed = time.perf_counter() - t0
    idx.close()
    return stats, elapsed


def child_cold(corpus: str, cache: str) -> dict:
    stats, elapsed = _timed_build(corpus, cache)
    ru_self = resource.getrusage(resource.RUSAGE_SELF)
    ru_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"elapsed_s": elapsed, "stats": stats.to_json(), "rss_main_mb": ru_self.ru_maxrss / 1024,
            "rss_worker_max_mb": ru_children.ru_maxrss / 1024,
            "cpu_main_s": ru_self.ru_utime + ru_self.ru_stime,
            "cpu_workers_s": ru_children.ru_utime + ru_children.ru_stime}


def child_warm(corpus: str, cache: str) -> dict:
    stats, elapsed = _timed_build(corpus, cache)
    return {"elapsed_s": elapsed, "parsed_files": stats.parsed_files, "reused_files": stats.reused_files,
            "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_floor(corpus: str, cache: str) -> dict:
    """Parse + tags.scm for exactly the files the index parsed (listed from its database)."""
    import sqlite3

    import tree_sitter as ts

    from indexer.languages import LANGS, tags_path

    db = next(Path(cache, "index").glob("*.sqlite"))
    con = sqlite3.connect(db)
    rows = [(p, lang) for p, lang in con.execute("SELECT path, language FROM files") if lang in LANGS]
    con.close()
    import importlib

    loaded = {}
    for lang in {lang for _, lang in rows}:
        spec = LANGS[lang]
        language = ts.Language(getattr(importlib.import_module(spec.module), spec.func)())
        text = "\n".join(open(p).read() for p in (tags_path(m) for m in spec.tags_from) if p) or spec.extra
        loaded[lang] = (ts.Parser(language), ts.Query(language, text))
    t0 = time.perf_counter()
    c0 = time.process_time()
    n = 0
    for path, lang in rows:
        parser, query = loaded[lang]
        with open(os.path.join(corpus, path), "rb") as f:
            tree = parser.parse(f.read())
        caps = ts.QueryCursor(query).captures(tree.root_node)
        n += sum(len(v) for v in caps.values())
    return {"elapsed_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "files": len(rows), "captures": n,
            "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_edit(corpus: str, cache: str, iterations: int) -> dict:
    """One-file re-index latency (disk edit -> update_paths), overlay latency, query latency."""
    from indexer import Index

    idx = Index.open(corpus, cache)
    idx.build()
    files = [f for f in idx.files() if f.language == "python"]
    target = min(files, key=lambda f: abs(f.lines - 1000))
    path = Path(corpus, target.path)
    original = path.read_text()
    lines = original.splitlines(keepends=True)
    pers = idx.personalization_for(target.path)
    idx.ranked_files(pers)  # ranking loaded, so its incremental update is part of every edit below

    def pctl(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000

    disk, disk_cpu, overlay, rank_after = [], [], [], []
    try:
        for i in range(iterations):
            k = (i * 37) % len(lines)
            edited = lines[:k] + [f"# edit {i}\n"] + lines[k:]
            path.write_text("".join(edited))
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + i + 1))  # distinct mtime even within a tick
            t0 = time.perf_counter()
            c0 = time.process_time()
            changed = idx.update_paths([target.path])
            disk.append(time.perf_counter() - t0)
            disk_cpu.append(time.process_time() - c0)
            assert changed == [target.path], changed
            t0 = time.perf_counter()
            idx.ranked_files(pers)
            rank_after.append(time.perf_counter() - t0)
        for i in range(iterations):
            text = original + f"\ndef _overlay_probe_{i}():\n    return {i}\n"
            t0 = time.perf_counter()
            idx.set_overlay(target.path, text)
            overlay.append(time.perf_counter() - t0)
        idx.clear_overlay(target.path)
    finally:
        path.write_text(original)
        idx.update_paths([target.path])

    # query latency (the context engine calls these on every keystroke)
    defs = idx.outline(target.path)
    mid = defs[len(defs) // 2] if defs else None
    q: dict[str, list[float]] = {k: [] for k in ("definitions", "symbol_at", "definitions_referenced_in",
                                                 "imports_of", "ranked_files_cached", "ranked_definitions_50")}
    names = [d.name for d in defs[:50]] or ["x"]
    for i in range(50):
        t0 = time.perf_counter(); idx.definitions(names[i % len(names)]); q["definitions"].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); idx.symbol_at(target.path, (mid.start_line if mid else 0) + 1)
        q["symbol_at"].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); idx.definitions_referenced_in(target.path, i * 7 % max(1, target.lines), i * 7 % max(1, target.lines) + 30)
        q["definitions_referenced_in"].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); idx.imports_of(target.path); q["imports_of"].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); idx.ranked_files(pers); q["ranked_files_cached"].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); idx.ranked_definitions(pers, limit=50); q["ranked_definitions_50"].append(time.perf_counter() - t0)
    # uncached ranking: a different personalisation each time
    others = [f.path for f in files[:20]]
    unc = []
    for p in others:
        t0 = time.perf_counter(); idx.ranked_files({p: 1.0, target.path: 0.5}); unc.append(time.perf_counter() - t0)
    idx.close()
    return {
        "file": target.path, "file_lines": target.lines, "iterations": iterations,
        "reindex_ms": {"p50": pctl(disk, 0.5), "p95": pctl(disk, 0.95), "max": max(disk) * 1000},
        "reindex_cpu_ms": {"p50": pctl(disk_cpu, 0.5), "p95": pctl(disk_cpu, 0.95)},
        "overlay_ms": {"p50": pctl(overlay, 0.5), "p95": pctl(overlay, 0.95)},
        "rank_refresh_after_edit_ms": {"p50": pctl(rank_after, 0.5), "p95": pctl(rank_after, 0.95)},
        "query_ms": {k: {"p50": pctl(v, 0.5), "p95": pctl(v, 0.95)} for k, v in q.items()}
        | {"ranked_files_new_personalization": {"p50": pctl(unc, 0.5), "p95": pctl(unc, 0.95)}},
        "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_child(kind: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, *args], capture_output=True, text=True,
                         check=False, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    if out.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- corpora
def build_stdlib_corpus(dst: Path, max_lines: int) -> dict:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    total = files = 0
    for src in sorted(stdlib.rglob("*.py")):
        rel = src.relative_to(stdlib)
        if rel.parts[0] in ("test", "idlelib", "site-packages", "lib2to3") or "tests" in rel.parts:
            continue
        data = src.read_bytes()
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes(data)
        total += data.count(b"\n")
        files += 1
        if total >= max_lines:
            break
    return {"source": str(stdlib), "files": files, "lines": total}


def count_lines(root: Path) -> tuple[int, int]:
    files = lines = 0
    for p in root.rglob("*"):
        if p.is_file():
            files += 1
            try:
                lines += p.read_bytes().count(b"\n")
            except OSError:
                pass
    return files, lines


def fetch_corpora() -> None:
    """Real code for the per-language coverage report (Debian packages and npm; cached)."""
    CORPUS_CACHE.mkdir(parents=True, exist_ok=True)
    debs = {"librust-syn-dev": "librust-syn-dev", "librust-tokio-dev": "librust-tokio-dev",
            "golang-github-spf13-cobra-dev": "golang-github-spf13-cobra-dev",
            "golang-github-google-go-cmp-dev": "golang-github-google-go-cmp-dev",
            "openjdk-17-source": "openjdk-17-source"}
    for pkg, d in debs.items():
        if not (CORPUS_CACHE / d).is_dir():
            subprocess.run(["apt-get", "download", pkg], cwd=CORPUS_CACHE, check=False, capture_output=True)
            deb = next(CORPUS_CACHE.glob(f"{pkg}_*.deb"), None)
            if deb:
                subprocess.run(["dpkg", "-x", str(deb), d], cwd=CORPUS_CACHE, check=False)
    jdk = CORPUS_CACHE / "jdk"
    src_zip = next((CORPUS_CACHE / "openjdk-17-source").rglob("src.zip"), None) if (CORPUS_CACHE / "openjdk-17-source").is_dir() else None
    if src_zip and not jdk.is_dir():
        jdk.mkdir()
        subprocess.run(["unzip", "-q", "-o", str(src_zip), "java.base/java/util/*", "java.base/java/io/*"], cwd=jdk,
                       check=False)
    if not (CORPUS_CACHE / "mobx").is_dir():
        subprocess.run(["npm", "pack", "mobx@6.13.5"], cwd=CORPUS_CACHE, check=False, capture_output=True)
        tgz = next(CORPUS_CACHE.glob("mobx-*.tgz"), None)
        if tgz:
            (CORPUS_CACHE / "mobx").mkdir()
            subprocess.run(["tar", "xzf", str(tgz), "-C", "mobx"], cwd=CORPUS_CACHE, check=False)


def coverage_report(corpus: Path) -> dict:
    from indexer.ctags_compare import coverage

    def files(root: Path, exts: tuple[str, ...], limit: int = 100_000) -> list[str]:
        out = []
        for dirpath, dirnames, fnames in os.walk(root):
            dirnames.sort()
            for f in sorted(fnames):
                if f.endswith(exts) and not f.endswith(".d.ts") and ".min." not in f:
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
        return out[:limit]

    sets = [
        ("python", corpus, (".py",)),
        ("javascript", Path("/usr/lib/node_modules/npm/lib"), (".js",)),
        ("typescript", CORPUS_CACHE / "mobx/package/src", (".ts",)),
        ("go", CORPUS_CACHE / "golang-github-spf13-cobra-dev", (".go",)),
        ("go", CORPUS_CACHE / "golang-github-google-go-cmp-dev", (".go",)),
        ("rust", CORPUS_CACHE / "librust-syn-dev", (".rs",)),
        ("rust", CORPUS_CACHE / "librust-tokio-dev", (".rs",)),  # wraps whole modules in cfg_*! { ... }
        ("java", CORPUS_CACHE / "jdk/java.base/java/util", (".java",)),
        ("c", Path(sysconfig.get_paths()["stdlib"]) / "site-packages", (".c",)),
        ("c", Path(sysconfig.get_paths()["stdlib"]).parent.parent / "src", (".c",)),
    ]
    samples = REPO / "tests" / "indexer" / "samples"
    report: dict[str, dict] = {}
    for lang, root, exts in sets:
        if not root.is_dir():
            continue
        fl = files(root, exts)
        if not fl:
            continue
        res = coverage(str(root), fl).get(lang)
        if not res:
            continue
        r = report.setdefault(lang, {"ctags": 0, "found": 0, "sources": [], "missing_sample": []})
        r["ctags"] += res["ctags"]
        r["found"] += res["found"]
        r["sources"].append(f"{root} ({len(fl)} files, {res['found']}/{res['ctags']})")
        r["missing_sample"] += list(res["missing"])[:5]
    sample_res = coverage(str(samples), sorted(p.name for p in samples.iterdir()))
    for lang, res in sample_res.items():
        r = report.setdefault(lang, {"ctags": 0, "found": 0, "sources": [], "missing_sample": []})
        r["ctags"] += res["ctags"]
        r["found"] += res["found"]
        r["sources"].append("tests/indexer/samples")
    for r in report.values():
        r["ratio"] = round(r["found"] / r["ctags"], 4) if r["ctags"] else None
    return report


# ----------------------------------------------------------------------------- synthetic
def make_synthetic(root: Path, n_files: int) -> None:
    """A wide tree of small Python/JS/Go files that reference each other (deterministic)."""
    per_dir = 100
    for i in range(n_files):
        d = root / f"pkg{i // (per_dir * 50):03d}" / f"mod{(i // per_dir) % 50:02d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        kind = i % 10
        j = (i * 7919) % n_files
        if kind < 6:
            text = (f"from .m{j % per_dir} import helper_{j}\n\n\nclass Widget{i}:\n    \"\"\"Widget {i}.\"\"\"\n\n"
                    f"    def render_{i}(self, x):\n        return helper_{j}(x) + {i}\n\n\n"
                    f"def helper_{i}(x):\n    return Widget{i}().render_{i}(x)\n")
            (d / f"m{i % per_dir}.py").write_text(text)
        elif kind < 8:
            text = (f"import {{ helper{j} }} from './m{j % per_dir}';\n\nexport class Widget{i} {{\n"
                    f"  render(x) {{\n    return helper{j}(x) + {i};\n  }}\n}}\n\n"
                    f"export function helper{i}(x) {{\n  return new Widget{i}().render(x);\n}}\n")
            (d / f"m{i % per_dir}.js").write_text(text)
        else:
            text = (f"package mod\n\n// Widget{i} renders.\ntype Widget{i} struct {{\n\tN int\n}}\n\n"
                    f"func (w *Widget{i}) Render(x int) int {{\n\treturn Helper{j}(x) + {i}\n}}\n\n"
                    f"func Helper{i}(x int) int {{\n\treturn (&Widget{i}{{}}).Render(x)\n}}\n")
            (d / f"m{i % per_dir}.go").write_text(text)


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="write the JSON results here")
    ap.add_argument("--corpus", help="index this directory instead of a stdlib copy")
    ap.add_argument("--lines", type=int, default=200_000, help="stdlib corpus size in lines")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--edit-iterations", type=int, default=60)
    ap.add_argument("--synthetic-files", type=int, default=0, help="also index a synthetic tree of this many files")
    ap.add_argument("--fetch-corpora", action="store_true", help="download real TS/Go/Rust/Java code for coverage")
    ap.add_argument("--skip-coverage", action="store_true")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        kind, *rest = args.child
        fn = {"cold": child_cold, "warm": child_warm, "floor": child_floor}.get(kind)
        res = child_edit(rest[0], rest[1], int(rest[2])) if kind == "edit" else fn(*rest)  # type: ignore[misc]
        print(json.dumps(res))
        return 0
    if not args.out:
        ap.error("--out is required")

    work = Path(tempfile.mkdtemp(prefix="cf-index-bench-"))
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                                 "loadavg_start": os.getloadavg()}}
    try:
        if args.corpus:
            corpus = Path(args.corpus).resolve()
            nf, nl = count_lines(corpus)
            results["corpus"] = {"source": str(corpus), "files": nf, "lines": nl}
        else:
            corpus = work / "corpus"
            corpus.mkdir()
            results["corpus"] = build_stdlib_corpus(corpus, args.lines)
        for p in corpus.rglob("*"):  # page cache warm for everyone
            if p.is_file():
                p.read_bytes()
        print(f"corpus: {results['corpus']}", file=sys.stderr)

        colds, floors, cold_runs, floor_runs = [], [], [], []
        cache = work / "cache0"
        for r in range(args.repeat):
            cache = work / f"cache{r}"
            c = run_child("cold", str(corpus), str(cache))
            f = run_child("floor", str(corpus), str(cache))
            colds.append(c["elapsed_s"])
            floors.append(f["elapsed_s"])
            cold_runs.append(c)
            floor_runs.append(f)
            print(f"run {r}: cold {c['elapsed_s']:.3f}s floor {f['elapsed_s']:.3f}s", file=sys.stderr)
        last = cold_runs[-1]
        t0 = time.perf_counter()
        subprocess.run(["ctags", "-R", "-f", str(work / "tags"), str(corpus)], check=False, capture_output=True)
        ctags_s = time.perf_counter() - t0
        warms = [run_child("warm", str(corpus), str(cache)) for _ in range(max(3, args.repeat))]
        warm_s = [w["elapsed_s"] for w in warms]
        edit = run_child("edit", str(corpus), str(cache), str(args.edit_iterations))
        cold_med, floor_med = statistics.median(colds), statistics.median(floors)
        results.update({
            "stats": last["stats"],
            "cold_index_s": {"median": cold_med, "min": min(colds), "runs": colds},
            "floor_parse_tags_single_process_s": {"median": floor_med, "min": min(floors), "runs": floors},
            "ctags_R_s": ctags_s,
            "warm_start_s": {"median": statistics.median(warm_s), "runs": warm_s,
                             "parsed_files": warms[-1]["parsed_files"], "reused_files": warms[-1]["reused_files"]},
            "one_file_reindex": edit,
            "rss_mb": {"main": max(c["rss_main_mb"] for c in cold_runs),
                       "worker_max": max(c["rss_worker_max_mb"] for c in cold_runs),
                       "edit_process": edit["rss_main_mb"]},
            "cpu_s_last_cold": {"main": last["cpu_main_s"], "workers": last["cpu_workers_s"]},
            "cpu_s_last_floor": floor_runs[-1]["cpu_s"],
        })
        results["machine"]["loadavg_end"] = os.getloadavg()
        workers = os.cpu_count() or 1
        rss_total = results["rss_mb"]["main"] + workers * results["rss_mb"]["worker_max"]
        results["targets"] = {
            "cold_vs_floor": {"value_median": round(cold_med / floor_med, 3),
                              "value_min_vs_min": round(min(colds) / min(floors), 3), "target": "<= 1.0",
                              "cpu_seconds_cold_over_floor": round(
                                  (last["cpu_main_s"] + last["cpu_workers_s"]) / floor_runs[-1]["cpu_s"], 3)},
            "warm_vs_cold": {"value": round(statistics.median(warm_s) / cold_med, 4), "target": "<= 0.1"},
            "reindex_p95_ms": {"value": round(edit["reindex_ms"]["p95"], 2), "target": "<= 15",
                               "cpu_p95_ms": round(edit["reindex_cpu_ms"]["p95"], 2)},
            "rss_total_mb": {"value": round(rss_total, 1), "target": "<= 300 at 200K lines",
                             "note": f"main + {workers} workers x worker peak"},
        }
        if not args.skip_coverage:
            if args.fetch_corpora:
                fetch_corpora()
            results["coverage_vs_ctags"] = coverage_report(corpus)
        if args.synthetic_files:
            syn = work / "synthetic"
            t0 = time.perf_counter()
            make_synthetic(syn, args.synthetic_files)
            gen_s = time.perf_counter() - t0
            print(f"synthetic tree: {args.synthetic_files} files in {gen_s:.1f}s", file=sys.stderr)
            c = run_child("cold", str(syn), str(work / "syn_cache"))
            w = run_child("warm", str(syn), str(work / "syn_cache"))
            results["synthetic"] = {"files": args.synthetic_files, "generate_s": gen_s, "cold_index_s": c["elapsed_s"],
                                    "stats": c["stats"], "rss_main_mb": c["rss_main_mb"],
                                    "rss_worker_max_mb": c["rss_worker_max_mb"], "warm_start_s": w["elapsed_s"],
                                    "warm_rss_main_mb": w["rss_main_mb"]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results.get("targets", {}), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
