"""Corpora, cuts and metrics of the completion quality benchmark (``bench/quality_bench.py``).

Corpora: code nobody here tuned to (none of the recall bench's): two standard-library packages, two npm
packages that ship their TypeScript ``src/``, one Debian ``librust-*-dev`` crate.

Cuts, each seeded and reproducible:
- ``symbol``: at a use of a symbol defined exactly once in the repository, in another file (the recall
  bench's sampler, ``context_bench.sample_cases``); the rest of the line is removed.
- ``random``: at a random column strictly inside a random code line (not blank, not a comment, not an
  import); the rest of the line is removed.
- ``xfile``: a ``symbol`` cut whose name the cut buffer shows nowhere but in its imports — the model can
  only copy it from an import line or learn it from another file (RepoBench's cross-file-first setting,
  CrossCodeEval's "needs cross-file context"). A ``symbol`` cut's name is often used elsewhere in the
  file (the buffer alone got 0.80 of them right at 2K), which measures the current file, not the
  repository.
- ``body``: a small function's body (2–10 lines, at most 400 characters) removed after its header line;
  the cursor sits on a new line at the body's indentation, as after Enter in an editor. The expected
  answer is the body. Only files that parse without error nodes are used, so "parses" means something.
"""

from __future__ import annotations

import random
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from context_bench import (IMPORT_LINE, STDLIB, copy_corpus, cut_buffer, debian_crate_src,  # noqa: E402
                           in_import, npm_package_dir, sample_cases)

CORPORA = (  # (name, language, how to get it)
    ("python-xml", "python", ("stdlib", "xml")),
    ("python-unittest", "python", ("stdlib", "unittest")),
    ("typescript-query-core", "typescript", ("npm", "@tanstack/query-core@5.108.4", "query-core")),
    ("typescript-immer", "typescript", ("npm", "immer@11.2.13", "immer")),
    ("rust-serde-json", "rust", ("deb", "librust-serde-json-dev", "serde-json")),
)
KINDS = ("symbol", "random", "body", "xfile")
IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
COMMENT_START = ("#", "//", "/*", "*", "///", "//!")
BODY_LINES = (2, 10)
BODY_MAX_CHARS = 400


# -- corpora ------------------------------------------------------------------------------------
def corpus_source(cache: Path, how: tuple[str, ...], fetch: bool) -> Path:
    """The corpus's source directory; npm and Debian packages are fetched into ``cache`` only with
    ``fetch`` (else a missing one is an error that names ``--fetch-corpora``)."""
    kind = how[0]
    if kind == "stdlib":
        return STDLIB / how[1]
    name = how[-1]
    present = (cache / name / "package").is_dir() if kind == "npm" else \
        bool(list((cache / name).glob("usr/share/cargo/registry/*/src")))
    if not present and not fetch:
        raise SystemExit(f"corpus {name} is not in {cache}: run with --fetch-corpora once")
    cache.mkdir(parents=True, exist_ok=True)
    if kind == "npm":
        return npm_package_dir(cache, how[1], name) / "src"
    return debian_crate_src(cache, how[1], name)


def install_corpus(src: Path, root: Path, lang: str) -> None:
    """Copy the sources (tests left out, as the recall bench does; also ``__tests__`` directories)."""
    copy_corpus(src, root / src.name if lang == "python" else root, lang)
    for tests in list(root.rglob("__tests__")):
        shutil.rmtree(tests, ignore_errors=True)


# -- cuts ---------------------------------------------------------------------------------------
def symbol_cuts(index, lang: str, n: int, seed: int) -> tuple[list[dict], dict]:
    picked, data = sample_cases(index, lang, n, seed)
    return [_symbol_case("symbol", c, data["texts"][c["file"]]) for c in picked], data


def xfile_cuts(index, lang: str, n: int, seed: int) -> list[dict]:
    """``symbol`` cuts (another draw: ``seed + 1``) whose name the cut buffer names only on import lines."""
    picked, data = sample_cases(index, lang, 10 ** 6, seed + 1)
    cases = []
    for c in picked:
        case = _symbol_case("xfile", c, data["texts"][c["file"]])
        lines = case["buffer"].split("\n")
        word = re.compile(rf"(?<![\w$]){re.escape(c['symbol'])}(?![\w$])")
        if any(word.search(t) and not (IMPORT_LINE[lang].search(t) or in_import(lines, i, lang))
               for i, t in enumerate(lines)):
            continue
        cases.append(case)
        if len(cases) >= n:
            break
    return cases


def _symbol_case(kind: str, c: dict, text: str) -> dict:
    """The cut at sampled symbol use ``c`` of file ``text``: the rest of its line removed and expected."""
    line_text = text.split("\n")[c["line"]]
    return {"kind": kind, "file": c["file"], "line": c["line"], "character": c["character"],
            "symbol": c["symbol"], "def_path": c["def_path"], "buffer": cut_buffer(text, c["line"], c["character"]),
            "expected": line_text[c["character"]:].rstrip()}


