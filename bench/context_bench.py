"""Context recall and speed benchmark for the repository context engine.

Recall: on real code nobody here wrote, sample places where a symbol defined exactly once in the
repository (in another file) is used, not on an import line; cut the line at the start of the symbol
(the user is about to type it) and ask for context at that position. A case is recalled when the
definition's header line (the source line holding its name, stripped) appears in the prompt. Where a
name is defined comes from universal-ctags, not from the index under test (whose blind spots would
otherwise hide the very cases that show them); ctags reads Rust with item-level macro blocks
(``cfg_rt! {``) opened up as modules (indexer/ctags_compare.py). ``--oracle index`` samples from the index.
Corpora: six stdlib packages, mobx (npm), regex-syntax and tokio (Debian; tokio wraps whole modules in
``cfg_*! { ... }`` macros). Results per corpus, pooled per language and overall.

No leaks: each corpus is copied to a temp dir and indexed; for each case the bench installs the cut
buffer as the index overlay of its file (what the editor integration does when a document is opened:
the store rows and the rank graph of that file are replaced; the context builder itself never writes
overlays per request), drops the builder's caches, and checks that the index no longer sees the symbol
on the cut line. The definition lives in another file, which the overlay does not touch. The overlay
is cleared (file re-read from disk) before the next case.

Baselines on the same character budget (budget tokens × 3.2 bytes, the estimate's ratio; the engine
runs with the estimate counter so its prompt is at most that many bytes): the current buffer only;
Jaccard-similar 20-line windows of other files (Copilot-style); an Aider-style repository map
(definitions/references by name, file graph weighted by identifier specificity, PageRank personalised
to the current file, definition header lines in rank order). Baselines spend the whole budget on
their own material (the engine also spends part of it on the current buffer).

Speed: a 200K-line slice of the standard library, indexed once (warm index). Per budget, one untimed
warm-up request (in a file outside the sample), then per sampled case the realistic sequence: the first
request in the file, then ``--keystrokes`` requests one typed character apart. Before the first request
the bench does what the server does when a document opens: ``prepare_file`` (the per-file part, off the
keystroke path; timed and reported on its own; ``--no-prepare`` skips it, so the first request pays it).
Reported: p50/p95 of the prepare step, of the first request in a file, of the keystrokes, and of the whole
sequence; and the share of each keystroke's
prompt tokens that the previous prompt had as its prefix (what the model's KV cache reuses).

    .venv/bin/python bench/context_bench.py recall --out bench/results/recall.json
    .venv/bin/python bench/context_bench.py recall --per-case --out after.json     # then, on an older checkout:
    .venv/bin/python bench/context_bench.py recall --cases-from after.json --out before.json
    .venv/bin/python bench/context_bench.py speed --out bench/results/speed.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.context import builder as context  # noqa: E402
from engine.model.prompt_format import text_format  # noqa: E402
from engine.model.tokens import ESTIMATE_BYTES_PER_TOKEN, TokenCounter  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
BUDGETS = (2048, 8192, 32768)
IMPORT_LINE = {
    "python": re.compile(r"^\s*(from\s+\S+\s+import\b|import\s)"),
    "typescript": re.compile(r"^\s*(import\b|export\s+(\*|\{[^}]*\})\s*from\b)|\brequire\("),
    "rust": re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(use|mod|extern\s+crate)\b"),
}
SOURCE_EXT = {"python": (".py",), "typescript": (".ts", ".tsx", ".js"), "rust": (".rs",)}


# -- corpora ------------------------------------------------------------------------------------
def fetch_corpora(cache: Path) -> list[tuple[str, str, Path]]:
    """(name, language, source dir). npm and Debian packages are fetched once into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    out = [(f"python-{p}", "python", STDLIB / p)
           for p in ("asyncio", "email", "multiprocessing", "importlib", "logging", "json")]
    out.append(("typescript-mobx", "typescript", npm_package_dir(cache, "mobx@6.13.5", "mobx") / "src"))
    out.append(("rust-regex-syntax", "rust", debian_crate_src(cache, "librust-regex-syntax-dev", "regex-syntax")))
    # wraps whole modules in item-level macros (cfg_rt! { ... }) and defines dozens of macro_rules!
    out.append(("rust-tokio", "rust", debian_crate_src(cache, "librust-tokio-dev", "tokio")))
    return out