def all_cuts(index, lang: str, n: int, seed: int) -> tuple[list[dict], dict]:
    """Every kind's cuts of one corpus, ``n`` each at most, in the order case ids number them (``xfile``
    last, so the other kinds' ids stay as runs before it numbered them); and the corpus data."""
    cases, data = symbol_cuts(index, lang, n, seed)
    cases += random_cuts(data, lang, n, seed) + body_cuts(index, data, lang, n, seed)
    return cases + xfile_cuts(index, lang, n, seed), data


def random_cuts(data: dict, lang: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    eligible = []
    for path in sorted(data["texts"]):
        lines = data["lines"][path]
        for i, text in enumerate(lines):
            body = text.strip()
            if len(body) < 4 or body.startswith(COMMENT_START) or in_import(lines, i, lang):
                continue
            eligible.append((path, i))
    rng.shuffle(eligible)
    cases, per_file = [], Counter()
    for path, i in eligible:
        if per_file[path] >= 2:
            continue
        text = data["lines"][path][i].rstrip()
        indent = len(text) - len(text.lstrip())
        col = rng.randrange(indent + 1, len(text))  # strictly inside the line's code
        full = data["texts"][path]
        cases.append({"kind": "random", "file": path, "line": i, "character": col,
                      "buffer": cut_buffer(full, i, col), "expected": text[col:]})
        per_file[path] += 1
        if len(cases) >= n:
            break
    return cases


def body_cuts(index, data: dict, lang: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    opener = ":" if lang == "python" else "{"
    candidates = []
    for path in sorted(data["texts"]):
        lines = data["lines"][path]
        for d in index.outline(path):
            if d.kind not in ("function", "method"):
                continue
            head = next((i for i in range(d.start_line, min(d.end_line, d.start_line + 6))
                         if lines[i].rstrip().endswith(opener)), None)
            if head is None:
                continue
            last = d.end_line if lang == "python" else d.end_line - 1
            if lang != "python" and not lines[d.end_line].strip().startswith("}"):
                continue
            body = lines[head + 1:last + 1]
            while body and not body[-1].strip():
                body.pop()
            text = "\n".join(body)
            if not BODY_LINES[0] <= len(body) <= BODY_LINES[1] or len(text) > BODY_MAX_CHARS or not body[0].strip():
                continue
            candidates.append((path, head, head + len(body)))
    rng.shuffle(candidates)
    cases, per_file, clean = [], Counter(), {}
    for path, head, last in candidates:
        if per_file[path] >= 2:
            continue
        if path not in clean:
            clean[path] = syntax_errors(lang, data["texts"][path]) == 0
        if not clean[path]:
            continue
        lines = data["lines"][path]
        body = lines[head + 1:last + 1]
        indent = body[0][:len(body[0]) - len(body[0].lstrip())]
        buffer = "\n".join(lines[:head + 1] + [indent] + lines[last + 1:])
        if data["texts"][path].endswith("\n") and not buffer.endswith("\n"):
            buffer += "\n"
        cases.append({"kind": "body", "file": path, "line": head + 1, "character": len(indent),
                      "buffer": buffer, "expected": "\n".join(body)[len(indent):].rstrip()})
        per_file[path] += 1
        if len(cases) >= n:
            break
    return cases


# -- metrics ------------------------------------------------------------------------------------
def first_identifier(text: str) -> str | None:
    m = IDENT.search(text)
    return m.group(0) if m else None


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def edit_similarity(got: str, want: str) -> float:
    """1 − Levenshtein / max(len): 1.0 identical, 0.0 nothing in common (CrossCodeEval's ES)."""
    if not got and not want:
        return 1.0
    return 1.0 - levenshtein(got, want) / max(len(got), len(want))


_PARSERS: dict[str, object] = {}


def syntax_errors(lang: str, text: str) -> int:
    """ERROR and MISSING nodes in ``text`` parsed with the indexer's grammar for ``lang``."""
    import tree_sitter as ts

    from indexer.languages import load

    parser = _PARSERS.get(lang)
    if parser is None:
        parser = _PARSERS[lang] = ts.Parser(load(lang).language)
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))  # type: ignore[attr-defined]
    count, stack = 0, [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            count += 1
        if node.has_error:
            stack.extend(node.children)
    return count


def score(case: dict, completion: str, lang: str) -> dict:
    """Identifier EM (None when the expected text has no identifier), first-line EM, edit similarity
    (first line; whole body for body cuts), and for body cuts whether the file parses with it."""
    want, got = case["expected"], completion.rstrip()
    want_id, got_id = first_identifier(want), first_identifier(got)
    # the text goes right after the cursor: leading whitespace counts, trailing does not
    want_first, got_first = want.split("\n", 1)[0].rstrip(), got.split("\n", 1)[0].rstrip()
    out: dict = {"ident_em": None if want_id is None else float(got_id == want_id),
                 "first_line_em": float(got_first == want_first)}
    if case["kind"] == "body":
        out["edit_sim"] = round(edit_similarity(got, want), 4)
        buf = case["buffer"]
        lines = buf.split("\n")
        offset = sum(len(x) + 1 for x in lines[:case["line"]]) + case["character"]
        out["parses"] = float(syntax_errors(lang, buf[:offset] + got + buf[offset:]) == 0)
    else:
        out["edit_sim"] = round(edit_similarity(got_first, want_first), 4)
    return out