def npm_package_dir(cache: Path, spec: str, name: str) -> Path:
    """``npm pack spec`` unpacked once under ``cache/name``; returns its ``package`` directory."""
    pkg = cache / name / "package"
    if not pkg.is_dir():
        before = set(cache.glob("*.tgz"))
        subprocess.run(["npm", "pack", spec], cwd=cache, check=True, capture_output=True)
        new = sorted(set(cache.glob("*.tgz")) - before) or sorted(cache.glob(f"{name}-*.tgz"))
        (cache / name).mkdir(exist_ok=True)
        subprocess.run(["tar", "xzf", str(new[0]), "-C", str(cache / name)], check=True)
    return pkg


def debian_crate_src(cache: Path, package: str, name: str) -> Path:
    """A Debian ``librust-*-dev`` package's crate ``src`` directory (``apt-get download``, ``dpkg -x``) under
    ``cache/name``."""
    found = list((cache / name).glob("usr/share/cargo/registry/*/src"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True)
        deb = next(cache.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(cache / name)], check=True)
        found = list((cache / name).glob("usr/share/cargo/registry/*/src"))
    return found[0]


def copy_corpus(src: Path, dst: Path, lang: str) -> None:
    exts = SOURCE_EXT[lang]
    for path in src.rglob("*"):
        if path.is_file() and path.suffix in exts and "__pycache__" not in path.parts and "test" not in path.parts:
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def open_index(root: Path, cache: Path):
    from indexer import Index, IndexSettings

    index = Index.open(root, cache, IndexSettings())
    index.build()
    return index


# -- cases --------------------------------------------------------------------------------------
def header_line(lines: list[str], d) -> str:
    ln = d.name_line if getattr(d, "name_line", -1) >= 0 else d.start_line
    return lines[ln].strip() if 0 <= ln < len(lines) else ""


#: ctags kinds a case's definition may have (functions, methods, types, traits, macros), by ctags's names
ORACLE_KINDS = frozenset({"function", "method", "member", "func", "generator", "class", "struct", "interface",
                          "enum", "trait", "typedef", "alias", "type", "union", "macro"})


@dataclass(frozen=True)
class OracleDef:
    """A definition as the oracle (universal-ctags) reports it."""

    path: str
    name: str
    kind: str
    name_line: int  # 0-based line of the name


def oracle_definitions(root: Path, paths: list[str]) -> dict[str, list[OracleDef]]:
    """Definitions by name from universal-ctags (Rust item-level macro blocks opened up), not from the index:
    a blind spot of the index must not also hide the cases that would show it."""
    from indexer.ctags_compare import ctags_tags

    out: dict[str, list[OracleDef]] = defaultdict(list)
    for t in ctags_tags(str(root), paths):
        if t.get("kind") == "implementation" or not t.get("name") or "line" not in t:
            continue  # a Rust impl block names a type it does not define
        out[t["name"]].append(OracleDef(t["path"], t["name"], t["kind"], int(t["line"]) - 1))
    return out


def sample_cases(index, lang: str, n: int, seed: int, oracle: str = "index") -> tuple[list[dict], dict]:
    """Up to ``n`` cases: uses of a name defined exactly once (by the oracle: ``ctags`` or the ``index``),
    in another file, not on an import line; at most two per file, each name once."""
    texts = {f.path: index.read_text(f.path) for f in index.files()}
    texts = {p: t for p, t in texts.items() if t}
    lines = {p: t.splitlines() for p, t in texts.items()}
    defs_by_name: dict[str, list] = defaultdict(list)  # the index's own (the Aider-style map is built on them)
    for p in texts:
        for d in index.outline(p):
            defs_by_name[d.name].append(d)
    truth: dict[str, list] = oracle_definitions(Path(index.root), sorted(texts)) if oracle == "ctags" else defs_by_name
    candidates: list[dict] = []
    for p in sorted(texts):
        for r in index.references_in_range(p, 0, len(lines[p])):
            ds = truth.get(r.name)
            if not ds or len(ds) != 1 or len(r.name) < 3:
                continue
            d = ds[0]
            if d.path == p or d.path not in lines:
                continue
            if (d.kind not in ORACLE_KINDS if oracle == "ctags"
                    else d.kind in ("field", "property", "variable", "parameter")):
                continue
            line_text = lines[p][r.line]
            if in_import(lines[p], r.line, lang):
                continue
            col = len(line_text.encode("utf-8")[:r.character].decode("utf-8", "replace"))
            if line_text[col:col + len(r.name)] != r.name or r.name in line_text[:col]:
                continue
            header = header_line(lines[d.path], d)
            if r.name not in header or len(header) < 6:
                continue
            candidates.append({"file": p, "line": r.line, "character": col, "symbol": r.name,
                               "def_path": d.path, "header": header})
    rng = random.Random(seed)
    rng.shuffle(candidates)
    picked, per_file, names = [], Counter(), set()
    for c in candidates:
        if per_file[c["file"]] >= 2 or c["symbol"] in names:
            continue
        picked.append(c)
        per_file[c["file"]] += 1
        names.add(c["symbol"])
        if len(picked) >= n:
            break
    return picked, {"texts": texts, "lines": lines, "defs_by_name": defs_by_name}


def in_import(lines: list[str], line: int, lang: str) -> bool:
    """On an import line, or inside a multi-line import/export list (``from x import (\n a,\n b)``)."""
    pattern = IMPORT_LINE[lang]
    if pattern.search(lines[line]):
        return True
    for i in range(line - 1, max(-1, line - 60), -1):
        text = lines[i]
        if pattern.search(text):
            return ("(" in text and ")" not in text) or ("{" in text and "}" not in text)
        if any(c in text for c in ")};"):
            return False
    return False


def cut_buffer(text: str, line: int, character: int) -> str:
    lines = text.split("\n")
    lines[line] = lines[line][:character]
    return "\n".join(lines)


# -- baselines ----------------------------------------------------------------------------------
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def buffer_only(buffer: str, line: int, character: int, chars: int) -> str:
    lines = buffer.split("\n")
    prefix = "\n".join(lines[:line] + [lines[line][:character]])
    suffix = "\n".join([lines[line][character:]] + lines[line + 1:])
    s = min(len(suffix), chars // 8)
    return prefix[max(0, len(prefix) - (chars - s)):] + suffix[:s]


class JaccardWindows:
    def __init__(self, texts: dict[str, str], size: int = 20, stride: int = 10) -> None:
        self.windows = []
        for p, t in texts.items():
            ls = t.split("\n")
            for i in range(0, max(1, len(ls) - size + stride), stride):
                w = "\n".join(ls[i:i + size])
                self.windows.append((p, i, w, set(_IDENT.findall(w))))

    def ranked(self, current: str, prefix: str) -> list[tuple[float, str, int, str]]:
        """(Jaccard similarity to the prefix's last 20 lines, path, first line, window) for the windows of
        the other files, most similar first."""
        query = set(_IDENT.findall("\n".join(prefix.split("\n")[-20:])))
        scored = []
        for p, start, w, toks in self.windows:
            if p == current or not toks:
                continue
            union = len(query | toks)
            scored.append((len(query & toks) / union if union else 0.0, p, start, w))
        scored.sort(key=lambda x: -x[0])
        return scored

    def select(self, current: str, prefix: str, chars: int) -> str:
        out, used = [], 0
        for _, p, _, w in self.ranked(current, prefix):
            piece = f"# {p}\n{w}\n"
            if used + len(piece) > chars:
                continue
            out.append(piece)
            used += len(piece)
        return "".join(out)


class AiderMap:
    """Aider's repo map: tags → file graph weighted by identifier specificity → personalised PageRank."""

    def __init__(self, index, data: dict) -> None:
        self.files = sorted(data["texts"])
        self.fid = {p: i for i, p in enumerate(self.files)}
        self.defines: dict[str, set[str]] = defaultdict(set)
        self.def_lines: dict[tuple[str, str], list[str]] = defaultdict(list)
        for name, ds in data["defs_by_name"].items():
            for d in ds:
                self.defines[name].add(d.path)
                h = header_line(data["lines"][d.path], d)
                if h:
                    self.def_lines[(d.path, name)].append(h)
        self.refs: dict[str, Counter] = {}
        for p in self.files:
            self.refs[p] = Counter(r.name for r in index.references_in_range(p, 0, len(data["lines"][p])))

    @staticmethod
    def _mul(name: str, n_definers: int) -> float:
        mul = 1.0
        is_snake = "_" in name and any(c.isalpha() for c in name)
        is_camel = any(c.isupper() for c in name) and any(c.islower() for c in name)
        if (is_snake or is_camel) and len(name) >= 8:
            mul *= 10
        if name.startswith("_"):
            mul *= 0.1
        if n_definers > 5:
            mul *= 0.1
        return mul

    def ranked_headers(self, current: str, current_refs: Counter) -> list[tuple[str, str]]:
        """(path, definition header line) of the other files, in the map's rank order."""
        n = len(self.files)
        refs = dict(self.refs)
        refs[current] = current_refs
        edges: dict[tuple[int, int, str], float] = {}
        for src, counter in refs.items():
            s = self.fid[src]
            for name, count in counter.items():
                definers = self.defines.get(name)
                if not definers:
                    continue
                mul = self._mul(name, len(definers)) * (50 if src == current else 1)
                for dst in definers:
                    edges[(s, self.fid[dst], name)] = mul * math.sqrt(count)
        for name, definers in self.defines.items():
            if not any(name in c for c in refs.values()):
                for dst in definers:
                    edges[(self.fid[dst], self.fid[dst], name)] = 0.1
        W = np.zeros((n, n))
        for (s, d, _), w in edges.items():
            W[s, d] += w
        out_w = W.sum(axis=1)
        pers = np.zeros(n)
        pers[self.fid[current]] = 1.0
        x = np.full(n, 1.0 / n)
        P = np.divide(W, out_w[:, None], out=np.zeros_like(W), where=out_w[:, None] > 0)
        for _ in range(100):
            dangling = x[out_w == 0].sum()
            new = 0.85 * (x @ P + dangling * pers) + 0.15 * pers
            if np.abs(new - x).sum() < 1e-8:
                x = new
                break
            x = new
        ranked: dict[tuple[str, str], float] = defaultdict(float)
        for (s, d, name), w in edges.items():
            if out_w[s] > 0:
                ranked[(self.files[d], name)] += x[s] * w / out_w[s]
        order = sorted(ranked.items(), key=lambda kv: -kv[1])
        return [(path, h) for (path, name), _ in order if path != current for h in self.def_lines.get((path, name), [])]

    def select(self, current: str, current_refs: Counter, chars: int) -> str:
        by_file: dict[str, list[str]] = defaultdict(list)
        used = 0
        for path, h in self.ranked_headers(current, current_refs):
            cost = len(h) + 2 + (len(path) + 2 if path not in by_file else 0)
            if used + cost > chars:
                continue
            by_file[path].append(h)
            used += cost
        return "".join(f"{p}:\n" + "".join(f"│{h}\n" for h in hs) for p, hs in by_file.items())


# -- recall -------------------------------------------------------------------------------------
def run_recall(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ctxbench-"))
    corpora = fetch_corpora(Path(args.cache))
    counter_factory = _counter_factory(args)
    result: dict = {"budgets": list(BUDGETS), "bytes_per_token": ESTIMATE_BYTES_PER_TOKEN, "seed": args.seed,
                    "definitions_oracle": args.oracle, "corpora": {}}
    for name, lang, src in corpora:
        if args.only and name not in args.only:
            continue
        t0 = time.time()
        root = work / name
        # Python packages keep their package directory so absolute imports (email.feedparser) resolve
        copy_corpus(src, root / src.name if lang == "python" else root, lang)
        index = open_index(root, work / "cache")
        cases, data = sample_cases(index, lang, args.cases, args.seed, args.oracle)
        if args.cases_from:  # the very cases of an earlier run (a before/after on one case list)
            cases = json.loads(Path(args.cases_from).read_text())["corpora"].get(name, {}).get("per_case") or []
        fmt, counter = counter_factory()
        ws = context.Workspace(fmt, counter, lambda: index, repo_name=name, root=str(root))
        cache = context.ContextCache(counter)
        jacc = JaccardWindows(data["texts"])
        aider = AiderMap(index, data)
        hits = {m: {b: 0 for b in BUDGETS} for m in ("engine", "buffer_only", "jaccard_windows", "aider_map")}
        leaks = 0
        per_case = []
        for case in cases:
            text = data["texts"][case["file"]]
            buf = cut_buffer(text, case["line"], case["character"])
            row = {k: case[k] for k in ("file", "line", "character", "symbol", "def_path", "header")}
            index.set_overlay(case["file"], buf)  # the opened document, as the editor integration does
            for b in BUDGETS:
                cache.invalidate()
                res = context.build(ws, cache, case["file"], buf, case["line"], case["character"], b)
                assert res.prompt_tokens <= b
                if b == BUDGETS[0]:  # the overlay is installed: the index must not see the cut symbol
                    seen = [r for r in index.references_in_range(case["file"], case["line"], case["line"])
                            if r.name == case["symbol"]]
                    leaks += bool(seen)
                    cur_refs = Counter(r.name for r in index.references_in_range(case["file"], 0, buf.count("\n") + 1))
                    prefix = buf[:len("\n".join(buf.split("\n")[:case["line"]])) + 1 + case["character"]]
                chars = int(b * ESTIMATE_BYTES_PER_TOKEN)
                outs = {
                    "engine": res.prompt,
                    "buffer_only": buffer_only(buf, case["line"], case["character"], chars),
                    "jaccard_windows": jacc.select(case["file"], prefix, chars),
                    "aider_map": aider.select(case["file"], cur_refs, chars),
                }
                for m, out in outs.items():
                    hit = case["header"] in out
                    hits[m][b] += hit
                    row[f"{m}@{b}"] = hit
            index.clear_overlay(case["file"])
            per_case.append(row)
        n = max(1, len(cases))
        result["corpora"][name] = {
            "language": lang, "files": len(data["texts"]), "lines": sum(len(v) for v in data["lines"].values()),
            "cases": len(cases), "leaks": leaks, "seconds": round(time.time() - t0, 1),
            "recall": {m: {str(b): round(hits[m][b] / n, 3) for b in BUDGETS} for m in hits},
            "per_case": per_case if args.per_case else None,
        }
        print(name, json.dumps(result["corpora"][name]["recall"]), file=sys.stderr)
        index.close()
    result["languages"] = {lang: _pooled([c for c in result["corpora"].values() if c["language"] == lang])
                           for lang in sorted({c["language"] for c in result["corpora"].values()})}
    result["overall"] = _pooled(list(result["corpora"].values()))
    shutil.rmtree(work, ignore_errors=True)
    return result


def _pooled(corpora: list[dict]) -> dict:
    """Recall per method and budget over the cases of several corpora (each case weighs the same)."""
    methods = ("engine", "buffer_only", "jaccard_windows", "aider_map")
    ncases = sum(c["cases"] for c in corpora)
    return {m: {str(b): round(sum(c["recall"][m][str(b)] * c["cases"] for c in corpora) / max(1, ncases), 3)
                for b in BUDGETS} for m in methods} | {"cases": ncases}


def _counter_factory(args: argparse.Namespace):
    def make():
        if args.model:
            from engine.model.context_tokenizer import context_tokenizer

            return context_tokenizer(None, args.model)
        return text_format("qwen"), TokenCounter(None)
    return make


# -- speed --------------------------------------------------------------------------------------
SPEED_PACKAGES = ("asyncio", "email", "logging", "json", "http", "xml", "concurrent", "importlib", "multiprocessing",
                  "unittest", "urllib", "sqlite3", "tomllib", "wsgiref", "xmlrpc", "html", "ctypes", "curses",
                  "dbm", "distutils", "encodings", "idlelib", "lib2to3", "pydoc_data", "re", "zoneinfo")


def run_speed(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ctxspeed-"))
    root = work / "repo"
    total = 0
    for pkg in SPEED_PACKAGES:
        if total >= args.lines:
            break
        src = STDLIB / pkg
        if not src.is_dir():
            continue
        copy_corpus(src, root / pkg, "python")
        total = sum(p.read_text(errors="replace").count("\n") for p in root.rglob("*.py"))
    for extra in sorted(STDLIB.glob("*.py")):
        if total >= args.lines:
            break
        shutil.copyfile(extra, root / extra.name)
        total += extra.read_text(errors="replace").count("\n")
    t0 = time.time()
    index = open_index(root, work / "cache")
    cold_s = time.time() - t0
    cases, data = sample_cases(index, "python", args.cases, args.seed)
    fmt, counter = _counter_factory(args)()
    ws = context.Workspace(fmt, counter, lambda: index, repo_name="repo", root=str(root))
    cache = context.ContextCache(counter)
    out: dict = {"lines": total, "files": len(data["texts"]), "index_cold_s": round(cold_s, 1),
                 "keystrokes_per_file": args.keystrokes, "budgets": {}}
    for b in (8192, 262144):
        # warm-up (not timed): one request in a file outside the sample, as the server's warm-up does;
        # it computes the repository-wide part once per repository state and budget
        sampled = {c["file"] for c in cases}
        other = next((p for p in sorted(data["texts"]) if p not in sampled), cases[0]["file"])
        t_warm = time.perf_counter()
        context.warm(ws, cache)  # every file read, redacted and counted once
        context.build(ws, cache, other, data["texts"][other], 0, 0, b)
        warm_ms = (time.perf_counter() - t_warm) * 1000
        first, repeat, shared, prepare = [], [], [], []
        for case in cases:
            text = data["texts"][case["file"]]
            full_line = text.split("\n")[case["line"]]
            buf = cut_buffer(text, case["line"], case["character"])
            if not args.no_prepare:  # the document opens: the server's didOpen hook prepares the file
                t_prep = time.perf_counter()
                context.prepare_file(ws, cache, case["file"], buf, b)
                prepare.append((time.perf_counter() - t_prep) * 1000)
            res = context.build(ws, cache, case["file"], buf, case["line"], case["character"], b)
            first.append(res.elapsed_ms)
            assert res.prompt_tokens <= b
            # the user types on: one request per character typed (the rest of the symbol, then the line)
            for k in range(1, args.keystrokes + 1):
                col2 = min(len(full_line), case["character"] + k)
                buf2 = cut_buffer(text, case["line"], col2)
                res2 = context.build(ws, cache, case["file"], buf2, case["line"], col2, b)
                repeat.append(res2.elapsed_ms)
                shared.append(res2.shared_prefix_tokens / max(1, res2.prompt_tokens))
                assert res2.prompt_tokens <= b
            index.clear_overlay(case["file"])
        every = first + repeat
        out["budgets"][str(b)] = {
            "requests": len(every),
            "warmup_ms": round(warm_ms, 1),
            "prepare_on_open": not args.no_prepare,
            "p50_ms_prepare_on_open": round(float(np.percentile(prepare, 50)), 1) if prepare else None,
            "p95_ms_prepare_on_open": round(float(np.percentile(prepare, 95)), 1) if prepare else None,
            "p50_ms_first_in_file": round(float(np.percentile(first, 50)), 1),
            "p95_ms_first_in_file": round(float(np.percentile(first, 95)), 1),
            "max_ms_first_in_file": round(float(max(first)), 1),
            "p50_ms_next_keystroke": round(float(np.percentile(repeat, 50)), 1),
            "p95_ms_next_keystroke": round(float(np.percentile(repeat, 95)), 1),
            "p50_ms_sequence": round(float(np.percentile(every, 50)), 1),
            "p95_ms_sequence": round(float(np.percentile(every, 95)), 1),
            "shared_prefix_ratio_min": round(min(shared), 3),
            "shared_prefix_ratio_mean": round(float(np.mean(shared)), 3),
        }
        print(b, json.dumps(out["budgets"][str(b)]), file=sys.stderr)
    index.close()
    shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("recall", "speed"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lines", type=int, default=200_000, help="speed: repository size in lines")
    parser.add_argument("--keystrokes", type=int, default=5, help="speed: requests after the first in a file")
    parser.add_argument("--no-prepare", action="store_true",
                        help="speed: no prepare_file() when a file opens (the first request pays the per-file part)")
    parser.add_argument("--only", nargs="*", help="recall: corpus names")
    parser.add_argument("--per-case", action="store_true")
    parser.add_argument("--cases-from", help="recall: run the per-case list of an earlier --per-case result")
    parser.add_argument("--oracle", choices=("ctags", "index"), default="ctags",
                        help="recall: who says where a name is defined (ctags: independent of the index under test)")
    parser.add_argument("--model", help="GGUF whose vocabulary counts tokens (default: the estimate)")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/coderflash-bench"))
    args = parser.parse_args()
    data = run_recall(args) if args.mode == "recall" else run_speed(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps({k: v for k, v in data.items() if k != "corpora"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
